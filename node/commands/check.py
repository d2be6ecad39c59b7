"""`minewatch-node check --config node.toml [--json] [--lang mn]`: is this kit working? In plain words.

Reads every configured sensor for a few seconds (one after the other: the node must be stopped, as
the serial ports are opened exclusively), prints one line per sensor — found or not, the values,
warm-up, faults, and what to check when something is wrong — then connects to the broker with the
node's credentials. Every line is a message of `[check]` in contract/i18n/<lang>.toml. Exit 0 when
everything answered, 1 otherwise, 2 for a bad config — also when `[mqtt] password_file` names a
file that cannot be read, which is said after the sensors have been tested.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from contract.configfile import ConfigError, worded
from contract.i18n import Texts
from contract.metrics import spec
from hardware.base import (
    FrameError,
    PortGone,
    SensorError,
    SensorOptions,
    SensorSilent,
    is_warming_up,
    open_driver,
    raw_range,
    words,
)
from node.config import NodeConfig, load
from node.publisher import BrokerProblem, probe_broker

SHOWN_METRICS = 6  # a PMS reports 12; the line shows the first ones, --json has them all
ERROR_KINDS: dict[type[Exception], str] = {FrameError: "frame", SensorSilent: "silent", PortGone: "port"}
"""A driver error's class -> its `[check.error]` message: what kind of trouble, before its words."""
SECRET_KINDS: dict[type[BaseException], str] = {
    FileNotFoundError: "secret_missing",
    PermissionError: "secret_denied",
}
"""Why `[mqtt] password_file` cannot be read -> its `[check]` message."""


def default_language() -> str:
    """The language of `$LANG` (`mn_MN.UTF-8` -> mn) when there is a file for it, else English."""
    lang = os.environ.get("LANG", "").split("_")[0].split(".")[0].lower()
    return lang if lang and Texts.exists(lang) else "en"


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "check", help="read every sensor for a few seconds and try the broker; exit 0 when all is well"
    )
    parser.add_argument("--config", required=True, help="path to node.toml")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to read each sensor (default 5)")
    parser.add_argument(
        "--lang", help="language of the lines (contract/i18n/<lang>.toml); default: from $LANG, else en"
    )
    parser.set_defaults(func=run)


@dataclass
class SensorReport:
    name: str
    type: str
    status: str  # ok | warming_up | no_data | fault
    values: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    failed_reads: int = 0
    hint: str | None = None  # in English, for --json
    hint_key: str | None = field(default=None, repr=False)  # the same, as a `[check]` message
    hint_params: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_ok(self) -> bool:
        return self.status in ("ok", "warming_up")


def check_sensor(opts: SensorOptions, seconds: float) -> SensorReport:
    name = opts.name or opts.type
    totals: dict[str, list[float]] = {}
    errors: list[SensorError] = []
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
                errors.append(exc)
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
        if errors:
            _hint(report, f"check.error.{_kind(errors[-1])}", detail=errors[-1])
            report.hint = str(errors[-1])  # --json: the driver's words, as they always were
        else:
            _hint(report, "check.still_warming" if warming else "check.no_values", option="--seconds 60")
        return report
    for metric, (low, high) in raw_range(driver).items():
        value = report.values.get(metric.value)
        if value is not None and not low <= value <= high:
            report.status = "fault"
            _hint(report, "check.out_of_range", metric=metric.value, value=value, low=low, high=high)
    if errors and report.hint is None:
        _hint(report, "check.bad_reads", n=len(errors), error=errors[-1])
    return report


def _kind(exc: SensorError) -> str:
    return next((ERROR_KINDS[c] for c in type(exc).__mro__ if c in ERROR_KINDS), "other")


def _hint(report: SensorReport, key: str, **params: Any) -> None:
    report.hint_key, report.hint_params = key, params
    report.hint = _words(Texts("en"), key, params)


def _words(t: Texts, key: str, params: dict[str, Any]) -> str:
    """A `[check]` message; a metric parameter as the language names it, numbers as `%g`, a
    driver's error in its `[sensor]` words when it has them (else as it says itself)."""
    shown = {k: f"{v:g}" if isinstance(v, float) else v for k, v in params.items()}
    for k, v in params.items():
        if isinstance(v, SensorError):
            shown[k] = words(t, v.key, v.params) if v.key else str(v)
    if "metric" in params:
        shown["metric"] = t.short(str(params["metric"]))
    return t(key, **shown)


def _line(report: SensorReport, t: Texts) -> str:
    words = t(f"check.{report.status}")
    shown = list(report.values.items())[:SHOWN_METRICS]
    values = ", ".join(_value(t, m, v) for m, v in shown)
    if len(report.values) > SHOWN_METRICS:
        values += ", " + t("check.more")
    parts = [f"{report.name:<20} {words}"]
    if values:
        parts.append(t("check.samples", values=values, n=report.samples))
    if report.hint_key:
        parts.append(_words(t, report.hint_key, report.hint_params))
    return " — ".join(parts)


def _value(t: Texts, metric: str, value: float) -> str:
    if spec(metric) is None:
        return f"{metric} {value:g}"
    return t(
        "check.value", metric=t.short(metric), number=t.number(metric, value), unit=t.unit(metric)
    ).strip()


def check_broker(cfg: NodeConfig, password: str | None) -> BrokerProblem | None:
    return probe_broker(
        cfg.mqtt.host,
        cfg.mqtt.port,
        f"{cfg.client_id}-check",  # not the node's own id: a running node must not be kicked off
        username=cfg.mqtt.username,
        password=password,
        tls=cfg.mqtt.tls,
        ca_file=str(cfg.mqtt.ca_file) if cfg.mqtt.ca_file else None,
        client_cert=cfg.mqtt.client_cert,
    )


def _secret(cfg: NodeConfig, config: str) -> tuple[str | None, BrokerProblem | None]:
    """The MQTT password, or the `[check]` message naming the key whose file cannot be read."""
    try:
        return cfg.mqtt.password(), None
    except ConfigError as exc:
        cause = exc.__cause__
        kind = next((SECRET_KINDS[c] for c in type(cause).__mro__ if c in SECRET_KINDS), "secret_unreadable")
        error = getattr(cause, "strerror", None) or str(exc)
        return None, BrokerProblem(
            kind, {"config": config, "path": str(cfg.mqtt.password_file), "error": error}
        )


def run(args: argparse.Namespace) -> int:
    language = args.lang or default_language()
    if not Texts.exists(language):
        raise ConfigError(f"--lang: no translation {language}.toml; have: {', '.join(Texts.languages())}")
    t = Texts(language)
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        if not exc.issues:
            raise
        raise ConfigError(worded(exc.issues, t), exc.issues) from exc  # in the reader's language
    reports = []
    for opts in cfg.sensors:  # each line as soon as it is known: a slow sensor shows the others
        reports.append(report := check_sensor(opts, args.seconds))
        if not args.json:
            print(_line(report, t), flush=True)
    password, secret = _secret(cfg, args.config)
    problem = secret or check_broker(cfg, password)
    is_ok = all(r.is_ok for r in reports) and problem is None
    where = f"{cfg.mqtt.host}:{cfg.mqtt.port}"
    if args.json:
        doc = {
            "ok": is_ok,
            "sensors": [
                {**{k: v for k, v in asdict(r).items() if not k.startswith("hint_")}, "ok": r.is_ok}
                for r in reports
            ],
            "broker": {
                "ok": problem is None,
                "address": where,
                "problem": None if problem is None else t(f"check.{problem.kind}", **problem.params),
            },
        }
        print(json.dumps(doc, ensure_ascii=False))
    else:
        broker = (
            t("check.broker_ok", where=where)
            if problem is None
            else t("check.broker_fault", problem=t(f"check.{problem.kind}", **problem.params))
        )
        print(f"{t('check.broker'):<20} {broker}")
        print(t("check.all_well") if is_ok else t("check.attention"))
    if secret is not None:
        return 2  # a config that cannot be used as it is: exit 2, after the sensors were tested
    return 0 if is_ok else 1
