"""Small test helpers: a direct InfluxQL client (independent of the gateway's store code), config
writers, a real MQTT listener and polling with a deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent


def artifacts_root() -> Path:
    """Where the browser tests keep their screenshots: `$MINEWATCH_ARTIFACTS`, default
    `test-artifacts/` (gitignored); `web/` and `phone/` in it, each named `<lang>-<page>.png`."""
    return Path(os.environ.get("MINEWATCH_ARTIFACTS") or ROOT / "test-artifacts")


def screenshots_note(root: Path, since: float) -> str | None:
    """The line the suite ends with when it took screenshots: how many since `since` (a
    timestamp), and where; None when it took none. Never raises: it must not fail a run."""
    try:
        count = sum(1 for p in root.rglob("*.png") if p.stat().st_mtime >= since)
    except OSError:
        return None
    if count == 0:
        return None
    return f"screenshots: {count} from this run in {root}/ (web/, phone/; <lang>-<page>.png)"


class Influx:
    """InfluxQL over plain urllib, so the tests check the database with code the gateway does not use."""

    def __init__(self, url: str, db: str) -> None:
        self.url, self.db = url, db

    def _post(self, q: str) -> dict[str, Any]:
        data = urllib.parse.urlencode({"q": q, "db": self.db, "epoch": "ms"}).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=10) as resp:
            doc: dict[str, Any] = json.load(resp)
        return doc

    def create(self) -> None:
        self._post(f'CREATE DATABASE "{self.db}"')

    def drop(self) -> None:
        self._post(f'DROP DATABASE "{self.db}"')

    def write(self, lines: list[str]) -> None:
        """Line protocol at millisecond precision, straight to /write."""
        url = f"{self.url}/write?" + urllib.parse.urlencode({"db": self.db, "precision": "ms"})
        req = urllib.request.Request(url, data="\n".join(lines).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 204, resp.status

    def rows(self, q: str) -> list[dict[str, Any]]:
        doc = self._post(q)
        out: list[dict[str, Any]] = []
        for result in doc.get("results", []):
            assert "error" not in result, result
            for series in result.get("series", []):
                for values in series["values"]:
                    row = dict(zip(series["columns"], values, strict=True))
                    row.update(series.get("tags", {}))
                    out.append(row)
        return out

    def count(self, measurement: str = "reading") -> int:
        rows = self.rows(f'SELECT count("seq") FROM "{measurement}"')
        return int(rows[0]["count"]) if rows else 0


def wait_for(cond: Callable[[], Any], timeout_s: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Listener:
    """A real MQTT subscriber that records every message it receives."""

    def __init__(
        self, port: int, topic: str, username: str | None = None, password: str | None = None
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"listener-{time.time_ns()}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._ready.set()
        self.client.on_message = self._on_message
        if username:
            self.client.username_pw_set(username, password)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._ready.wait(10), "listener could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, suffix: str = "/reading") -> list[dict[str, Any]]:
        """JSON objects received on topics ending in `suffix`; anything else is skipped."""
        with self._lock:
            raw = [p for t, p, _ in self.messages if t.endswith(suffix)]
        out = []
        for payload in raw:
            try:
                doc = json.loads(payload)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(
    port: int,
    topic: str,
    payload: bytes,
    retain: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.time_ns()}")
    if username:
        client.username_pw_set(username, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def publish_many(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 from one connection and wait until the broker has acknowledged them all."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.time_ns()}")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()


def node_toml(
    path: Path,
    *,
    site: str,
    node: str,
    port: int,
    prefix: str,
    interval_s: int = 1,
    sensors: str = '[[sensors]]\ntype = "simulated-pm"\n',
    top: str = "",
    mqtt: str = "",
    buffer: str = "",
    clock_sync: str = "rtc",
) -> Path:
    """`top`, `mqtt` and `buffer` are extra lines for the top level and those two tables.

    `clock_sync` is "rtc" so that whether this machine's kernel clock is NTP-synchronised never
    changes a test's readings; tests of the `clock_unsynced` flag inject their own probe."""
    path.write_text(
        f'site = "{site}"\nnode = "{node}"\ninterval_s = {interval_s}\ntopic_prefix = "{prefix}"\n'
        f'clock_sync = "{clock_sync}"\n{top}'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n{mqtt}'
        f'[buffer]\npath = "{path.parent / (node + "-outbox.sqlite")}"\n{buffer}'
        f"{sensors}"
    )
    return path


def gateway_toml(
    path: Path, *, mqtt_port: int, influx_url: str, db: str, prefix: str, extra: str = ""
) -> Path:
    path.write_text(
        f'data_dir = "{path.parent / "gateway-data"}"\ntopic_prefix = "{prefix}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\nclient_id = "gw-{prefix}"\n'
        f'[influxdb]\nurl = "{influx_url}"\ndatabase = "{db}"\n'
        f"[batch]\nmax_delay_s = 0.2\n{extra}"
    )
    return path


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Run one of our console scripts as a real subprocess (python -m, so no PATH games); `env` adds
    variables."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT
    )


def wait_gateway_ready(port: int, prefix: str, influx: Influx, timeout_s: float = 60.0) -> None:
    """Block until a gateway is subscribed and storing: publish a probe reading (site `probe`) until
    it shows up in InfluxDB. Until a gateway has subscribed once, the broker keeps nothing for it, so
    tests must not publish the readings they count before this returns."""
    from datetime import UTC, datetime

    seq = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seq += 1
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        doc = {
            "schema": 1,
            "site": "probe",
            "node": "probe",
            "seq": seq,
            "ts": ts,
            "period_s": 1,
            "metrics": {"rh": {"value": 50.0, "n": 1}},
            "flags": [],
        }
        publish(port, f"{prefix}/v1/probe/probe/reading", json.dumps(doc).encode())
        try:
            wait_for(
                lambda: influx.rows('SELECT count("seq") FROM "reading" WHERE "site" = \'probe\''),
                2.0,
                "probe",
            )
            return
        except AssertionError:
            continue
    raise AssertionError(f"no gateway stored a probe reading within {timeout_s} s")


def fill(card: Path) -> None:
    """Write a file until the card has not one byte left, as another program's logs would."""
    fd = os.open(card / "filler.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for chunk in (b"\0" * 65536, b"\0" * 512, b"\0"):
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != 28:  # ENOSPC
                    raise
    finally:
        os.close(fd)
    assert os.statvfs(card).f_bavail == 0


def pm25_message(node: str, seq: int, ts: datetime, pm: float, site: str = "tsagaan") -> tuple[str, bytes]:
    """A node's reading of PM2.5 alone, as (topic, payload) for `publish_many`."""
    doc = {
        "schema": 1,
        "site": site,
        "node": node,
        "seq": seq,
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "period_s": 60,
        "metrics": {"pm2_5": {"value": pm, "n": 60}},
        "flags": [],
    }
    return f"{site}/v1/{site}/{node}/reading", json.dumps(doc).encode()
