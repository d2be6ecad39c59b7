"""The alert windows' history, read from the store: at once (a restart onto saved windows, a few
minutes of readings) or on a thread while the gateway runs (`Fill`: a first start, a day of them).

A first start has no saved windows (gateway/alerts/snapshot.py): the very first, or one after the
rules changed. A day of 1,000 nodes' one-minute readings is 1.5 million points, and InfluxDB takes
about 6 s of CPU to send them, whatever the format or the grouping (bench/fleet.py; an hourly
roll-up of them takes 1 s, but a 24-hour window moving by the minute needs each minute), so the
gateway does not wait for them: readings are stored, acknowledged and shown meanwhile, and the
engine holds them back from its windows' rules until every window is full (Engine.begin_fill).
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple

from contract.clock import Clock
from gateway.alerts.engine import Engine
from gateway.alerts.windows import Series
from gateway.stores import StoreError
from gateway.stores.reader import Reader

log = logging.getLogger(__name__)


class NodeHistory(NamedTuple):
    site: str
    node: str
    last_ms: int  # its last stored reading (the offline rules count from it)
    times: list[int]  # every reading read, oldest first
    seqs: list[Any]
    windows: dict[str, tuple[list[int], list[float | None]]]  # per metric: times and values


def node_history(reader: Reader, metrics: tuple[str, ...], seconds: int) -> Iterator[NodeHistory]:
    """Each node's readings of the last `seconds`, one node after another (so each window fills in
    one pass of C loops, Series.extend). Only the columns the windows read: `seq` is in every row,
    so every reading comes back; a reading whose metric has no value (`<metric>_n` alone: a
    failed sensor) is in the window as one without a value, as it was when it came."""
    fields = ["seq", *(f for m in metrics for f in (m, f"{m}_n"))]
    for rows in reader.recent_nodes(fields, seconds):
        times = rows.time
        if not times:
            continue
        windows: dict[str, tuple[list[int], list[float | None]]] = {}
        for m in metrics:
            values, counts = rows.columns[m], rows.columns[f"{m}_n"]
            if None not in values:
                windows[m] = (times, values)
                continue
            pairs = enumerate(zip(values, counts, strict=True))
            keep = [i for i, (v, n) in pairs if v is not None or n is not None]
            windows[m] = ([times[i] for i in keep], [values[i] for i in keep])
        yield NodeHistory(rows.site, rows.node, times[-1], times, rows.columns["seq"], windows)


_Item = tuple[str, str, int, dict[str, Series], Sequence[int], Sequence[Any]]


def _seqs(seqs: list[Any]) -> Sequence[Any]:
    """`seqs` as a machine array when they are all integers (they are, as the gateway stores them)."""
    try:
        return array("q", seqs)
    except (TypeError, OverflowError):
        return seqs


class Fill:
    """A first start's history on a thread of its own, handed to the engine on the loop's thread.

    The thread reads and builds each node's windows (new Series that nothing else sees yet); the
    loop's thread takes them with `take` (Engine.fill: cheap, the windows are made) and, once all
    are in, ends the engine's fill, which judges the readings that waited."""

    def __init__(self, engine: Engine, reader: Reader, seconds: int, clock: Clock) -> None:
        self._engine, self._reader, self._seconds, self._clock = engine, reader, seconds, clock
        self._queue: SimpleQueue[_Item | None] = SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-fill", daemon=True)
        self.readings = 0  # read so far
        self.error: StoreError | None = None
        self.started = time.monotonic()

    def start(self) -> None:
        self._engine.begin_fill()
        self._thread.start()

    def _run(self) -> None:
        engine = self._engine
        try:
            for h in node_history(self._reader, engine.windowed_metrics, self._seconds):
                if self._stop.is_set():
                    return
                built: dict[str, Series] = {}
                for metric, (times, values) in h.windows.items():
                    series = built[metric] = engine.blank_series(metric)
                    series.extend(times, values)
                    series.infer_period()  # (the database does not store period_s)
                # (the times and seqs in machine arrays while they wait: 16 bytes a reading, not 70)
                self._queue.put((h.site, h.node, h.last_ms, built, array("q", h.times), _seqs(h.seqs)))
                self.readings += len(h.times)
            # A node quiet for longer than the windows reach still has its last reading: the
            # offline rule counts from it, as the dashboard's card does ("47 h ago" in both).
            for latest in self._reader.latest(self._clock()):
                self._queue.put((latest.site, latest.node, int(latest.time.timestamp() * 1000), {}, [], []))
        except StoreError as exc:
            self.error = exc
        except Exception as exc:  # a bug here must not leave the rules waiting for ever
            log.exception("alerts: the windows' history could not be read")
            self.error = StoreError(str(exc), retryable=False)
        finally:
            self._reader.close()
            self._queue.put(None)

    def take(self) -> bool:
        """Hand the nodes read so far to the engine; True once all are (the thread has ended)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except Empty:
                return False
            if item is None:
                return True
            self._engine.fill(*item)

    def wait(self, timeout_s: float) -> bool:
        """Let the thread finish (a stop during the fill); False if it has not in `timeout_s`."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def cancel(self) -> None:
        self._stop.set()
