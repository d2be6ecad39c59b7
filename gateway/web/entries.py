"""Each node's part of a page, made once and kept until what it shows changes (issue 24): the JSON
API's node entries and the overview's sensor cards.

A page of `/api/v1/latest` made, for each of its 100 nodes, a summary (the NowCast of 12 hourly
means, its AQI and categories), a pydantic model, a `model_dump` and a pass of `json.dumps`:
about 20 µs a node, so 100 nodes cost five times what the 20-node page did. All of that is fixed
by three things, the node's kept latest reading, its hourly means and its retained status, each an
object that is replaced, never changed, when it changes (the kept table, `HourlyMeans`,
`StatusBoard`). An entry is kept as the JSON text before `age_s` and after `offline`, with those
three objects; a request reuses it while the node's three are the same objects and writes only
what depends on the moment, `age_s` and `offline`, between the two halves. The answer is byte for
byte what `JSONResponse` of the models gives (the same `json.dumps` arguments, the same floats).

The overview's 50 cards were most of its time (Jinja, about 0.1 ms a card), 2.5 times the 20
cards of a 20-node site's page: a card is kept with the same three objects and the two words that
depend on the moment, offline or not and how long ago ("5 min ago"), and made again when any of
them changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from gateway.stores.reader import Latest
from gateway.web.status import NodeStatus, StatusBoard
from gateway.web.views import NodeSummary, is_offline, summarise

Hourly = dict[tuple[str, str], list[float | None]]


def dumps(doc: Any) -> str:
    """JSON as Starlette's `JSONResponse` writes it, so a kept entry and a fresh answer agree."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _Entry:
    latest: Latest
    hours: list[float | None] | None
    status: NodeStatus | None
    head: str  # `{"site":...,"age_s":` : everything before age_s's value
    tail: str  # everything after offline's value, `}` included


def _split(model: BaseModel) -> tuple[str, str]:
    """The model's JSON object, cut around the values of `age_s` and `offline` (in that order)."""
    doc = model.model_dump(mode="json")
    keys = list(doc)
    at = keys.index("age_s")
    if keys[at + 1 : at + 2] != ["offline"]:
        raise ValueError(f"{type(model).__name__}: offline must follow age_s")
    before, after = keys[:at], keys[at + 2 :]
    head = dumps({k: doc[k] for k in before})[:-1] + ("," if before else "") + '"age_s":'
    tail = "," + dumps({k: doc[k] for k in after})[1:] if after else "}"
    return head, tail


class Entries:
    """Kept entries per kind of answer (a route: each kind has one `make`) and node."""

    def __init__(self) -> None:
        # Read and replaced by the web server's threads without a lock: a dict's get and set are
        # atomic, and two threads that miss at once both make the same entry.
        self._kept: dict[tuple[str, str, str], _Entry] = {}

    def json(
        self,
        kind: str,
        make: Callable[[NodeSummary], BaseModel],
        latest: list[Latest],
        hourly: Hourly,
        board: StatusBoard,
        now: datetime,
        offline_after_s: int,
        *,
        nowcast: bool,
        limits: Sequence[float] = (),
    ) -> bytes:
        """The JSON array of these nodes' `make` models at `now` (`nowcast`, `limits`: as
        `summaries`; the limits are the configuration's, the same for every request)."""
        parts = []
        for r in latest:
            key = (kind, r.site, r.node)
            hours = hourly.get((r.site, r.node))
            status = board.get(r.site, r.node)
            e = self._kept.get(key)
            if e is None or e.latest is not r or e.hours is not hours or e.status is not status:
                s = summarise(r, hours, status, now, offline_after_s, nowcast=nowcast, limits=limits)
                e = _Entry(r, hours, status, *_split(make(s)))
                self._kept[key] = e
            age = (now - r.time).total_seconds()
            offline = "true" if is_offline(age, status, offline_after_s) else "false"
            # float.__repr__ is how json.dumps writes a float
            parts.append(f'{e.head}{age!r},"offline":{offline}{e.tail}')
        return ("[" + ",".join(parts) + "]").encode("utf-8")


@dataclass(frozen=True, slots=True)
class _Card:
    latest: Latest
    hours: list[float | None] | None
    status: NodeStatus | None
    summary: NodeSummary  # as it was made; its age_s and is_offline are the request's
    fresh: tuple[bool, str]  # offline or not, and how long ago as the card writes it
    html: str


class Cards:
    """The overview's kept sensor cards, per node."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, str], _Card] = {}  # without a lock, as Entries

    def page(
        self,
        latest: list[Latest],
        hourly: Hourly,
        board: StatusBoard,
        now: datetime,
        offline_after_s: int,
        ago: Callable[[float], str],
        render: Callable[[NodeSummary, str], str],
        limits: Sequence[float] = (),
    ) -> list[tuple[NodeSummary, str]]:
        """Each node's summary at `now` and its card, `render(summary, ago(age_s))` (`limits`: as
        `summaries`)."""
        out = []
        for r in latest:
            key = (r.site, r.node)
            hours = hourly.get(key)
            status = board.get(r.site, r.node)
            c = self._kept.get(key)
            if c is None or c.latest is not r or c.hours is not hours or c.status is not status:
                s = summarise(r, hours, status, now, offline_after_s, limits=limits)
                c = None
            else:
                age = (now - r.time).total_seconds()
                s = replace(c.summary, age_s=age, is_offline=is_offline(age, status, offline_after_s))
            fresh = (s.is_offline, ago(s.age_s))
            if c is None or c.fresh != fresh:
                c = _Card(r, hours, status, s, fresh, render(s, fresh[1]))
                self._kept[key] = c
            out.append((s, c.html))
        return out
