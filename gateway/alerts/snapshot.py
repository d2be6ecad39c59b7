"""The alert windows written at a clean stop and read back at the next start, so a restart of a
thousand-node gateway reloads minutes of readings from InfluxDB instead of a day.

A day of one-minute readings for 1,000 nodes is 1.5 million rows: InfluxDB took half a minute to
send them and the engine seconds of CPU to refill its windows from them. The windows themselves are
typed arrays, so they are written as they are (a JSON header, then the arrays' bytes) and read back
with `frombytes`. The file is deleted as soon as it is read: a gateway that is killed later leaves
none behind, and its next start reloads the whole history as before, so an old file can never stand
in for readings it does not hold. It is refused (and the history reloaded) when the rules' windows
changed, when it comes from another byte order, or when it is older than the longest window.
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


def save(engine: Engine, path: Path, saved_ms: int) -> None:
    """Write every window and each node's last arrival; atomically (a temporary file, then rename)."""
    header: dict[str, Any] = {
        "saved_ms": saved_ms,
        "byteorder": sys.byteorder,
        "windows": engine.window_fingerprint,
        "arrivals": [[s, n, ms] for (s, n), ms in engine.arrivals.items()],
        "series": [],
    }
    blobs: list[bytes] = []
    for (site, node, metric), series in engine.all_series():
        meta, parts = series.to_parts()
        header["series"].append({"site": site, "node": node, "metric": metric, **meta})
        blobs += parts
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        f.write(MAGIC)
        f.write(json.dumps(header).encode() + b"\n")
        for blob in blobs:
            f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(engine: Engine, path: Path, now_ms: int) -> int | None:
    """Fill the engine's windows from `path` and delete it; the time it was saved (epoch ms), or
    None when there is none or it cannot be used (then nothing was filled)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("alerts: cannot read %s (%s); reloading the whole history", path, exc)
        return None
    finally:
        path.unlink(missing_ok=True)
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
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        log.warning("alerts: %s is damaged (%s); reloading the whole history", path, exc)
        return None
    for site, node, metric, series in restored:
        engine.adopt(site, node, metric, series)
    for site, node, ms in header["arrivals"]:
        engine.preload(site, node, None, int(ms), None)
    return saved_ms
