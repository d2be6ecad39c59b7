"""`minewatch-node check --config node.toml [--json]`: is this kit working? In plain words.

Reads every configured sensor for a few seconds (one after the other: the node must be stopped, as
the serial ports are opened exclusively), prints one line per sensor — found or not, the values,
warm-up, faults, and what to check when something is wrong — then connects to the broker with the
node's credentials. Exit 0 when everything answered, 1 otherwise (2 for a bad config).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from contract.metrics import METRIC_UNITS
from hardware.base import SensorError, SensorOptions, is_warming_up, open_driver, raw_range
from node.config import NodeConfig, load
from node.publisher import probe_broker

SHOWN_METRICS = 6  # a PMS reports 12; the line shows the first ones, --json has them all


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "check", help="read every sensor for a few seconds and try the broker; exit 0 when all is well"
    )
    parser.add_argument("--config", required=True, help="path to node.toml")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to read each sensor (default 5)")
    parser.set_defaults(func=run)


@dataclass
class SensorReport:
    name: str
    type: str
    status: str  # ok | warming_up | no_data | fault
    values: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    failed_reads: int = 0
    hint: str | None = None

    @property
    def is_ok(self) -> bool:
        return self.status in ("ok", "warming_up")


def check_sensor(opts: SensorOptions, seconds: float) -> SensorReport:
    name = opts.name or opts.type
    totals: dict[str, list[float]] = {}
    errors: list[str] = []
    warming = False
    driver = open_driver(opts, lambda: datetime.now(UTC))
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                for sample in driver.read():
                    if opts.metrics is None or sample.metric in opts.metrics:  # what the node keeps
                        totals.setdefault(sample.metric.value, []).append(sample.raw)
            except SensorError as exc:
                errors.append(str(exc))
            warming = warming or is_warming_up(driver)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(opts.sample_interval_s, left))
    finally:
        driver.close()
    report = SensorReport(name, opts.type, "ok", failed_reads=len(errors))
    report.values = {m: round(sum(v) / len(v), 3) for m, v in totals.items()}
    report.samples = max((len(v) for v in totals.values()), default=0)
    if not totals:  # values, when there are any, matter more than a warm-up timer started by us
        report.status = "warming_up" if warming and not errors else ("no_data" if not errors else "fault")
        report.hint = errors[-1] if errors else _quiet_hint(warming)
        return report
    for metric, (low, high) in raw_range(driver).items():
        value = report.values.get(metric.value)
        if value is not None and not low <= value <= high:
            report.status = "fault"
            report.hint = (
                f"{metric.value} {value:g} is outside what the sensor can measure ({low:g}…{high:g})"
            )
    if errors and report.hint is None:
        report.hint = f"{len(errors)} bad read(s), last: {errors[-1]}"
    return report


def _quiet_hint(warming: bool) -> str:
    if warming:
        return "found, still warming up (a PMS sends zeros for ~30 s): run check again in a minute"
    return "no values yet: a sensor sleeping between measurements? run check with --seconds 60"


def _line(report: SensorReport) -> str:
    words = {"ok": "ok", "warming_up": "warming up", "no_data": "NO DATA", "fault": "FAULT"}[report.status]
    shown = list(report.values.items())[:SHOWN_METRICS]
    values = ", ".join(f"{m} {v:g} {_unit(m)}".rstrip() for m, v in shown)
    if len(report.values) > SHOWN_METRICS:
        values += ", …"
    parts = [f"{report.name:<20} {words}"]
    if values:
        parts.append(f"{values} ({report.samples} samples)")
    if report.hint:
        parts.append(report.hint)
    return " — ".join(parts)


def _unit(metric: str) -> str:
    return next((unit for m, unit in METRIC_UNITS.items() if m.value == metric), "")


def check_broker(cfg: NodeConfig) -> str | None:
    return probe_broker(
        cfg.mqtt.host,
        cfg.mqtt.port,
        f"{cfg.client_id}-check",  # not the node's own id: a running node must not be kicked off
        username=cfg.mqtt.username,
        password=cfg.mqtt.password(),
        tls=cfg.mqtt.tls,
        ca_file=str(cfg.mqtt.ca_file) if cfg.mqtt.ca_file else None,
        client_cert=cfg.mqtt.client_cert,
    )


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    reports = [check_sensor(opts, args.seconds) for opts in cfg.sensors]
    broker_problem = check_broker(cfg)
    is_ok = all(r.is_ok for r in reports) and broker_problem is None
    where = f"{cfg.mqtt.host}:{cfg.mqtt.port}"
    if args.json:
        doc = {
            "ok": is_ok,
            "sensors": [{**asdict(r), "ok": r.is_ok} for r in reports],
            "broker": {"ok": broker_problem is None, "address": where, "problem": broker_problem},
        }
        print(json.dumps(doc, ensure_ascii=False))
    else:
        for report in reports:
            print(_line(report))
        broker = f"ok — {where} accepted the node's credentials" if broker_problem is None else broker_problem
        print(f"{'broker':<20} {broker if broker_problem is None else 'FAULT — ' + broker}")
        print("all is well" if is_ok else "something needs attention (see above and hardware/README.md)")
    return 0 if is_ok else 1
