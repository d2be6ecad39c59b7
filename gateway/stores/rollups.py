"""The roll-up seam: what gateway/rollup.py asks a backend to recompute, in no backend's words.

A roll-up is one point per node and bucket (b, b + d] in `reading_1h` or `reading_1d`, stamped at
the bucket's end (docs/protocol.md); the backend recomputes it from the raw readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from gateway.stores.reader import Trace

Period = Literal["1h", "1d"]
BUCKETS: dict[Period, timedelta] = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}
MEASUREMENTS: dict[Period, str] = {"1h": "reading_1h", "1d": "reading_1d"}
STATS = ("mean", "min", "max", "count", "completeness")
"""Per metric `m`: `m_mean`, `m_min`, `m_max`, `m_count`, `m_completeness`; per point `readings`
(readings in the bucket, any metric) and `interval_s` (the completeness's reading interval)."""
FACT = "time_first"
"""A field every hourly point with readings has since hours carry the report's facts (gaps, flags,
calibrations; docs/protocol.md): where it is absent the roll-ups predate them (`rollup --rebuild`
adds them), and the report reads the raw readings instead."""
MIXED = "*"
"""`<metric>_cal` of an hour whose readings carry more than one calibration id: the report reads
that hour's raw readings for them."""


@dataclass(frozen=True, slots=True)
class Recompute:
    """Buckets of one site to recompute: (start, end] on the bucket grid, some nodes (none: all)."""

    site: str
    nodes: list[str]
    start: datetime
    end: datetime
    period: Period


class RollupBackend(Protocol):
    def metric_fields(self) -> list[str]:
        """Metrics stored at all, in the contract's order."""

    def recompute(
        self, job: Recompute, metrics: list[str], intervals: dict[str, int], *, trace: Trace | None = None
    ) -> int:
        """Recompute every bucket of `job` that holds readings from the raw readings, overwriting its
        point; `intervals` (node -> reading interval, s; 60 when absent) gives completeness.
        Returns the points written."""
