"""A simulated node's dust event through the real broker, the real gateway process and the real
influxd to an MQTT subscriber, a webhook receiver and an SMTP server; the gateway is killed (SIGKILL)
in the middle of the event and restarted, an app acknowledges it on the ack topic, and still every
channel gets one raise, one acknowledgement and one clear. And a node whose clock ran fast for one
reading, then was corrected, still gets its alert (issue 22)."""

from __future__ import annotations

import email
import json
import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.wire import format_ts
from gateway.alerts.store import AlertStore
from gateway.devservices import Service
from tests.helpers import (
    Influx,
    Listener,
    gateway_toml,
    node_toml,
    publish,
    publish_many,
    spawn,
    wait_for,
    wait_gateway_ready,
)
from tests.receivers import HttpReceiver, SmtpServer


def _alerts_toml(webhook_url: str, smtp: SmtpServer, workdir: Path) -> str:
    secret = workdir / "webhook-secret"
    secret.write_text("e2e-secret")
    password = workdir / "smtp-password"
    password.write_text(SmtpServer.PASSWORD)
    for f in (secret, password):
        f.chmod(0o600)
    return f"""
[[alerts.rules]]
name = "pm25-instant"
type = "threshold"
metric = "pm2_5"
limit = 100.0
clear_below = 60.0
clear_after = "3s"
remind_every = "0"
severity = "warning"
[[alerts.channels]]
type = "webhook"
url = "{webhook_url}"
secret_file = "{secret}"
retry_backoff_s = 0.2
[[alerts.channels]]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
ca_file = "{smtp.ca_file}"
username = "{SmtpServer.USER}"
password_file = "{password}"
from = "gateway@tsagaan.example"
to = ["monitor@tsagaan.example"]
retry_backoff_s = 0.2
"""


def test_a_dust_event_reaches_every_channel_once_across_a_gateway_kill(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    hook, smtp = HttpReceiver(), SmtpServer(workdir)
    listener = Listener(mosquitto.port, f"{prefix}/v1/+/+/alert")
    gw_cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=_alerts_toml(f"{hook.url}/hook", smtp, workdir),
    )
    node_cfg = node_toml(
        workdir / "haul-road.toml",
        site="tsagaan",
        node="haul-road",
        port=mosquitto.port,
        prefix=prefix,
        sensors='[[sensors]]\ntype = "simulated-pm"\nsample_interval_s = 0.25\nbaseline = 10.0\nnoise = 0.5\n'
        "events = [{start_s = 4, duration_s = 16, add = 200.0}]\n",
    )
    run_gw = ["gateway.cli", "run", "--config", str(gw_cfg)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(spawn(run_gw, workdir / "gateway.log"))
        procs.append(node := spawn(["node.cli", "run", "--config", str(node_cfg)], workdir / "node.log"))

        def states() -> list[str]:
            return [p["state"] for p in listener.payloads("/alert")]

        wait_for(lambda: "raised" in states(), 60, "the raise on the alert topic")
        wait_for(lambda: hook.json_bodies() and len(smtp.messages) >= 1, 30, "webhook and email")
        wait_for(lambda: influx.rows('SELECT "state" FROM "alert"'), 30, "the alert measurement")
        store = AlertStore(workdir / "gateway-data" / "alerts.sqlite")
        wait_for(lambda: not store.pending(), 30, "every delivery recorded")
        store.close()
        procs[0].send_signal(signal.SIGKILL)  # mid-event: no chance to clean up
        procs[0].wait(15)
        procs[0] = spawn(run_gw, workdir / "gateway.log")
        alert_id = listener.payloads("/alert")[0]["id"]
        ack = json.dumps({"id": alert_id, "by": "oyuna"}).encode()
        publish(mosquitto.port, f"{prefix}/v1/tsagaan/haul-road/alert/ack", ack)
        wait_for(lambda: "acknowledged" in states(), 60, "the acknowledgement after the restart")
        wait_for(lambda: "cleared" in states(), 120, "the all-clear after the restart")
        wait_for(lambda: len(hook.json_bodies()) >= 3 and len(smtp.messages) >= 3, 30, "clear delivered")
        wait_for(lambda: len(influx.rows('SELECT "state" FROM "alert"')) >= 3, 30, "clear stored")
        node.send_signal(signal.SIGTERM)
        assert node.wait(15) == 0
        procs[0].send_signal(signal.SIGTERM)
        assert procs[0].wait(15) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        listener.close()
        hook.close()
        smtp.close()
    mqtt_events = listener.payloads("/alert")
    assert Counter(p["state"] for p in mqtt_events) == {"raised": 1, "acknowledged": 1, "cleared": 1}
    assert len({p["id"] for p in mqtt_events}) == 1
    raised = mqtt_events[0]
    assert raised["site"] == "tsagaan" and raised["node"] == "haul-road" and raised["value"] > 100
    assert raised["message"].startswith("PM2.5 ") and "exceeds the limit of 100.0 µg/m³" in raised["message"]
    assert [b["state"] for b in hook.json_bodies("/hook")] == ["raised", "acknowledged", "cleared"]
    subjects = [email.message_from_bytes(m.content)["Subject"] for m in smtp.messages]  # type: ignore[arg-type]
    assert subjects == [
        "[minewatch] WARNING raised: PM2.5 at haul-road",
        "[minewatch] WARNING acknowledged: PM2.5 at haul-road",
        "[minewatch] WARNING cleared: PM2.5 at haul-road",
    ]
    rows = influx.rows('SELECT * FROM "alert" GROUP BY "site", "node", "rule", "metric"')
    assert [r["state"] for r in rows] == ["raised", "acknowledged", "cleared"]
    assert all(r["rule"] == "pm25-instant" and r["metric"] == "pm2_5" and r["late"] is False for r in rows)
    assert rows[2]["peak"] > 100 and rows[2]["id"] == raised["id"] and rows[2]["acked_by"] == "oyuna"


def test_a_node_whose_clock_ran_fast_then_was_corrected_still_gets_its_alert(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    listener = Listener(mosquitto.port, f"{prefix}/v1/+/+/alert")
    rule = (
        '[[alerts.rules]]\nname = "pm25-instant"\ntype = "threshold"\nmetric = "pm2_5"\n'
        'limit = 100.0\nremind_every = "0"\n'
    )
    gw_cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=rule,
    )
    gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], workdir / "gateway.log")
    try:
        wait_gateway_ready(mosquitto.port, prefix, influx)
        now = datetime.now(UTC).replace(microsecond=0)

        def doc(seq: int, ts: datetime, pm25: float) -> tuple[str, bytes]:
            payload = {
                "schema": 1,
                "site": "tsagaan",
                "node": "haul-road",
                "seq": seq,
                "ts": format_ts(ts),
                "period_s": 1,
                "metrics": {"pm2_5": {"value": pm25, "n": 1}},
                "flags": [],
            }
            return f"{prefix}/v1/tsagaan/haul-road/reading", json.dumps(payload).encode()

        def stored_rows() -> list[dict[str, object]]:
            return influx.rows('SELECT "pm2_5" FROM "reading" WHERE "node" = \'haul-road\'')

        # One reading from a clock 290 s fast (inside the 300 s tolerance: stored), then the
        # corrected clock and the dust: three readings at 800 µg/m³, stamped now.
        fast = now + timedelta(seconds=290)
        publish_many(mosquitto.port, [doc(1, fast, 12.0)])
        wait_for(lambda: stored_rows(), 20, "the fast clock's reading stored (and judged)")
        publish_many(mosquitto.port, [doc(2 + i, now + timedelta(seconds=i), 800.0) for i in range(3)])
        raised = wait_for(
            lambda: [p for p in listener.payloads("/alert") if p["state"] == "raised"],
            60,
            "the raise on the alert topic, long before reading time catches up with the fast clock",
        )[0]
        wait_for(lambda: len(stored_rows()) == 4, 20, "every reading stored, whatever its clock")
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(15) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
        listener.close()
    assert raised["node"] == "haul-road" and raised["rule"] == "pm25-instant"
    assert raised["value"] == 800.0 and raised["late"] is False
    assert raised["started"] == format_ts(now)  # the dust's own time, not the fast clock's
    assert len([p for p in listener.payloads("/alert") if p["state"] == "raised"]) == 1
