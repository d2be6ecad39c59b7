"""Regional hub benchmark, side by side in one run (docs/operations.md, "The regional hub").

    .venv/bin/python bench/hub.py [--sites 100] [--nodes 10] [--hours 168] [--backfill-days 7]
                                  [--cache DIR] [--window 100]

Starts a private PostgreSQL, Mosquitto and influxd, then measures:

  copy      the baseline: the same rows COPY'd straight into the hub's partitioned `reading` table,
            streamed from the cache's COPY text (so only the database's own fastest path is timed).
  hub       `minewatch-gateway hub run` taking the sites' ForwardBatches (500 signed readings each,
            keys first) from its broker: parse, check the site, verify every Ed25519 signature,
            COPY into a staging table, insert once with the hourly aggregates, commit, ack. The
            sites' batches go round-robin, at most `--window` not yet acknowledged by the hub (as
            forwarders waiting for acks would). Timed from the first publish to the last ack; CPU
            per reading of the hub process and of PostgreSQL, peak RSS of the hub process.
  backfill  one site of `--nodes` nodes back after `--backfill-days` offline: its gateway's forwarder
            drains a week of minute readings from its InfluxDB to the hub.
  query     one site's year (one node, minute readings, stored through the hub's store, which keeps
            the hourly aggregates as it goes): daily means over the year against the same over one
            day, median of 5 — from the readings, from `reading_hourly`, and from `reading_hourly`
            as a neighbour's role whose agreement shares hourly PM2.5 (row-level security judging
            every row).

The readings are made and signed once, niced, into `--cache` (bench/hub_cache.py: the week of 100
sites x 10 nodes is about 7 GB there) and streamed from it: nothing of the week is held in memory.
The issue asks for 100 sites x 10 nodes x a week (10,080,000 readings), the default; a smaller
`--hours` runs the first hours of the same cache.

`--only-query` runs the query part alone (`--policy FILE` also measures it, side by side, with the
row-level security of FILE run after `hub init`, e.g. bench/hub_policy_perrow.sql).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import hub_cache  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from contract.hub import ForwardBatch, ForwardedKey, HubAck, forward_topic  # noqa: E402
from contract.metrics import Metric  # noqa: E402
from contract.signing import Signer, public_b64  # noqa: E402
from contract.wire import MetricValue, ReadingPayload  # noqa: E402
from gateway import devservices  # noqa: E402
from gateway.points import to_line  # noqa: E402
from gateway.stores.postgres_hub import HubStore, Verdicted  # noqa: E402

PREFIX = "benchhub"
CLK_TCK = os.sysconf("SC_CLK_TCK")
T0 = hub_cache.T0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _tree_cpu_s(pid: int) -> float:
    """CPU of a process and its live children (PostgreSQL: the postmaster and its backends),
    plus what its children that ended were charged (cutime, cstime)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return total + sum(int(f) for f in fields[11:15]) / CLK_TCK


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reading(site: str, node: str, seq: int, ts: datetime) -> ReadingPayload:
    return ReadingPayload(
        schema=1, site=site, node=node, seq=seq, ts=ts, period_s=60, flags=[],
        metrics={Metric.PM2_5: MetricValue(value=10.0 + seq % 37, n=60, raw=12.0 + seq % 37),
                 Metric.PM10: MetricValue(value=20.0 + seq % 41, n=60, raw=22.0 + seq % 41)},
    )  # fmt: skip


def _dsn(pg: devservices.Service, db: str) -> str:
    return devservices.pg_dsn(pg, db)


def _createdb(pg: devservices.Service, name: str) -> str:
    with psycopg.connect(devservices.pg_dsn(pg), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _dsn(pg, name)


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM reading").fetchone()
    return int(row[0]) if row else 0


def _wait_count(dsn: str, n: int, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if _count(dsn) >= n:
            return time.monotonic()
        time.sleep(0.2)
    raise SystemExit(f"only {_count(dsn)} of {n} readings at the hub after {timeout_s:.0f} s")


def _register(dsn: str, identities: dict[str, Signer]) -> None:
    store = HubStore(dsn)
    store.prepare()
    store.add_jurisdiction("bench", "Bench", f"j_bench_{os.getpid()}")
    for site, identity in identities.items():
        store.add_site(site, "bench", public_b64(identity.private.public_key()))
    store.close()


def _publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"benchpub-{time.time_ns()}")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _hub_toml(tmp: Path, port: int, dsn: str) -> Path:
    cfg = tmp / "hub.toml"
    cfg.write_text(
        f'topic_prefix = "{PREFIX}"\n[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
        f'client_id = "benchhub-{tmp.name}-{os.getpid()}"\n[database]\ndsn = "{dsn}"\n'
    )
    return cfg


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", *args], stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT
        )


def _partitions(dsn: str, minutes: int) -> None:
    """The months the readings fall in, made before the clock starts (as the hub makes each once)."""
    store = HubStore(dsn)
    store.prepare()
    store._ensure_partitions([T0, T0 + timedelta(minutes=max(minutes - 1, 0))])
    store.close()


def bench_copy(
    pg: devservices.Service, cache: Path, sites: list[str], batches: int, minutes: int
) -> tuple[float, float]:
    """Readings a second, and PostgreSQL's CPU a reading, of one `COPY` streaming every site's rows."""
    dsn = _createdb(pg, "copy_base")
    _partitions(dsn, minutes)
    rows = 0
    assert pg.proc is not None
    with psycopg.connect(dsn, autocommit=True) as conn:
        cpu0 = _tree_cpu_s(pg.proc.pid)
        start = time.monotonic()
        with (
            conn.cursor() as cur,
            cur.copy("COPY reading (site, node, seq, ts, verdict, kid, metrics, payload) FROM STDIN") as copy,
        ):
            for site in sites:
                left = hub_cache.copy_bytes(cache, site, batches)
                with (cache / f"{site}.copy").open("rb") as fh:
                    while left > 0:
                        chunk = fh.read(min(left, 1 << 20))
                        left -= len(chunk)
                        rows += chunk.count(b"\n")
                        copy.write(chunk)
        elapsed = time.monotonic() - start
        cpu = _tree_cpu_s(pg.proc.pid) - cpu0
        got = conn.execute("SELECT count(*) FROM reading").fetchone()
    if not got or got[0] != rows:
        raise SystemExit(f"COPY stored {got} of {rows} rows")
    return rows / elapsed, cpu / rows


class _Acks:
    """The hub's acks, as a forwarder takes them: each frees a place in the window."""

    def __init__(self, port: int, window: int) -> None:
        self.window = threading.Semaphore(window)
        self.count = self.stored = 0
        self.last = 0.0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"benchack-{time.time_ns()}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{PREFIX}/v1/+/ack", qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.stored += HubAck.model_validate_json(msg.payload).stored
        self.count += 1
        self.last = time.monotonic()
        self.window.release()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _round_robin(cache: Path, sites: list[str], batches: int) -> Iterator[tuple[int, str, bytes]]:
    """Batch 1 of every site, then batch 2 of every site, ...: read from disk as published, each
    with the number of rounds completed before it."""
    readers = [(forward_topic(PREFIX, site), hub_cache.read_batches(cache, site, batches)) for site in sites]
    rnd = 0
    while readers:
        for entry in list(readers):
            body = next(entry[1], None)
            if body is None:
                readers.remove(entry)
            else:
                yield rnd, entry[0], body
        rnd += 1


def _keys_batch(site: str, nodes: int) -> bytes:
    identity = hub_cache.signer_for(site)
    keys = []
    for j in range(nodes):
        node = hub_cache.node_name(j)
        signer = hub_cache.signer_for(site, node)
        keys.append(ForwardedKey.vouched({
            "kid": signer.kid, "site": site, "node": node,
            "public_key": public_b64(signer.private.public_key()),
            "created": "2026-01-01T00:00:00Z", "status": "active", "since": None,
        }, identity.private))  # fmt: skip
    return ForwardBatch(site=site, batch=0, keys=keys).model_dump_json().encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--hours", type=float, default=168.0)
    ap.add_argument("--backfill-days", type=float, default=7.0)
    ap.add_argument("--no-backfill", action="store_true")
    ap.add_argument("--no-query", action="store_true")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "minewatch-bench-hub-cache")
    ap.add_argument("--window", type=int, default=100, help="batches published and not yet acknowledged")
    ap.add_argument("--hub-minutes", type=float, default=None,
                    help="stop publishing after this long (at the end of a round of every site's next batch);"
                    " the run then measures what was sent, and the COPY takes the same rows")  # fmt: skip
    ap.add_argument("--only-query", action="store_true", help="measure only one site's year (query)")
    ap.add_argument("--policy", type=Path, help="with --only-query: the year also with this SQL's policies "
                    "run after `hub init` (bench/hub_policy_perrow.sql), side by side")  # fmt: skip
    args = ap.parse_args()
    if args.only_query:
        return only_query(args.policy)

    print(f"load average at the start: {Path('/proc/loadavg').read_text().strip()}")
    step = hub_cache.BATCH // args.nodes  # minutes a batch holds
    # exactly the minutes asked for (a week is 10,080): each site's last batch may be partial, as
    # the cache made for the same --hours holds it (a cache made for more would hold it whole, and
    # the count stored would then differ from `total`: the run refuses that at its end)
    minutes = int(args.hours * 60)
    t = time.monotonic()
    hub_cache.ensure(args.cache, hub_cache.Meta(args.sites, args.nodes, minutes))  # a no-op once made
    sites = [hub_cache.site_name(i) for i in range(args.sites)]
    per_site = -(-args.nodes * minutes // hub_cache.BATCH)
    total = args.sites * args.nodes * minutes
    print(f"{args.sites} sites x {args.nodes} nodes x {minutes} minute readings = {total:,} "
          f"({minutes / (7 * 1440):.1%} of a week; cache ready in {time.monotonic() - t:.0f} s, "
          "not timed)")  # fmt: skip

    tmp = Path(tempfile.mkdtemp(prefix="minewatch-bench-hub-"))
    tmp.chmod(0o755)  # as root, PostgreSQL runs as `postgres`, which must reach its directory
    pg = devservices.postgres(tmp / "pg")
    broker = devservices.mosquitto(tmp / "broker")
    influxd = devservices.influxd(tmp / "influxd")
    pg.start()
    broker.start()
    hub: subprocess.Popen[bytes] | None = None
    try:
        # ---- the hub
        dsn = _createdb(pg, "hub_bench")
        _register(dsn, {site: hub_cache.signer_for(site) for site in sites})
        _partitions(dsn, minutes)
        hub = _spawn(
            ["gateway.cli", "hub", "run", "--config", str(_hub_toml(tmp, broker.port, dsn))], tmp / "hub.log"
        )
        while "taking batches" not in (tmp / "hub.log").read_text():
            time.sleep(0.1)
        time.sleep(0.5)
        acks = _Acks(broker.port, args.window)
        pub = _publisher(broker.port)
        assert pg.proc is not None
        cpu0, pg_cpu0 = _cpu_s(hub.pid), _tree_cpu_s(pg.proc.pid)
        start = time.monotonic()
        sent = 0
        for site in sites:  # keys first, as a forwarder sends them
            acks.window.acquire()
            pub.publish(forward_topic(PREFIX, site), _keys_batch(site, args.nodes), qos=1)
            sent += 1
        report = start + 60
        rounds = 0
        for rnd, topic, body in _round_robin(args.cache, sites, per_site):
            if rnd != rounds:  # a round of every site's next batch is out
                rounds = rnd
                if args.hub_minutes is not None and time.monotonic() - start >= args.hub_minutes * 60:
                    break
            acks.window.acquire()
            pub.publish(topic, body, qos=1)
            sent += 1
            if time.monotonic() >= report:
                print(f"  ... {acks.count:,} of {len(sites) * (per_site + 1):,} batches acknowledged, "
                      f"{acks.stored:,} readings, {time.monotonic() - start:.0f} s", flush=True)  # fmt: skip
                report += 60
        else:
            rounds = per_site
        deadline = time.monotonic() + 600
        while acks.count < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        end = acks.last
        hub_cpu = _cpu_s(hub.pid) - cpu0
        pg_cpu = _tree_cpu_s(pg.proc.pid) - pg_cpu0
        hub_rss = _peak_rss_mb(hub.pid)
        acks.stop()
        pub.disconnect()
        pub.loop_stop()
        stored = _count(dsn)
        if rounds < per_site:
            minutes, per_site = rounds * step, rounds
            total = args.sites * args.nodes * minutes
            print(f"  stopped after {args.hub_minutes:g} min: {rounds} batches of every site were sent, "
                  f"{minutes} minutes of {args.sites} x {args.nodes} nodes = {total:,} readings, "
                  f"{minutes / (7 * 1440):.1%} of the week")  # fmt: skip
        if acks.count < sent or stored != total:
            raise SystemExit(
                f"{acks.count} of {sent} batches acknowledged, {stored:,} of {total:,} readings stored"
            )
        hub_rate = total / (end - start)
        copy_rate, copy_pg_cpu = bench_copy(pg, args.cache, sites, per_site, minutes)
        print(f"copy     {copy_rate:10,.0f} readings/s  (COPY of the same rows into the partitioned table; "
              f"PostgreSQL CPU {copy_pg_cpu * 1e6:.0f} us/reading)", flush=True)  # fmt: skip
        print(f"hub      {hub_rate:10,.0f} readings/s  ratio to copy {hub_rate / copy_rate:.2f}x, "
              f"{end - start:.0f} s; hub CPU {hub_cpu / total * 1e6:.0f} us/reading, PostgreSQL CPU "
              f"{pg_cpu / total * 1e6:.0f} us/reading, hub peak RSS {hub_rss:.0f} MB")  # fmt: skip
        week = 7 * 1440 * args.sites * args.nodes
        print(
            f"         at this rate the week ({week:,} readings) takes the hub {week / hub_rate / 60:.0f} min"
        )
        hub.terminate()
        hub.wait(30)
        if not args.no_backfill:
            backfill(tmp, influxd, broker, pg, args.nodes, args.backfill_days)
        if not args.no_query:
            query(pg, dsn)
    finally:
        if hub is not None and hub.poll() is None:  # a run that failed leaves no hub behind
            hub.terminate()
            hub.wait(30)
        for service in (influxd, broker, pg):
            service.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"the bench's own peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"load average at the end: {Path('/proc/loadavg').read_text().strip()}")  # fmt: skip
    return 0


def backfill(
    tmp: Path, influxd: devservices.Service, broker: devservices.Service, pg: devservices.Service,
    nodes: int, days: float,
) -> None:  # fmt: skip
    """A site back after `days` offline: its readings are in its InfluxDB, the hub has none."""
    from gateway.trust.provision import register
    from tests.helpers import Influx, gateway_toml

    influxd.start()
    db = Influx(f"http://127.0.0.1:{influxd.port}", "site")
    db.create()
    dsn = _createdb(pg, "hub_backfill")
    identity = Signer.generate()
    (tmp / "site").mkdir()
    identity.write(tmp / "site" / "identity.pem")
    _register(dsn, {"back": identity})
    per_node = int(days * 1440)
    start_ts = datetime.now(UTC) - timedelta(days=days)
    # signed, as a provisioned site's readings are (an unsigned row keeps no period_s to rebuild from)
    signers = {f"n{j:02d}": Signer.generate() for j in range(nodes)}
    lines = [to_line(signer.sign(_reading("back", node, s + 1, start_ts + timedelta(minutes=s))))
             for node, signer in signers.items() for s in range(per_node)]  # fmt: skip
    keys = tmp / "site" / "keys"
    for node, signer in signers.items():
        register(keys, "back", node, signer, now=start_ts - timedelta(days=1))
    for k in range(0, len(lines), 20_000):
        db.write(lines[k : k + 20_000])
    cfg = gateway_toml(
        tmp / "site" / "gateway.toml", mqtt_port=broker.port, influx_url=db.url, db=db.db, prefix="benchsite",
        extra=f'[trust]\nkeys_dir = "{keys}"\n[forward]\nsite = "back"\ntopic_prefix = "{PREFIX}"\n'
        f'identity_file = "{tmp / "site" / "identity.pem"}"\n[forward.mqtt]\nhost = "127.0.0.1"\n'
        f'port = {broker.port}\nclient_id = "benchsite-{os.getpid()}"\n',
    )  # fmt: skip
    hub = _spawn(["gateway.cli", "hub", "run", "--config", str(_hub_toml(tmp / "site", broker.port, dsn))],
                 tmp / "hub-backfill.log")  # fmt: skip
    while "taking batches" not in (tmp / "hub-backfill.log").read_text():
        time.sleep(0.1)
    start = time.monotonic()
    gw = _spawn(["gateway.cli", "run", "--config", str(cfg)], tmp / "site" / "gateway.log")
    try:
        end = _wait_count(dsn, len(lines), 3600)
    finally:
        for proc in (gw, hub):
            proc.terminate()
            proc.wait(30)
    print(f"backfill {len(lines) / (end - start):10,.0f} readings/s  {nodes} nodes x {days:g} days "
          f"({len(lines):,} readings) drained in {end - start:.0f} s, gateway start included")  # fmt: skip


def only_query(policy: Path | None) -> int:
    """The query part alone, in a fresh database (and, with `policy`, in a second one whose policies
    that SQL replaced): one site's year, stored through the hub's store, then timed."""
    tmp = Path(tempfile.mkdtemp(prefix="minewatch-bench-hubyear-"))
    tmp.chmod(0o755)  # as root, PostgreSQL runs as `postgres`, which must reach its directory
    pg = devservices.postgres(tmp / "pg")
    pg.start()
    try:
        for name, sql_file in [("hub_year", None), *([("hub_year_alt", policy)] if policy else [])]:
            dsn = _createdb(pg, name)
            _register(dsn, {})
            if sql_file is not None:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(sql_file.read_text().encode())
            print(f"{name}: policies of {sql_file or 'gateway/stores/postgres_schema.sql'}", flush=True)
            query(pg, dsn)
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def query(pg: devservices.Service, dsn: str) -> None:
    """One site's year on the hub: daily means over a year against one day."""
    year = 365 * 1440
    store = HubStore(dsn)
    store.add_site("year", "bench", public_b64(Signer.generate().private.public_key()))
    for k in range(0, year, 10_000):  # a chunk at a time: the year is never held in memory
        store.write_readings([
            Verdicted(_reading("year", "n00", s + 1, datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=s)),
                      "unsigned") for s in range(k, min(k + 10_000, year))
        ])  # fmt: skip
    store.close()
    store = HubStore(dsn)
    role = f"j_nb_{os.getpid()}"
    store.add_jurisdiction("nb", "Neighbour", role)
    store.add_agreement(
        name="year-hourly", grantor="bench", grantee="nb", sites=["year"], licence="CC-BY-4.0",
        valid_from=datetime(2020, 1, 1, tzinfo=UTC), valid_to=None, delay_s=0, recorded_by="bench",
        metrics=["pm2_5"], form="hourly",
    )  # fmt: skip
    store.close()
    raw = ("SELECT date_trunc('day', ts) AS d, avg((metrics->>'pm2_5')::float8), count(*) FROM reading"
           " WHERE site = 'year' AND ts >= %s AND ts < %s GROUP BY d ORDER BY d")  # fmt: skip
    hourly = ("SELECT date_trunc('day', hour) AS d, sum(total) / sum(n), sum(n) FROM reading_hourly"
              " WHERE site = 'year' AND metric = 'pm2_5' AND hour >= %s AND hour < %s"
              " GROUP BY d ORDER BY d")  # fmt: skip
    times = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE reading")
        conn.execute("ANALYZE reading_hourly")
        for label, sql, as_role in (
            ("raw", raw, None),
            ("hourly", hourly, None),
            ("neighbour", hourly, role),
        ):
            conn.execute(f'SET ROLE "{as_role}"' if as_role else "RESET ROLE")
            for span, end in (
                ("day", datetime(2025, 1, 2, tzinfo=UTC)),
                ("year", datetime(2026, 1, 1, tzinfo=UTC)),
            ):
                runs, got = [], []
                for _ in range(5):
                    t = time.monotonic()
                    got = conn.execute(sql, [datetime(2025, 1, 1, tzinfo=UTC), end]).fetchall()
                    runs.append(time.monotonic() - t)
                assert len(got) == (365 if span == "year" else 1), (label, span, len(got))
                times[(label, span)] = statistics.median(runs)
        conn.execute("RESET ROLE")
    for label, what in (("raw", "from the readings"), ("hourly", "from reading_hourly"),
                        ("neighbour", "from reading_hourly as a neighbour's role (RLS)")):  # fmt: skip
        y, d = times[(label, "year")] * 1000, times[(label, "day")] * 1000
        print(f"query    daily means of a year {y:.0f} ms, of a day {d:.1f} ms {what} "
              f"(ratio {y / d:.0f}x; {year:,} readings)")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
