"""Which stored readings the `on_stored` hooks have already seen, per node, in bounded memory.

InfluxDB keeps one point for a redelivered reading (same tags and time), but the hooks (the alert
engine) would count it again. A reading is identified by (site, node, seq); per node we keep the
highest seq seen, its time, and a bitmap of the `window` seqs below it. A seq is a repeat when its bit
is set. A node that lost its outbox starts again at seq 1 with a *newer* `ts`: a seq at or below the
high mark with a `ts` later than the high mark's is a new life of the node, not a repeat, and resets
its window. A seq older than the window is passed through (it cannot be told apart; rare).

The state is saved to a small JSON file (`save`/`load`) by the gateway every few seconds and at
shutdown, so a restarted gateway still recognises what its hooks saw before. What is not covered: a
reading passed to the hooks in the last few seconds before a kill -9 whose acknowledgement had not
reached the broker yet can be shown to the hooks once more after the restart.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path


class RecentSeqs:
    def __init__(self, window: int = 4096, max_nodes: int = 10_000) -> None:
        self._window = window
        self._max_nodes = max_nodes
        # (site, node) -> [high seq, ts_ms of high seq, bitmap: bit k set = seq (high - k) seen]
        self._nodes: OrderedDict[tuple[str, str], list[int]] = OrderedDict()

    def is_new(self, site: str, node: str, seq: int, ts_ms: int) -> bool:
        """True the first time a reading is offered (and remember it), False for a repeat."""
        if self._window <= 0:
            return True
        key = (site, node)
        state = self._nodes.get(key)
        if state is None:
            self._nodes[key] = [seq, ts_ms, 1]
            if len(self._nodes) > self._max_nodes:
                self._nodes.popitem(last=False)
            return True
        high, high_ts, bits = state
        if seq > high:
            shift = seq - high
            bits = ((bits << shift) | 1) & ((1 << self._window) - 1) if shift < self._window else 1
            state[0], state[1], state[2] = seq, ts_ms, bits
            self._nodes.move_to_end(key)
            return True
        if ts_ms > high_ts:  # an old seq with a newer time: the node started a new life
            state[0], state[1], state[2] = seq, ts_ms, 1
            return True
        k = high - seq
        if k >= self._window:
            return True
        if bits >> k & 1:
            return False
        state[2] = bits | (1 << k)
        return True

    def has(self, site: str, node: str, seq: int, ts_ms: int) -> bool:
        """Whether exactly this reading was offered before (its repeat is already stored); looks
        only, remembers nothing."""
        state = self._nodes.get((site, node))
        if state is None or self._window <= 0:
            return False
        high, high_ts, bits = state
        if seq > high or ts_ms > high_ts or high - seq >= self._window:
            return False
        return bool(bits >> (high - seq) & 1)

    def save(self, path: Path) -> None:
        doc = {f"{s}/{n}": [h, t, format(b, "x")] for (s, n), (h, t, b) in self._nodes.items()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"window": self._window, "nodes": doc}))
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        """Restore a saved state; a missing or unreadable file just starts empty."""
        try:
            doc = json.loads(path.read_text())
            if doc.get("window") != self._window:
                return
            for key, (high, ts_ms, bits) in doc["nodes"].items():
                site, node = key.split("/", 1)
                self._nodes[(site, node)] = [int(high), int(ts_ms), int(bits, 16)]
        except (OSError, ValueError, KeyError, TypeError):
            self._nodes.clear()
