"""Several node services in one process, one thread each: the chaos test's nodes.

`python -m tests.chaos_nodes OUT.json node1.toml node2.toml ...` runs the real NodeService (sampler,
SQLite outbox, forwarder, paho publisher) for each config until SIGTERM, then writes to OUT.json every
seq each node committed and how many readings were still in its outbox. Threads instead of one process
per node: twenty Python processes would spend the test's CPU budget on start-up on a 2-core machine.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from node.config import load
from node.outbox import Outbox
from node.sampler import Reading
from node.service import NodeService


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    configs = [load(p) for p in argv[1:]]
    committed: dict[str, list[int]] = {cfg.node: [] for cfg in configs}
    lock = threading.Lock()
    services = []
    for cfg in configs:

        def record(seq: int, reading: Reading, node: str = cfg.node) -> None:
            with lock:
                committed[node].append(seq)

        services.append(NodeService(cfg, on_reading=record))

    def stop(signum: int, frame: FrameType | None) -> None:
        for service in services:
            service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    threads = [threading.Thread(target=s.run, name=s.cfg.node) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)  # with a timeout, so the main thread stays responsive to SIGTERM
    left = {}
    for cfg in configs:
        outbox = Outbox(cfg.buffer.path)
        left[cfg.node] = outbox.depth()
        outbox.close()
    out.write_text(json.dumps({"committed": committed, "left_in_outbox": left}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
