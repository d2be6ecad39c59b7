"""Where an observation given as a position belongs: the site and the node nearest to it.

A resident who gives the phone's position or taps the site's map names no node, yet what they saw
(a plume from the pit, trucks on the haul road) is what the nearest sensor may have measured. At
submission such an observation takes the site of the nearest node with a known position within
`SITE_REACH_M`, so a gateway serving several sites lists it in that site's report only, and that
node as `near_node` when it lies within `NEAR_M`, so it is marked on the node's chart and listed on
its SensorThings Thing (docs/protocol.md, measurement `observation`). Its own position is kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from gateway.observations.records import Observation

NEAR_M = 2000.0
"""A node this close saw the same air or water: a dust plume drifts, a river carries, a few
hundred metres to a couple of kilometres in the minutes an observation describes."""
SITE_REACH_M = 25_000.0
"""A position this close to a site's nodes is that site's (mine sites are tens of kilometres apart);
farther, it belongs to no site, as before (listed with every site, so it is not lost)."""
EARTH_RADIUS_M = 6_371_008.8  # the mean radius (IUGG)


@dataclass(frozen=True, slots=True)
class Placed:
    site: str
    node: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Near:
    site: str
    node: str | None  # the node within NEAR_M, else None
    distance_m: float


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance (haversine), ample for kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def nearest(lat: float, lon: float, placed: Iterable[Placed]) -> Near | None:
    """The site of the nearest node within SITE_REACH_M, with that node when within NEAR_M; None
    when no node with a known position is that close. Ties go to the first in (site, node) order."""
    best: tuple[float, Placed] | None = None
    for p in sorted(placed, key=lambda p: (p.site, p.node)):
        d = distance_m(lat, lon, p.lat, p.lon)
        if best is None or d < best[0]:
            best = (d, p)
    if best is None or best[0] > SITE_REACH_M:
        return None
    d, p = best
    return Near(p.site, p.node if d <= NEAR_M else None, d)


class _Position(Protocol):
    @property
    def lat(self) -> float | None: ...
    @property
    def lon(self) -> float | None: ...


class Positions(Protocol):
    """What knows the nodes' positions: the status board (each node's retained status)."""

    def get(self, site: str, node: str) -> _Position | None: ...


def attach(obs: Observation, positions: Positions, nodes: Iterable[tuple[str, str]]) -> Observation:
    """A position observation with the site and `near_node` of `nearest` (the only site's, with no
    node, when no node with a known position is near and the gateway serves one site)."""
    if obs.lat is None or obs.lon is None:
        return obs
    every = list(nodes)
    placed = [
        Placed(site, node, st.lat, st.lon)
        for site, node in every
        if (st := positions.get(site, node)) is not None and st.lat is not None and st.lon is not None
    ]
    found = nearest(obs.lat, obs.lon, placed)
    if found is not None:
        return replace(obs, site=found.site, near_node=found.node)
    sites = {site for site, _ in every}
    return replace(obs, site=sites.pop()) if len(sites) == 1 else obs
