"""`minewatch-gateway ack <alert-id> --by NAME`: acknowledge an active alert; `--list` shows them
(severity, value and peak with their unit, the message). Everything it prints is in the gateway's
language (`[web] language`, or `--lang`).

The request goes into the gateway's alert store (`<data_dir>/alerts.sqlite`); the running gateway
applies it within about a second (reminders stop, the acknowledgement is recorded in InfluxDB and
published on the alert topic; the all-clear still comes). A gateway that is not running applies it
when it starts.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.configfile import ConfigError
from contract.i18n import Texts
from contract.metrics import spec
from gateway.alerts.messages import rule_name, text_of
from gateway.alerts.reasons import words
from gateway.alerts.service import STATUS_FILE
from gateway.alerts.store import AlertStore
from gateway.config import GatewayConfig, load


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "ack", help="acknowledge an active alert (or --list them)"
    )
    parser.add_argument("alert_id", nargs="?", help="the alert's id, as in its message or `--list`")
    parser.add_argument("--by", help="who acknowledges (recorded and published)")
    parser.add_argument("--config", required=True, help="path to gateway.toml")
    parser.add_argument("--list", action="store_true", help="list active alerts and rules not evaluated")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the gateway (10)")
    parser.add_argument(
        "--lang",
        help="language of what it prints (contract/i18n/<lang>.toml); default: [web] language, or en",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    language = args.lang or (cfg.web.language if cfg.web else "en")
    if not Texts.exists(language):
        raise ConfigError(f"--lang: no translation {language}.toml; have: {', '.join(Texts.languages())}")
    t = cfg.site.texts(language)
    store = AlertStore(cfg.data_dir / "alerts.sqlite")
    try:
        if args.list:
            return _list(store, cfg.data_dir / STATUS_FILE, cfg, language)
        if not args.alert_id or not args.by:
            raise ConfigError(t("ack.needs_id", command="ack", by="--by", list="--list"))
        active = {m.alert_id for m in store.machines() if m.alert_id}
        if args.alert_id not in active:
            raise ConfigError(t("ack.no_such", id=args.alert_id, command="minewatch-gateway ack --list"))
        request = store.request_ack(args.alert_id, args.by[:64])
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            result = store.ack_result(request)
            if result is not None:
                # the store keeps the gateway's answer as a word of its own, not in a language
                done = result == "acknowledged"
                print(t("ack.done" if done else "ack.not_applied", id=args.alert_id))
                return 0 if done else 1
            time.sleep(0.1)
        print(t("ack.recorded", id=args.alert_id))
        return 0
    finally:
        store.close()


def _list(store: AlertStore, status_file: Path, cfg: GatewayConfig, language: str) -> int:
    """Each active alert with its severity, value and peak in their unit, and its message, in the
    gateway's language (`[web] language`, or `--lang`)."""
    t = cfg.site.texts(language)
    rules = {r.name: r for r in cfg.alerts.all_rules()}
    machines = store.machines()
    active = [m for m in machines if m.alert_id]
    if not active:
        print(t("ack.none"))
    for m in sorted(active, key=lambda m: m.started_ms):
        rule = rules.get(m.rule)
        metric = rule.labels()[0] if rule is not None else ""
        if rule is not None and rule.value_unit(metric) == "min":
            metric = "status"  # a sensor fault's value is how long it has lasted, as an offline one's
        events = store.events(m.alert_id)
        severity = str(events[-1].get("severity") if events else rule.severity if rule else "")
        line = t(
            "ack.line",
            id=m.alert_id,
            severity=t(f"alert.severity.{severity}") if t.has(f"alert.severity.{severity}") else severity,
            since=t.time(datetime.fromtimestamp(m.started_ms / 1000, UTC)),
            value=_amount(t, metric, m.value),
            peak=_amount(t, metric, m.peak),
        )
        print(line + (t("ack.acked", by=m.acked_by) if m.acked_by else ""))
        if events:
            print(f"    {text_of(events[-1], t)}")
    for m in machines:
        if not m.evaluable:
            node, site = t.node_name(m.site, m.node), t.site_name(m.site)
            reason = words(m.reason, t, m.site)  # in the reader's language (gateway/alerts/reasons.py)
            rule = rules.get(m.rule)
            named = rule_name(rule.naming(), t) if rule is not None else m.rule
            said = m.rule if named == m.rule else f"{named} ({m.rule})"  # the id, to type in a command
            print(t("ack.not_evaluated", rule=said, node=node, site=site, reason=reason))
    try:
        status = json.loads(status_file.read_text())
        for label, stats in status.get("channels", {}).items():
            print(t("ack.channel", label=label, **{k: stats[k] for k in ("sent", "failures", "given_up")}))
    except (OSError, ValueError, KeyError):
        pass
    failed = store.failed_count()
    if failed:
        print(t("ack.failed", n=failed, path=status_file.parent / "alerts.sqlite"))
    return 0


def _amount(t: Texts, metric: str, value: float | None) -> str:
    """A value with the metric table's decimals and unit; minutes for an offline rule's `status`."""
    if value is None:
        return t("alert.no_value")
    if metric == "status":  # an offline rule's value: how long the node has been quiet
        return t("ack.minutes", n=f"{value:.0f}")
    if spec(metric) is None:
        return f"{value:g}"
    return t("alert.value", number=t.number(metric, value), unit=t.unit(metric)).strip()
