"""The dashboard's list of active alerts (the overview, `/api/v1/alerts/active`): InfluxDB's answer
(`Reader.active_alerts`, the last event of every `alert` series) against the table that follows the
gateway's alert store by event id (`gateway/web/kept.py` `KeptAlerts`, issue 24), side by side.

One private influxd; per case a database and an `alerts.sqlite` of its own, each holding the same
events: every (node, rule) raised, one in ten of them cleared after (so the store holds more events
than are active). Printed per case: the reader's median and p95 over `--rounds` calls, the kept
table's (`with_counts`, what the overview asks), its first read of the whole store, an idle refresh,
and the ratio of the reader to the table.

    flock /work/bench.lock .venv/bin/python -u bench/active_alerts.py [--nodes 20,1000] [--rounds 11]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway import devservices
from gateway.alerts.events import AlertEvent, alert_id
from gateway.alerts.store import AlertStore, EventFollower
from gateway.config import InfluxConfig
from gateway.stores.backends import open_reader
from gateway.web.kept import KeptAlerts

RULES = ("pm25-instant", "pm10-24h", "offline")


def _post(url: str, body: bytes) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=300) as resp:
        if resp.status not in (200, 204):
            raise RuntimeError(f"{url}: {resp.status}")


def _events(nodes: int, now: datetime) -> list[AlertEvent]:
    out = []
    for n in range(nodes):
        for i, rule in enumerate(RULES):
            started = now - timedelta(hours=2, minutes=n % 60, seconds=i)
            e = AlertEvent(
                id=alert_id("tsagaan", f"n{n:04d}", rule, started),
                state="raised",
                site=f"site{n % 5}",
                node=f"n{n:04d}",
                rule=rule,
                rule_type="threshold",
                metric="pm2_5",
                severity="warning",
                at=started,
                started=started,
                ended=None,
                value=150.0,
                limit=100.0,
                average="instant",
                peak=150.0,
                late=False,
                message=f"PM2.5 150.0 µg/m³ at n{n:04d} exceeds the limit of 100.0 µg/m³",
                msg_id="alert.threshold.above",
                msg_params={"value": 150.0, "limit": 100.0},
                unit="µg/m³",
            )
            out.append(e)
            if (n * len(RULES) + i) % 10 == 0:
                out.append(e.with_state("cleared", at=started + timedelta(minutes=30)))
    return out


def _times(call: Callable[[], object], rounds: int) -> tuple[float, float]:
    spent = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        call()
        spent.append((time.perf_counter() - t0) * 1000)
    spent.sort()
    return statistics.median(spent), spent[min(len(spent) - 1, round(0.95 * (len(spent) - 1)))]


def _case(work: Path, influx: str, nodes: int, rounds: int) -> str:
    db = f"alerts_{nodes}"
    now = datetime.now(UTC).replace(microsecond=0)
    events = _events(nodes, now)
    _post(f"{influx}/query", urllib.parse.urlencode({"q": f'CREATE DATABASE "{db}"'}).encode())
    write = f"{influx}/write?{urllib.parse.urlencode({'db': db, 'precision': 'ms'})}"
    _post(write, "\n".join(e.to_line() for e in events).encode())
    path = work / db / "alerts.sqlite"
    store = AlertStore(path)
    store.commit([], [(e.to_json(), []) for e in events])
    store.close()
    reader = open_reader(InfluxConfig(url=influx, database=db, api="v1"))  # type: ignore[arg-type]
    try:
        kept = KeptAlerts(reader, follow=EventFollower(path), refresh_s=3600)
        t0 = time.perf_counter()
        kept.refresh()
        first_ms = (time.perf_counter() - t0) * 1000
        active, _ = kept.with_counts(now)
        assert active == reader.active_alerts(now), "the table and InfluxDB disagree"
        db_med, db_p95 = _times(lambda: reader.active_alerts(now), rounds)
        kept_med, kept_p95 = _times(lambda: kept.with_counts(now), rounds)
        idle_med, _ = _times(kept.refresh, rounds)
    finally:
        reader.close()
    return (
        f"{nodes:>6} {len(events):>7} {len(active):>6} {db_med:>9.2f} {db_p95:>8.2f} {kept_med:>9.3f}"
        f" {kept_p95:>8.3f} {first_ms:>9.1f} {idle_med:>8.2f} {db_med / kept_med:>8.0f}×"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="20,1000", help="nodes per case (3 rules each), comma-separated")
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    started = datetime.now(UTC)
    rows = []
    with tempfile.TemporaryDirectory(prefix="minewatch-alerts-") as tmp:
        influxd = devservices.influxd(Path(tmp) / "influxd")
        influxd.start()
        try:
            for n in (int(x) for x in args.nodes.split(",")):
                rows.append(_case(Path(tmp), f"http://127.0.0.1:{influxd.port}", n, args.rounds))
        finally:
            influxd.stop()
    load = Path("/proc/loadavg").read_text().strip()
    print(f"started {started:%Y-%m-%d %H:%M} UTC, pid {os.getpid()}, load {load}")
    print(
        f"{'nodes':>6} {'events':>7} {'active':>6} {'db ms':>9} {'db p95':>8} {'kept ms':>9} {'kept p95':>8}"
        f" {'first ms':>9} {'idle ms':>8} {'db/kept':>9}"
    )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
