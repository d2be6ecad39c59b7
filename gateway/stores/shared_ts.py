"""Two readings of one node with the same `ts` are both kept, and both flagged.

InfluxDB keeps one point per measurement, tag set and timestamp, and a new point there takes the
old one's field values. That is what makes a redelivered reading (same `seq`) land once; but a node
whose clock stepped back sends *different* readings (other `seq`s) with the `ts` of earlier ones,
and written as they are they would silently replace them.

So before `reading` lines are written, the points already stored at their times are looked up (one
request: a statement per node and run of close times, or per site when a run names many nodes). A line whose
(site, node, time) holds nothing is written as it is, and so is one that finds its own `seq` there
(a redelivery lands on the same point, as before). One that finds another `seq` is written with the
tag `ts_rank` = 2 (3 for a third reading at that time, ...), a series of its own, and it and every
point it met get the field `gateway_flags` = `ts_shared` (a field added to a stored point: none of
its values is replaced). A rank, not the seq, names the series, so a node gets one extra series per
rank it ever needed, not one per shared reading: InfluxDB's cost grows with the number of series.
The signed fields and the time (the signed `ts`) are untouched, so both readings still verify
(docs/protocol.md, InfluxDB schema).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from contract.flags import GatewayFlag
from gateway.points import MEASUREMENT
from gateway.stores.base import StoreError
from gateway.stores.influxql import ident, string
from gateway.stores.reader import Row

log = logging.getLogger(__name__)

RANK_TAG = "ts_rank"
FLAGS_FIELD = "gateway_flags"
RUN_GAP_MS = 3_600_000
"""Times of a batch further apart than this are looked up in separate statements, so a batch
holding an old backlog and live readings does not scan everything stored between them."""
NODE_STATEMENTS_MAX = 64
"""Up to this many nodes in a run, each is looked up between its own first and last time. One
statement for the site's span returned every other node's points in it too: with 20 nodes sending
in order, about 2,100 rows a batch of 1,000 that matched nothing, parsed for nothing, a sixth of
the gateway's CPU with the PMS5003 payload (docs/operations.md, "Ingest benchmark"). Past this,
one statement per site and run, as InfluxDB plans each statement on its own."""

Lookup = Callable[[str], list[Row]]
"""Runs InfluxQL, one row per point with its series tags merged in (InfluxV1.query)."""

_PREFIX = MEASUREMENT + ","
# A quoted field value is consumed whole, so a `,seq=` inside a string is never taken for the field.
_SEQ = re.compile(r'"(?:[^"\\]|\\.)*"|(?:^|,)seq=(\d+)i')


class _Key(NamedTuple):  # a tuple: made once per line written, a frozen dataclass costs more
    site: str
    node: str
    ms: int


@dataclass(slots=True)
class _Point:
    seq: int
    rank: int  # its `ts_rank` tag, 1 for the reading's ordinary series (no tag)
    flags: list[str]  # its `gateway_flags`


def keep_both(lines: list[str], lookup: Lookup) -> list[str]:
    """The lines to write instead of `lines` so that no reading replaces another (module docstring).
    Lines of other measurements pass unchanged; raises StoreError when the lookup fails."""
    keys = [_key(line) for line in lines]
    wanted = {key for key in keys if key is not None}
    if not wanted:
        return lines
    stored = _stored(wanted, lookup)
    if not stored and len(wanted) == len(keys) - keys.count(None):
        return lines  # the usual batch: nothing stored at its times, no two of its lines at one
    out: list[str] = []
    shared: dict[tuple[str, str], list[int]] = {}  # per node, the seqs kept beside another
    for line, key in zip(lines, keys, strict=True):
        seq = None if key is None else _seq(line.partition(" ")[2])
        if key is None or seq is None:
            out.append(line)  # not a line the gateway made from a reading: written as it is
            continue
        here = stored.setdefault(key, [])
        same = next((p for p in here if p.seq == seq), None)
        if same is not None:  # a redelivery: onto the point it already is
            out.append(line if same.rank == 1 else _retag(line, same.rank))
            continue
        if not here:
            here.append(_Point(seq, 1, []))
            out.append(line)
            continue
        for point in here:
            if GatewayFlag.TS_SHARED not in point.flags:
                point.flags.append(GatewayFlag.TS_SHARED)
                out.append(_flag_line(key, point))
        mine = _Point(seq, max(p.rank for p in here) + 1, [GatewayFlag.TS_SHARED.value])
        here.append(mine)
        out.append(_with_flags(_retag(line, mine.rank), mine.flags))
        shared.setdefault((key.site, key.node), []).append(seq)
    for (site, node), seqs in shared.items():  # one line per node and batch, not one per reading
        log.warning(
            "%s/%s: %d reading(s) (seq %s) have the ts of a reading already stored (its clock went "
            "back?): each kept beside the other, both flagged %s",
            site,
            node,
            len(seqs),
            str(seqs[0]) if len(seqs) == 1 else f"{min(seqs)} to {max(seqs)}",
            GatewayFlag.TS_SHARED.value,
        )
    return out


def _key(line: str) -> _Key | None:
    """(site, node, time) of a `reading` line; None for other lines and ones that already carry a
    rank (written as they are)."""
    if not line.startswith(_PREFIX):
        return None
    head, ms = line[len(_PREFIX) : line.find(" ")], line[line.rfind(" ") + 1 :]
    node, _, site = head.partition(",")
    if node.startswith("node=") and site.startswith("site=") and "," not in site:  # to_line's
        tags = {"node": node[5:], "site": site[5:]}
    else:
        tags = dict(pair.partition("=")[::2] for pair in head.split(","))
    if not ms.isdigit() or RANK_TAG in tags or not tags.get("site") or not tags.get("node"):
        return None
    return _Key(tags["site"], tags["node"], int(ms))


def _seq(fields: str) -> int | None:
    """The `seq` field of a line's fields (and time)."""
    # to_line writes `flags` (no quote or backslash inside) then `seq` first: found without the regex
    if fields.startswith('flags="'):
        end = fields.find('"', 7)
        if fields.startswith(",seq=", end + 1):
            digits = fields[end + 6 : fields.find("i", end + 6)]
            if digits.isdigit():
                return int(digits)
    found = next((m.group(1) for m in _SEQ.finditer(fields) if m.group(1)), None)
    return None if found is None else int(found)


def _retag(line: str, rank: int) -> str:
    # tags in sorted order, as InfluxDB keeps them: `node`, `site`, `ts_rank`
    head, _, rest = line.partition(" ")
    return f"{head},{RANK_TAG}={rank} {rest}"


def _with_flags(line: str, flags: list[str]) -> str:
    body, _, ms = line.rpartition(" ")
    return f'{body},{FLAGS_FIELD}="{",".join(flags)}" {ms}'


def _flag_line(key: _Key, point: _Point) -> str:
    rank = f",{RANK_TAG}={point.rank}" if point.rank > 1 else ""
    flags = ",".join(point.flags)
    return f'{_PREFIX}node={key.node},site={key.site}{rank} {FLAGS_FIELD}="{flags}" {key.ms}'


def _select(site: str, nodes: list[str], first_ms: int, last_ms: int) -> str:
    names = " OR ".join(f'"node" = {string(n)}' for n in nodes)
    return (
        f'SELECT "seq", {ident(FLAGS_FIELD)} FROM {ident(MEASUREMENT)} '
        f'WHERE "site" = {string(site)} AND ({names}) '
        f"AND time >= {first_ms}ms AND time <= {last_ms}ms "
        f'GROUP BY "site", "node", {ident(RANK_TAG)}'
    )


def _stored(wanted: set[_Key], lookup: Lookup) -> dict[_Key, list[_Point]]:
    per_site: dict[str, list[_Key]] = {}
    for key in wanted:
        per_site.setdefault(key.site, []).append(key)
    statements = []
    for site, keys in sorted(per_site.items()):
        keys.sort(key=lambda k: k.ms)
        run: list[_Key] = []
        for item in [*keys, None]:
            if item is not None and (not run or item.ms - run[-1].ms <= RUN_GAP_MS):
                run.append(item)
                continue
            spans: dict[str, tuple[int, int]] = {}  # per node, its first and last time in the run
            for k in run:
                first, _ = spans.get(k.node, (k.ms, k.ms))
                spans[k.node] = (first, k.ms)
            if len(spans) <= NODE_STATEMENTS_MAX:
                statements += [_select(site, [node], *spans[node]) for node in sorted(spans)]
            else:
                statements.append(_select(site, sorted(spans), run[0].ms, run[-1].ms))
            run = [] if item is None else [item]
    try:
        rows = lookup("; ".join(statements))
    except StoreError as exc:
        if exc.hint is not None:
            raise  # 2.x: the bucket cannot be read with InfluxQL (no DBRP mapping); InfluxV2 decides
        if "database not found" in str(exc):
            return {}  # InfluxDB 1.x: nothing stored yet, the write creates the database
        raise StoreError(
            f"cannot look up the readings already stored at these times: {exc}", retryable=True
        ) from exc
    out: dict[_Key, list[_Point]] = {}
    for row in rows:
        key = _Key(str(row["site"]), str(row["node"]), int(row["time"]))
        if key in wanted and row.get("seq") is not None:
            flags = [f for f in str(row.get(FLAGS_FIELD) or "").split(",") if f]
            rank = int(row.get(RANK_TAG) or 1)
            out.setdefault(key, []).append(_Point(int(row["seq"]), rank, flags))
    return out
