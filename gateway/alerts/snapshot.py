"""The alert windows written at a clean stop and every `SAVE_EVERY_S` while running, and read back
at the next start, so a start of a thousand-node gateway reloads minutes of readings from InfluxDB
instead of a day, after a clean stop or a kill alike.

A day of one-minute readings for 1,000 nodes is 1.5 million rows: InfluxDB took half a minute to
send them and the engine seconds of CPU to refill its windows from them. The windows themselves are
typed arrays, so they are written as they are (a JSON header, then the arrays' bytes) and read back
with `frombytes`.

A file saved at S holds every reading the engine had at S. The next start reloads from InfluxDB
what is stamped after S - SNAPSHOT_MARGIN_S; what was stored after S with an older stamp (a node's
backlog after an outage, a late reading) that reload would miss, so each save has a *late log*
beside it, `alert-windows.<S>.late`, made before the file is replaced: every reading stored after
S and stamped before S - LATE_S is appended to it (flushed and synced before the broker is
acknowledged; rare: backlogs only) and replayed at the next start. A reading in both the file, the
reload or the log counts once (the windows drop a repeated timestamp). A file without its log, made
for other rules, from another byte order, damaged, or older than the longest window is not used:
the whole history is reloaded instead.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from gateway.alerts.engine import Engine
from gateway.alerts.windows import Series

log = logging.getLogger(__name__)
MAGIC = b"minewatch-alert-windows 1\n"
FILE = "alert-windows.bin"
SNAPSHOT_MARGIN_S = 300  # a start reloads from InfluxDB what is stamped after the save less this
LATE_S = 240  # ...and a late log keeps what is stamped before the save less this (they overlap)
SAVE_EVERY_S = 1800


def late_path(path: Path, saved_ms: int) -> Path:
    return path.with_name(f"{path.stem}.{saved_ms}.late")


class LateLog:
    """The readings stored after the save at `saved_ms` that the next start's reload would not reach."""

    def __init__(self, path: Path, saved_ms: int) -> None:
        self.path = path
        self.saved_ms = saved_ms
        self.before_ms = saved_ms - LATE_S * 1000  # a reading stamped at or before this is late
        self._file = path.open("a", encoding="utf-8")

    def add(self, lines: list[str]) -> None:
        """Appended and synced: the hook runs before the readings are acknowledged to the broker."""
        self._file.write("".join(lines))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def late_line(site: str, node: str, ts_ms: int, values: dict[str, float | None]) -> str:
    return json.dumps([site, node, ts_ms, values]) + "\n"


def write(engine: Engine, path: Path, saved_ms: int) -> Path:
    """Every window and each node's last arrival, into a temporary file beside `path`, from the
    arrays' own buffers (no copy, so memory does not double while saving); not yet synced: then
    `commit`, on another thread if need be, while the engine goes on."""
    header: dict[str, Any] = {
        "saved_ms": saved_ms,
        "byteorder": sys.byteorder,
        "windows": engine.window_fingerprint,
        "arrivals": [[s, n, ms] for (s, n), ms in engine.arrivals.items()],
        "series": [],
    }
    views: list[memoryview] = []
    for (site, node, metric), series in engine.all_series():
        meta, parts = series.to_parts()
        header["series"].append({"site": site, "node": node, "metric": metric, **meta})
        views += parts
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(MAGIC)
            f.write(json.dumps(header).encode() + b"\n")
            for view in views:
                f.write(view)
    finally:
        for view in views:
            view.release()  # the arrays may grow again
    return tmp


def commit(tmp: Path, path: Path) -> None:
    """Sync the temporary file and rename it over the last: atomically."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def save(engine: Engine, path: Path, saved_ms: int) -> LateLog:
    """`write` and `commit` at once, with the save's (empty) late log made first."""
    late = LateLog(late_path(path, saved_ms), saved_ms)
    commit(write(engine, path, saved_ms), path)
    return late


def remove(path: Path) -> None:
    """The file and every late log beside it."""
    path.unlink(missing_ok=True)
    for old in path.parent.glob(f"{path.stem}.*.late"):
        old.unlink(missing_ok=True)


def load(engine: Engine, path: Path, now_ms: int) -> int | None:
    """Fill the engine's windows from `path` and its late log; the time it was saved (epoch ms),
    or None when there is none or it cannot be used (then nothing was filled, and the file and
    its logs are removed)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        remove(path)
        return None
    except OSError as exc:
        log.warning("alerts: cannot read %s (%s); reloading the whole history", path, exc)
        remove(path)
        return None
    saved_ms = _load(engine, path, data, now_ms)
    if saved_ms is None:
        remove(path)
    return saved_ms


def _load(engine: Engine, path: Path, data: bytes, now_ms: int) -> int | None:
    try:
        if not data.startswith(MAGIC):
            raise ValueError("not a windows file")
        end = data.index(b"\n", len(MAGIC))
        header = json.loads(data[len(MAGIC) : end])
        if header["byteorder"] != sys.byteorder or header["windows"] != engine.window_fingerprint:
            log.info("alerts: the saved windows are for other rules; reloading the whole history")
            return None
        saved_ms = int(header["saved_ms"])
        if now_ms - saved_ms > engine.history_s * 1000:
            return None
        view, offset = memoryview(data), end + 1
        restored = []
        for meta in header["series"]:
            series, offset = Series.from_parts(meta, view, offset)
            restored.append((meta["site"], meta["node"], meta["metric"], series))
        if offset != len(data):
            raise ValueError("trailing bytes")
        late = _late_entries(late_path(path, saved_ms).read_text(encoding="utf-8"))
    except FileNotFoundError:
        log.warning("alerts: %s has no late log beside it; reloading the whole history", path)
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        log.warning("alerts: %s is damaged (%s); reloading the whole history", path, exc)
        return None
    for site, node, metric, series in restored:
        engine.adopt(site, node, metric, series)
    for site, node, ms in header["arrivals"]:
        engine.preload(site, node, None, int(ms), None)
    for site, node, ts_ms, values in late:
        for metric, value in values.items():
            engine.preload(site, node, metric, ts_ms, value)
    if late:
        log.info("alerts: %d late readings stored after the windows were saved", len(late))
    return saved_ms


def _late_entries(text: str) -> list[tuple[str, str, int, dict[str, float | None]]]:
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        try:
            site, node, ts_ms, values = json.loads(line)
        except ValueError:
            if i == len(lines) - 1:
                continue  # cut short by a power cut: those readings were not acknowledged either
            raise
        out.append((str(site), str(node), int(ts_ms), {str(m): v for m, v in values.items()}))
    return out
