"""What is in the database for a site: the metrics stored, each node's reading interval.

Shared by `export` and `report`. The reading interval is stored only with signed readings (`period_s`);
otherwise it is inferred from the readings themselves: `seq` goes up by one per reading the node
made, so the time between two stored readings divided by their `seq` difference is the interval,
even when readings in between are missing.
"""

from __future__ import annotations

import itertools
import statistics
from datetime import datetime

from contract.metrics import Metric
from gateway.stores.reader import Reader

DEFAULT_INTERVAL_S = 60
"""The node's default `interval_s`, used when a node has too few readings to infer its own."""


def metrics_stored(reader: Reader) -> list[Metric]:
    """Metrics with any field in `reading`, in the contract's order."""
    keys = reader.fields("reading")
    return [m for m in Metric if {m.value, f"{m.value}_raw", f"{m.value}_n"} & keys]


def interval_s(reader: Reader, site: str, node: str, start: datetime, end: datetime) -> int:
    """The node's reading interval in seconds, from its first readings in the range: their stored
    `period_s`, else the median of Δtime / Δseq over consecutive readings; DEFAULT_INTERVAL_S when
    it has fewer than two."""
    rows = reader.reading_clock(site, node, start, end)
    periods = [int(r["period_s"]) for r in rows if r.get("period_s")]
    if periods:  # signed readings keep their window length: no need to infer it
        return statistics.mode(periods)
    steps = []
    for before, after in itertools.pairwise(rows):
        dseq = int(after["seq"]) - int(before["seq"])
        if dseq > 0:
            steps.append((int(after["time"]) - int(before["time"])) / 1000 / dseq)
    if not steps:
        return DEFAULT_INTERVAL_S
    return max(1, round(statistics.median(steps)))
