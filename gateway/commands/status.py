"""`minewatch-gateway status --config gateway.toml`: the gateway's health, as it last reported it.

Reads the retained `<prefix>/v1/_gateway/<gateway_id>/status` from the broker; when the broker does
not answer, falls back to `status.json`, which the gateway writes in its data directory at each report.
Exit status 0 when the gateway says it is up, 1 when it is down or no status can be found.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from contract.wire import gateway_status_topic
from gateway.config import load
from gateway.status import GatewayStatus, read_file
from gateway.subscriber import read_retained


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


def render(st: GatewayStatus, source: str) -> str:
    lines = [f"gateway {st.gateway_id}: {st.state.upper()}   (from {source})"]
    if st.state == "down":
        return "\n".join(lines)
    reach = {True: "yes", False: "NO", None: "not tried yet"}[st.influxdb_reachable]
    lines += [
        f"  reported          {st.ts}{_age(st.ts)}",
        f"  version, started  {st.version}, {st.started}",
        f"  InfluxDB reachable {reach}",
        f"  last write        {st.last_write or 'none yet'}{_age(st.last_write)}",
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
    print(st.model_dump_json(exclude_unset=True) if args.json else render(st, source))
    return 0 if st.state == "up" else 1
