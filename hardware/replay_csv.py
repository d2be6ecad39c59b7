"""Replays a CSV of timestamped values, so real recorded data can be pushed through the system.

Columns: `timestamp` (RFC 3339 / ISO 8601; without an offset it is taken as UTC) and one column per
metric name from docs/protocol.md (raw values; an empty cell is a missing sample). Rows must be in time
order. Each `read` returns every row of the next `chunk_s` seconds of recorded time (aligned to
multiples of `chunk_s` since the epoch), stamped with their recorded times, so the node averages them
into the windows they were recorded in. The node sets `chunk_s` to its `interval_s` when it is absent.
When the file is exhausted, `read` returns nothing; the node keeps running.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from contract.clock import Clock
from contract.configfile import ConfigError
from contract.metrics import Metric
from hardware.base import Sample, SensorOptions, register


class ReplayCsvOptions(SensorOptions):
    type: Literal["replay-csv"]
    path: Path
    chunk_s: int | None = Field(default=None, gt=0)

    path_keys: ClassVar[tuple[str, ...]] = ("path",)

    def fit_to_window(self, interval_s: int) -> dict[str, Any]:
        """Chunks of recorded time as long as the node's window, or whole multiples of it."""
        chunk = self.chunk_s or interval_s
        if chunk % interval_s:
            raise ValueError(f"chunk_s: {chunk} must be a multiple of interval_s")
        return {"chunk_s": chunk}


class ReplayFileError(ConfigError, ValueError):
    """The CSV cannot be replayed; the message names the file, the row and the column. A ConfigError:
    the node refuses to start (exit 2), as for any other file its config names and it cannot use."""


def _parse_time(text: str, where: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReplayFileError(f"{where}: {text!r} is not an ISO 8601 timestamp") from exc
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def load_rows(path: Path) -> list[tuple[datetime, dict[Metric, float]]]:
    """Read and check the whole file up front, so a bad file fails at start-up, not mid-replay."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ReplayFileError(f"{path}: cannot open: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if "timestamp" not in header:
            raise ReplayFileError(f"{path}: row 1: no 'timestamp' column (found {header})")
        known = {m.value for m in Metric}
        unknown = [c for c in header if c != "timestamp" and c not in known]
        if unknown:
            raise ReplayFileError(
                f"{path}: row 1: column {unknown[0]!r} is not a metric; use one of {sorted(known)}"
            )
        rows: list[tuple[datetime, dict[Metric, float]]] = []
        for line, record in enumerate(reader, start=2):
            ts = _parse_time(record["timestamp"] or "", f"{path}: row {line}: column 'timestamp'")
            if rows and ts < rows[-1][0]:
                raise ReplayFileError(f"{path}: row {line}: timestamps go backwards")
            values: dict[Metric, float] = {}
            for column in header:
                cell = (record.get(column) or "").strip()
                if column == "timestamp" or not cell:
                    continue
                try:
                    value = float(cell)
                except ValueError as exc:
                    raise ReplayFileError(
                        f"{path}: row {line}: column {column!r}: {cell!r} is not a number"
                    ) from exc
                if not math.isfinite(value):
                    raise ReplayFileError(f"{path}: row {line}: column {column!r}: not finite")
                values[Metric(column)] = value
            rows.append((ts, values))
    return rows


@register(ReplayCsvOptions)
class ReplayCsv:
    def __init__(self, opts: ReplayCsvOptions, rows: list[tuple[datetime, dict[Metric, float]]]):
        self._rows = rows
        self._next = 0
        self._chunk_s = opts.chunk_s or 60
        self.metrics = tuple(sorted({m for _, values in rows for m in values}))

    @staticmethod
    def metrics_for(opts: ReplayCsvOptions) -> tuple[Metric, ...] | None:
        """The metric columns of the file's header; None while it cannot be read (the node's start
        says why)."""
        try:
            with opts.path.open(newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), [])
        except (OSError, UnicodeDecodeError, csv.Error):
            return None
        known = {m.value for m in Metric}
        return tuple(sorted(Metric(c) for c in header if c in known))

    @classmethod
    def open(cls, opts: ReplayCsvOptions, clock: Clock) -> ReplayCsv:
        return cls(opts, load_rows(opts.path))

    @property
    def is_finished(self) -> bool:
        return self._next >= len(self._rows)

    def read(self) -> list[Sample]:
        if self.is_finished:
            return []
        first = self._rows[self._next][0].timestamp()
        chunk_end = (math.floor(first / self._chunk_s) + 1) * self._chunk_s
        samples: list[Sample] = []
        while not self.is_finished and self._rows[self._next][0].timestamp() < chunk_end:
            ts, values = self._rows[self._next]
            samples.extend(Sample(metric, value, ts) for metric, value in values.items())
            self._next += 1
        return samples

    def close(self) -> None:
        pass
