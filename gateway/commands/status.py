"""`minewatch-gateway status --config gateway.toml`: the gateway's health, as it last reported it.

Reads the retained `<prefix>/v1/_gateway/<gateway_id>/status` from the broker; when the broker does
not answer, falls back to `status.json`, which the gateway writes in its data directory at each report.
Exit status 0 when the gateway says it is up, 1 when it is down or no status can be found.

Below it, what each node last said on its retained status topic (the broker keeps one per node):
online or offline, its backlog, and whether it had to start a fresh outbox after keeping a damaged
one aside (`outbox.recovered_from`), which someone should come and recover. Nodes go by their
friendly names ([[site.names]]) and reject reasons by words (`[status_cli.reject]`), in the
reader's language; `--json` prints the payload as it is, with ids and keys.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from contract.configfile import ConfigError
from contract.i18n import Texts
from contract.status import NodeStatus, parse_status
from contract.wire import TopicKind, gateway_status_topic, parse_topic
from gateway.config import GatewayConfig, load
from gateway.status import GatewayStatus, read_file
from gateway.subscriber import read_all_retained, read_retained


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("status", help="show the gateway's last reported health")
    parser.add_argument("--config", required=True, help="path to gateway.toml")
    parser.add_argument("--json", action="store_true", help="print the status payload as it is")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the broker")
    parser.add_argument(
        "--lang", help="language of the lines (contract/i18n/<lang>.toml); default: [web] language, or en"
    )
    parser.set_defaults(func=run)


def _age(t: Texts, ts: str | None) -> str:
    if not ts:
        return ""
    seconds = (datetime.now(UTC) - datetime.fromisoformat(ts.replace("Z", "+00:00"))).total_seconds()
    return " " + t("status_cli.ago", seconds=f"{seconds:.0f}")


def _at(t: Texts, ts: str | None) -> str:
    """An RFC 3339 time of the status payload as a person reads it: local, with the zone."""
    if not ts:
        return ""
    try:
        return t.time(datetime.fromisoformat(ts.replace("Z", "+00:00")), seconds=True)
    except ValueError:
        return ts


LABELS = ("reported", "version", "influxdb", "last_write", "since_start", "spool", "rejects", "nodes")
"""The `[status_cli]` labels of the lines, in order; their values start in one column."""


def _aligned(t: Texts, rows: list[tuple[str, str]]) -> list[str]:
    """`  label  value` lines, the values in one column whatever the length of the language's labels."""
    width = max(len(t(f"status_cli.{key}")) for key in LABELS)
    return [f"  {t(f'status_cli.{key}'):<{width}} {value}" for key, value in rows]


def render(st: GatewayStatus, source: str, t: Texts | None = None) -> str:
    """The status for a person, in `t`'s language, times in the site's zone (`[site] timezone`);
    `--json` keeps the payload's UTC and ids."""
    t = t or Texts()
    lines = [t("status_cli.head", id=st.gateway_id, state=t(f"status_cli.state.{st.state}"), source=source)]
    if st.state == "down":
        return "\n".join(lines)
    reach = {True: "yes", False: "no", None: "not_tried"}[st.influxdb_reachable]
    rejects = st.rejects or {}
    rows = [
        ("reported", f"{_at(t, st.ts)}{_age(t, st.ts)}"),
        ("version", t("status_cli.version_value", version=st.version, started=_at(t, st.started))),
        ("influxdb", t(f"status_cli.{reach}")),
        ("last_write", f"{_at(t, st.last_write) or t('status_cli.none_yet')}{_age(t, st.last_write)}"),
        ("since_start", t("status_cli.counts", received=st.received, stored=st.stored)),
    ]
    if st.spool is not None:
        spool = t(
            "status_cli.spool_value",
            depth=st.spool.depth,
            mb=f"{st.spool.bytes / 1e6:.1f}",
            max_mb=f"{st.spool.max_bytes / 1e6:.0f}",
        )
        rows.append(("spool", spool + ("   " + t("status_cli.spool_warning") if st.spool.warning else "")))
    rows.append(("rejects", t("status_cli.rejects_value", n=sum(rejects.values()))))
    lines += _aligned(t, rows)
    reasons = {reason: reason_words(t, reason) for reason in rejects}
    width = max((len(words) for words in reasons.values()), default=0)
    lines += [f"    {reasons[reason]:<{width}}  {n}" for reason, n in rejects.items()]
    return "\n".join(lines)


def reason_words(t: Texts, reason: str) -> str:
    """A reject reason as a person reads it (`[status_cli.reject]`); a reason without words there
    (one a newer gateway counts) as its key, which `rejects --reason` takes."""
    key = f"status_cli.reject.{reason}"
    return t(key) if t.has(key) else reason


def node_label(t: Texts, site: str, node: str) -> str:
    """A node by its friendly names ([[site.names]]), with its ids when it has a name, which
    `rejects`, `ack` and the topics use: "Tsagaan bag — haul road (tsagaan/haul-road)"."""
    ids = f"{site}/{node}"
    if t.site_name(site) == site and t.node_name(site, node) == node:
        return ids
    return t("status_cli.node_named", place=t.place(site, node), ids=ids)


def render_nodes(statuses: dict[tuple[str, str], NodeStatus], t: Texts | None = None) -> list[str]:
    """Each node's retained status, below the gateway's: the label in the same column as `render`'s."""
    t = t or Texts()
    online = sum(1 for st in statuses.values() if st.state == "online")
    summary = t("status_cli.nodes_value", online=online, offline=len(statuses) - online)
    lines = _aligned(t, [("nodes", summary)])
    labels = {key: node_label(t, *key) for key in statuses}
    width = max((len(label) for label in labels.values()), default=0)
    for (site, node), st in sorted(statuses.items()):
        line = f"    {labels[(site, node)]:<{width}}  {t(f'status_cli.node_state.{st.state}')}"
        if st.outbox is not None:
            line += ", " + t("status_cli.node_waiting", depth=st.outbox.depth, dropped=st.outbox.dropped)
            if st.outbox.recovered_from:
                line += "\n      " + t("status_cli.node_damaged", path=repr(st.outbox.recovered_from))
        lines.append(line)
    return lines


def node_statuses(cfg: GatewayConfig, timeout_s: float) -> dict[tuple[str, str], NodeStatus] | None:
    """The last status each node left retained on the broker; None when the broker did not answer.
    Anything that is not a node's valid status (the gateway's own, a malformed one) is left out."""
    got = read_all_retained(
        cfg.mqtt.host,
        cfg.mqtt.port,
        f"{cfg.topic_prefix}/v1/+/+/status",
        timeout_s=timeout_s,
        username=cfg.mqtt.username,
        password=cfg.mqtt.password(),
        tls=cfg.mqtt.tls,
        ca_file=str(cfg.mqtt.ca_file) if cfg.mqtt.ca_file else None,
    )
    if got is None:
        return None
    out: dict[tuple[str, str], NodeStatus] = {}
    for topic, payload in got:
        try:
            site, node, kind = parse_topic(cfg.topic_prefix, topic)
            if kind is TopicKind.STATUS and payload:
                out[(site, node)] = parse_status(payload)
        except ValueError:
            continue
    return out


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    language = args.lang or (cfg.web.language if cfg.web else "en")
    if not Texts.exists(language):
        raise ConfigError(f"--lang: no translation {language}.toml; have: {', '.join(Texts.languages())}")
    t = cfg.site.texts(language)
    topic = gateway_status_topic(cfg.topic_prefix, cfg.gateway_id)
    raw = read_retained(
        cfg.mqtt.host,
        cfg.mqtt.port,
        topic,
        timeout_s=args.timeout,
        username=cfg.mqtt.username,
        password=cfg.mqtt.password(),
        tls=cfg.mqtt.tls,
        ca_file=str(cfg.mqtt.ca_file) if cfg.mqtt.ca_file else None,
    )
    st: GatewayStatus | None = None
    source = t("status_cli.from_broker", topic=topic)
    if raw is not None:
        try:
            st = GatewayStatus.model_validate_json(raw)
        except ValidationError:
            print(t("status_cli.not_a_status", topic=topic, payload=repr(raw[:200])))
    status_file = cfg.data_dir / "status.json"
    if st is None:
        st = read_file(cfg.data_dir)
        source = t("status_cli.from_file", path=status_file)
    if st is None:
        print(t("status_cli.no_status", topic=topic, path=status_file))
        return 1
    if args.json:
        print(st.model_dump_json(exclude_unset=True))
    else:
        print(render(st, source, t))
        nodes = node_statuses(cfg, args.timeout) if raw is not None else None
        if nodes:
            print("\n".join(render_nodes(nodes, t)))
    return 0 if st.state == "up" else 1
