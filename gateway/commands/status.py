"""`minewatch-gateway status --config gateway.toml`: the gateway's health, as it last reported it.

Reads the retained `<prefix>/v1/_gateway/<gateway_id>/status` from the broker; when the broker does
not answer, falls back to `status.json`, which the gateway writes in its data directory at each report.
Exit status 0 when the gateway says it is up, 1 when it is down or no status can be found.

Below it, what each node last said on its retained status topic (the broker keeps one per node):
online or offline, its backlog, and whether it had to start a fresh outbox after keeping a damaged
one aside (`outbox.recovered_from`), which someone should come and recover.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

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
    parser.set_defaults(func=run)


def _age(ts: str | None) -> str:
    if not ts:
        return ""
    seconds = (datetime.now(UTC) - datetime.fromisoformat(ts.replace("Z", "+00:00"))).total_seconds()
    return f" ({seconds:.0f} s ago)"


def _at(t: Texts, ts: str | None) -> str:
    """An RFC 3339 time of the status payload as a person reads it: local, with the zone."""
    if not ts:
        return ""
    try:
        return t.time(datetime.fromisoformat(ts.replace("Z", "+00:00")), seconds=True)
    except ValueError:
        return ts


def render(st: GatewayStatus, source: str, t: Texts | None = None) -> str:
    """The status for a person: times in the site's zone (`[site] timezone`), `--json` keeps UTC."""
    t = t or Texts()
    lines = [f"gateway {st.gateway_id}: {st.state.upper()}   (from {source})"]
    if st.state == "down":
        return "\n".join(lines)
    reach = {True: "yes", False: "NO", None: "not tried yet"}[st.influxdb_reachable]
    lines += [
        f"  reported          {_at(t, st.ts)}{_age(st.ts)}",
        f"  version, started  {st.version}, {_at(t, st.started)}",
        f"  InfluxDB reachable {reach}",
        f"  last write        {_at(t, st.last_write) or 'none yet'}{_age(st.last_write)}",
        f"  since start       {st.received} received, {st.stored} stored",
    ]
    if st.spool is not None:
        warn = "   WARNING: spool filling, check InfluxDB" if st.spool.warning else ""
        lines.append(
            f"  spool             {st.spool.depth} readings waiting, "
            f"{st.spool.bytes / 1e6:.1f} of {st.spool.max_bytes / 1e6:.0f} MB{warn}"
        )
    rejects = st.rejects or {}
    lines.append(f"  rejects           {sum(rejects.values())} in all")
    lines += [f"    {reason:<20} {n}" for reason, n in rejects.items()]
    return "\n".join(lines)


def render_nodes(statuses: dict[tuple[str, str], NodeStatus]) -> list[str]:
    online = sum(1 for st in statuses.values() if st.state == "online")
    lines = [f"  nodes             {online} online, {len(statuses) - online} offline (their retained status)"]
    for (site, node), st in sorted(statuses.items()):
        line = f"    {site + '/' + node:<32} {st.state}"
        if st.outbox is not None:
            line += f", {st.outbox.depth} readings waiting, {st.outbox.dropped} dropped"
            if st.outbox.recovered_from:
                line += (
                    f"\n      WARNING: its outbox was damaged; it started a fresh one and kept the old one "
                    f"as {st.outbox.recovered_from!r} on the node, to recover"
                )
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
    source = f"broker, {topic}"
    if raw is not None:
        try:
            st = GatewayStatus.model_validate_json(raw)
        except ValidationError:
            print(f"the retained status on {topic} is not a gateway status: {raw[:200]!r}")
    if st is None:
        st = read_file(cfg.data_dir)
        source = f"{cfg.data_dir / 'status.json'}; the broker did not answer"
    if st is None:
        print(f"no status: nothing retained on {topic} and no {cfg.data_dir / 'status.json'}")
        return 1
    if args.json:
        print(st.model_dump_json(exclude_unset=True))
    else:
        print(render(st, source, cfg.site.texts()))
        nodes = node_statuses(cfg, args.timeout) if raw is not None else None
        if nodes:
            print("\n".join(render_nodes(nodes)))
    return 0 if st.state == "up" else 1
