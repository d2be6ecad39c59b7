"""Two readings of one node with the same `ts` are both kept, and both flagged.

InfluxDB keeps one point per measurement, tag set and timestamp, and a new point there takes the
old one's field values. That is what makes a redelivered reading (same `seq`) land once; but a node
whose clock stepped back sends *different* readings (other `seq`s) with the `ts` of earlier ones,
and written as they are they would silently replace them.

So before `reading` lines are written, the points already stored at their times are looked up (one
request: a statement per node and run of close times). A line whose (site, node, time) holds nothing
is written as it is, and so is one that finds its own `seq` there (a redelivery lands on the same
point, as before). One that finds another `seq` is written with the tag `clash_seq` = its own `seq`,
a series of its own, and it and every point it met get the field `gateway_flags` = `ts_shared` (a
field added to a stored point: none of its values is replaced). The signed fields and the time
(the signed `ts`) are untouched, so both readings still verify (docs/protocol.md, InfluxDB schema).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from contract.flags import GatewayFlag
from gateway.points import MEASUREMENT
from gateway.stores.base import StoreError
from gateway.stores.influxql import ident, string
from gateway.stores.reader import Row

log = logging.getLogger(__name__)

CLASH_TAG = "clash_seq"
FLAGS_FIELD = "gateway_flags"
RUN_GAP_MS = 3_600_000
"""Times of one node further apart than this are looked up in separate statements, so a batch
holding an old backlog and a live reading does not scan everything stored between them."""

Lookup = Callable[[str], list[Row]]
"""Runs InfluxQL, one row per point with its series tags merged in (InfluxV1.query)."""

_PREFIX = MEASUREMENT + ","
# A quoted field value is consumed whole, so a `,seq=` inside a string is never taken for the field.
_SEQ = re.compile(r'"(?:[^"\\]|\\.)*"|(?:^|,)seq=(\d+)i')


@dataclass(frozen=True, slots=True)
class _Key:
    site: str
    node: str
    ms: int


@dataclass(slots=True)
class _Point:
    seq: int
    clash: str  # the `clash_seq` tag of its series, "" for the reading's ordinary series
    flags: list[str]  # its `gateway_flags`


def keep_both(lines: list[str], lookup: Lookup) -> list[str]:
    """The lines to write instead of `lines` so that no reading replaces another (module docstring).
    Lines of other measurements pass unchanged; raises StoreError when the lookup fails."""
    parsed = [_parse(line) for line in lines]
    wanted = {key for key, _ in filter(None, parsed)}
    if not wanted:
        return lines
    stored = _stored(wanted, lookup)
    out: list[str] = []
    for line, item in zip(lines, parsed, strict=True):
        if item is None:
            out.append(line)
            continue
        key, seq = item
        here = stored.setdefault(key, [])
        same = next((p for p in here if p.seq == seq), None)
        if same is not None:  # a redelivery: onto the point it already is
            out.append(line if not same.clash else _retag(line, same.clash))
            continue
        if not here:
            here.append(_Point(seq, "", []))
            out.append(line)
            continue
        for point in here:
            if GatewayFlag.TS_SHARED not in point.flags:
                point.flags.append(GatewayFlag.TS_SHARED)
                out.append(_flag_line(key, point))
        mine = _Point(seq, str(seq), [GatewayFlag.TS_SHARED.value])
        here.append(mine)
        out.append(_with_flags(_retag(line, mine.clash), mine.flags))
        log.warning(
            "%s/%s sent seq %d with the ts of seq %s (its clock went back?): both kept, flagged %s",
            key.site,
            key.node,
            seq,
            ", ".join(str(p.seq) for p in here[:-1]),
            GatewayFlag.TS_SHARED.value,
        )
    return out


def _parse(line: str) -> tuple[_Key, int] | None:
    if not line.startswith(_PREFIX):
        return None
    head, _, rest = line.partition(" ")
    fields, _, ms = rest.rpartition(" ")
    tags = dict(pair.partition("=")[::2] for pair in head[len(_PREFIX) :].split(","))
    seq = next((m.group(1) for m in _SEQ.finditer(fields) if m.group(1)), None)
    if seq is None or not ms.isdigit() or CLASH_TAG in tags or not tags.get("site") or not tags.get("node"):
        return None  # not a line the gateway made from a reading: written as it is
    return _Key(tags["site"], tags["node"], int(ms)), int(seq)


def _retag(line: str, clash: str) -> str:
    # tags in sorted order, as InfluxDB keeps them: `clash_seq` sorts before `node` and `site`
    return f"{_PREFIX}{CLASH_TAG}={clash}," + line[len(_PREFIX) :]


def _with_flags(line: str, flags: list[str]) -> str:
    body, _, ms = line.rpartition(" ")
    return f'{body},{FLAGS_FIELD}="{",".join(flags)}" {ms}'


def _flag_line(key: _Key, point: _Point) -> str:
    clash = f"{CLASH_TAG}={point.clash}," if point.clash else ""
    flags = ",".join(point.flags)
    return f'{_PREFIX}{clash}node={key.node},site={key.site} {FLAGS_FIELD}="{flags}" {key.ms}'


def _stored(wanted: set[_Key], lookup: Lookup) -> dict[_Key, list[_Point]]:
    per_node: dict[tuple[str, str], list[int]] = {}
    for key in wanted:
        per_node.setdefault((key.site, key.node), []).append(key.ms)
    statements = []
    for (site, node), times in sorted(per_node.items()):
        times.sort()
        first = last = times[0]
        for ms in [*times[1:], None]:
            if ms is not None and ms - last <= RUN_GAP_MS:
                last = ms
                continue
            statements.append(
                f'SELECT "seq", {ident(FLAGS_FIELD)} FROM {ident(MEASUREMENT)} '
                f'WHERE "site" = {string(site)} AND "node" = {string(node)} '
                f"AND time >= {first}ms AND time <= {last}ms "
                f'GROUP BY "site", "node", {ident(CLASH_TAG)}'
            )
            if ms is not None:
                first = last = ms
    try:
        rows = lookup("; ".join(statements))
    except StoreError as exc:
        if "database not found" in str(exc):
            return {}  # nothing stored yet: the write creates the database
        raise StoreError(
            f"cannot look up the readings already stored at these times: {exc}", retryable=True
        ) from exc
    out: dict[_Key, list[_Point]] = {}
    for row in rows:
        key = _Key(str(row["site"]), str(row["node"]), int(row["time"]))
        if key in wanted and row.get("seq") is not None:
            flags = [f for f in str(row.get(FLAGS_FIELD) or "").split(",") if f]
            out.setdefault(key, []).append(_Point(int(row["seq"]), str(row.get(CLASH_TAG) or ""), flags))
    return out
