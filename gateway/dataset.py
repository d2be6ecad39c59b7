"""What is in the database for a site: the metrics stored, each node's reading interval.

Shared by `export` and `report`. The reading interval is stored with each reading (`period_s`;
by earlier versions only with signed ones); otherwise it is inferred from the readings
themselves: `seq` goes up by one per reading the node made, so the time between two stored
readings divided by their `seq` difference is the interval, even when readings in between are
missing.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta

from contract.metrics import Metric
from gateway.stores.reader import CLOCK_READINGS, Reader

DEFAULT_INTERVAL_S = 60
"""The node's default `interval_s`, used when a node has too few readings to infer its own."""
CLOCK_FIRST = timedelta(days=2)
"""How far into a period `interval_s` looks first (2,880 readings of a node reading every minute)."""


def metrics_stored(reader: Reader) -> list[Metric]:
    """Metrics with any field in `reading`, in the contract's order."""
    keys = reader.fields("reading")
    return [m for m in Metric if {m.value, f"{m.value}_raw", f"{m.value}_n"} & keys]


def interval_s(reader: Reader, site: str, node: str, start: datetime, end: datetime) -> int:
    """The node's reading interval in seconds, from its first readings in the range: their stored
    `period_s`, else the median of Δtime / Δseq over consecutive readings; DEFAULT_INTERVAL_S when
    it has fewer than two. The first two days are asked first: over a year the database plans the
    query across every shard of it (0.13 s a node, 6 s for fifty), and when those days hold
    CLOCK_READINGS readings they are the same first ones."""
    rows = reader.reading_clock(site, node, start, min(end, start + CLOCK_FIRST))
    if len(rows) < CLOCK_READINGS and end > start + CLOCK_FIRST:
        rows = reader.reading_clock(site, node, start, end)
    periods = [int(r["period_s"]) for r in rows if r.get("period_s")]
    if periods:  # stored readings keep their window length: no need to infer it
        return statistics.mode(periods)
    return inferred_interval_s((int(r["time"]), int(r["seq"])) for r in rows)


def inferred_interval_s(clock: Iterable[tuple[int, int]]) -> int:
    """A node's reading interval from its readings' (time in epoch ms, seq), oldest first: the
    median of Δtime / Δseq over consecutive readings; DEFAULT_INTERVAL_S for fewer than two."""
    steps = []
    for (t0, seq0), (t1, seq1) in itertools.pairwise(clock):
        if seq1 > seq0:
            steps.append((t1 - t0) / 1000 / (seq1 - seq0))
    if not steps:
        return DEFAULT_INTERVAL_S
    return max(1, round(statistics.median(steps)))
