"""The open-data CSV: one row per stored reading, the columns of measurement `reading`.

Columns are fixed (every metric of the contract, empty when a node lacks it) so a script written
against one download works on the next. The licence travels in the `Link` and `Content-Disposition`
headers and on the download page; a comment line would break CSV readers. A text cell that a
spreadsheet would run as a formula (a `cal` id stored before the contract refused them) is written
with a leading `'` (contract.csvcell).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from contract import csvcell
from contract.metrics import Metric
from contract.wire import format_ts

METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

COLUMNS: tuple[str, ...] = (
    "time",
    "site",
    "node",
    "seq",
    *(f"{m}{suffix}" for m in METRICS for suffix in ("", "_raw", "_n", "_cal")),
    "flags",
    "period_s",
    "signed",
    "sig",
    "kid",
    "received",
    "gateway_flags",  # what the gateway found on storing it (ts_shared), not signed by the node
    "maintenance",  # the kinds of the maintenance visits that mark the reading (gateway.maintenance)
)
"""`period_s`, `sig`, `kid` complete what a signature covers, so a download verifies as it is
(`minewatch-gateway verify --keys keys.json --input download.csv`, keys from /api/v1/keys);
`received` is when the gateway stored the reading, by which a revoked key's readings are judged;
`maintenance` marks a reading a visit flagged (the window out of the water), never removes it."""


# Stored as floats; InfluxDB's JSON writes a whole float as an integer (80.0 comes back as 80)
_FLOATS = frozenset(f"{m}{suffix}" for m in METRICS for suffix in ("", "_raw"))


def _time(epoch_ms: Any) -> str:
    # integer arithmetic: a float of epoch seconds can lose the last millisecond, and the time is
    # part of what a signature covers
    return format_ts(_EPOCH + timedelta(milliseconds=int(epoch_ms)))


def _cell(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if column == "received":
        return _time(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if column in _FLOATS and isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))  # keep 80.0 a float in the file, as stored
    return value


def csv_chunks(
    rows: Iterable[dict[str, Any]], marks: Callable[[dict[str, Any]], str] | None = None
) -> Iterator[str]:
    """The header, then the rows in chunks of about 500 (one chunk per write on the socket);
    `marks` gives a row's `maintenance` cell (None: no visit marks the period)."""
    buf = io.StringIO()
    writer = csvcell.Writer(buf)  # a text cell is never a formula (CSV injection)
    writer.writerow(COLUMNS)
    for i, row in enumerate(rows, 1):
        if marks is not None:
            row["maintenance"] = marks(row)
        writer.writerow([_time(row["time"]), *(_cell(c, row.get(c)) for c in COLUMNS[1:])])
        if i % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
