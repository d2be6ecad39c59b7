"""The hub's read side, side by side in one run (docs/operations.md, "The hub's read side").

    .venv/bin/python bench/hub_read.py [--nodes 10] [--days 30] [--rounds 3]

Starts a private PostgreSQL, stores one site of `--nodes` nodes × `--days` of one-minute readings
(through HubStore.write_readings, as `hub run` does), shares the site with a second jurisdiction,
and times the read seam (gateway/stores/postgres_reader.py) three ways on the same data:

  owner    the hub's own role (the tables' owner: row-level security does not apply) — the baseline
  own      the site's jurisdiction's role (policy: its own site)
  shared   the other jurisdiction's role (policy: an agreement in force, with a delay)
  partial  a third jurisdiction's role granted only PM2.5, raw (reading_value: values, unsigned)

for: the latest reading of every node (a dashboard page), a week's hourly chart of one node, the
daily means of the whole period (the report's main query), the CSV export of the whole period
(readings/s), and the whole regulators' report (data.collect). Medians of `--rounds`.

`--policy FILE` loads a second database the same way with FILE's SQL run after `hub init` (another
row-level security policy, e.g. bench/hub_policy_perrow.sql, the policies before the InitPlan form)
and measures it in the same run. Before the times, it prints how many readings (and PM2.5 values)
each role sees, so two policies can be checked to show the same rows.
"""

from __future__ import annotations

import argparse
import functools
import io
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from contract.metrics import Metric  # noqa: E402
from contract.signing import Signer, public_b64  # noqa: E402
from contract.wire import MetricValue, ReadingPayload  # noqa: E402
from gateway import devservices, export  # noqa: E402
from gateway.report import data  # noqa: E402
from gateway.stores.postgres_hub import HubStore, Verdicted  # noqa: E402
from gateway.stores.postgres_reader import PostgresReader  # noqa: E402
from gateway.stores.reader import Span  # noqa: E402

END = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def _reading(node: str, seq: int, ts: datetime) -> ReadingPayload:
    return ReadingPayload(
        schema=1, site="big", node=node, seq=seq, ts=ts, period_s=60, flags=[],
        metrics={Metric.PM2_5: MetricValue(value=10.0 + seq % 37, n=60, raw=12.0 + seq % 37),
                 Metric.PM10: MetricValue(value=20.0 + seq % 41, n=60, raw=22.0 + seq % 41)},
    )  # fmt: skip


def _median(fn: Callable[[], object], rounds: int) -> float:
    runs = []
    for _ in range(rounds):
        t = time.monotonic()
        fn()
        runs.append(time.monotonic() - t)
    return statistics.median(runs)


def _load(pg: devservices.Service, name: str, args: argparse.Namespace, policy: Path | None) -> str:
    with psycopg.connect(devservices.pg_dsn(pg), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = devservices.pg_dsn(pg, name)
    start = END - timedelta(days=args.days)
    store = HubStore(dsn)
    store.prepare()
    if policy is not None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(policy.read_text().encode())
    store.add_jurisdiction("owner", "Owner", f"j_{name}_own")
    store.add_jurisdiction("neighbour", "Neighbour", f"j_{name}_shared")
    store.add_jurisdiction("basin", "Basin", f"j_{name}_partial")
    store.add_site("big", "owner", public_b64(Signer.generate().private.public_key()))
    store.add_agreement(
        name="big-to-neighbour", grantor="owner", grantee="neighbour", sites=["big"], licence="CC-BY-4.0",
        valid_from=start - timedelta(days=1), valid_to=None, delay_s=3600, recorded_by="bench",
    )  # fmt: skip
    store.add_agreement(
        name="big-pm-to-basin", grantor="owner", grantee="basin", sites=["big"], licence="CC-BY-4.0",
        valid_from=start - timedelta(days=1), valid_to=None, delay_s=3600, recorded_by="bench",
        metrics=["pm2_5"],
    )  # fmt: skip
    t = time.monotonic()
    batch: list[Verdicted] = []
    for i in range(args.days * 1440):
        ts = start + timedelta(minutes=i + 1)
        for n in range(args.nodes):
            batch.append(Verdicted(_reading(f"n{n:02d}", i + 1, ts), "unsigned"))
        if len(batch) >= 20_000:
            store.write_readings(batch)
            batch = []
    store.write_readings(batch)
    store.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE reading")
    print(f"{name}: stored {args.days * 1440 * args.nodes:,} readings in {time.monotonic() - t:.0f} s")
    return dsn


def _measure(dsn: str, name: str, args: argparse.Namespace) -> None:
    start = END - timedelta(days=args.days)
    rows = args.days * 1440 * args.nodes
    with psycopg.connect(dsn) as conn:
        owner = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
    span = Span("big", [], start, END)
    week = (END - timedelta(days=7), END)
    req = export.ExportRequest(
        site="big", nodes=[], start=start, end=END, metrics=[Metric.PM2_5, Metric.PM10]
    )
    roles = (owner, f"j_{name}_own", f"j_{name}_shared", f"j_{name}_partial")
    readers = [PostgresReader(dsn, r) for r in roles]
    seen = [
        (
            sum(1 for _ in r.readings(span, ["pm2_5"])),
            sum(1 for x in r.readings(span, ["pm2_5"]) if "pm2_5" in x),
        )
        for r in readers
    ]
    print(f"\n{name}: readings (with PM2.5) each role sees: " + ", ".join(f"{a:,} ({b:,})" for a, b in seen))
    print(f"{name:28s} {'owner (no RLS)':>16s} {'own role':>12s} {'shared role':>12s} {'partial role':>12s}")
    results: dict[str, list[float]] = {}
    tests: list[tuple[str, Callable[[PostgresReader], object]]] = [
        ("latest, every node (ms)", lambda r: r.latest(END)),
        ("a week's hourly chart (ms)", lambda r: r.series("big", "n00", ["pm2_5"], *week, 3600)),
        ("daily means, period (ms)", lambda r: list(r.aggregate(span, "pm2_5", ["mean", "count"],
                                                                 bucket=timedelta(days=1), fill="none"))),
        ("CSV export (s)", lambda r: export.write(r, req, io.StringIO(), "csv")),
        ("report, data.collect (s)", lambda r: data.collect(r, site="big", start=start, end=END,
                                                            generated=END, standards=["who-2021"])),
    ]  # fmt: skip
    for label, fn in tests:
        results[label] = [_median(functools.partial(fn, r), args.rounds) for r in readers]
        scale = 1 if "(s)" in label else 1000
        cells = "".join(
            f"{v * scale:12.1f}" if i else f"{v * scale:16.1f}" for i, v in enumerate(results[label])
        )
        print(f"{label:28s} {cells}", flush=True)
    exp = results["CSV export (s)"]
    shared_rows = rows - 60 * args.nodes  # the last hour is delayed for the shared role
    print(f"export rate: owner {rows / exp[0]:,.0f}, own {rows / exp[1]:,.0f}, "
          f"shared {shared_rows / exp[2]:,.0f}, partial {shared_rows / exp[3]:,.0f} readings/s")  # fmt: skip
    for r in readers:
        r.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--policy", type=Path, help="also measure, in the same run, the policies of this SQL file"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="minewatch-bench-hubread-"))
    pg = devservices.postgres(tmp)  # as root the cluster runs as `postgres`: it must enter tmp
    pg.start()
    try:
        dsns = [("schema", _load(pg, "schema", args, None))]
        if args.policy is not None:
            dsns.append(("alt", _load(pg, "alt", args, args.policy)))
        for name, dsn in dsns:
            _measure(dsn, name, args)
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
