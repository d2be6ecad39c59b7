"""The email, webhook and Apprise channels while their far end hangs: a real server that accepts the
TCP connection and never answers. The dispatcher runs its real worker threads and the real alert
store (`alerts.sqlite`): another channel's alerts go out at once, and every hung event is either
delivered once the far end recovers or kept in the store marked failed, never lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trustme

from gateway.alerts.store import AlertStore
from gateway.channels.apprise_channel import Apprise, AppriseOptions
from gateway.channels.base import Channel, ChannelOptions
from gateway.channels.dispatcher import Dispatcher, Worker
from gateway.channels.email import Email, EmailOptions
from gateway.channels.webhook import Webhook, WebhookOptions
from tests.alert_helpers import T0
from tests.fakes.clock import FakeClock
from tests.gateway.channels.test_channels import event
from tests.helpers import wait_for
from tests.receivers import HangServer, HttpReceiver, SmtpServer

TIMEOUT_S = 0.5  # each channel's own timeout: what a hung far end may cost per attempt
Channels = list[tuple[ChannelOptions, Callable[[Any], Channel]]]


def _hung_channels(
    ports: dict[str, int], retries: int, backoff_s: float, smtp: dict[str, Any] | None = None
) -> Channels:
    common = {"retries": retries, "retry_backoff_s": backoff_s, "rate_limit": 0}
    email = EmailOptions.model_validate(
        {
            "type": "email",
            "name": "email",
            "host": "127.0.0.1",
            "port": ports["email"],
            "from": "gateway@tsagaan.example",
            "to": ["monitor@tsagaan.example"],
            "timeout_s": TIMEOUT_S,
            **(smtp or {"starttls": False}),
            **common,
        }
    )
    hook = WebhookOptions.model_validate(
        {"type": "webhook", "name": "webhook", "url": f"http://127.0.0.1:{ports['webhook']}/hook"}
        | {"timeout_s": TIMEOUT_S, **common}
    )
    url = f"json://127.0.0.1:{ports['apprise']}/notify?cto={TIMEOUT_S}&rto={TIMEOUT_S}"
    apprise = AppriseOptions.model_validate({"type": "apprise", "name": "apprise", "urls": [url], **common})
    return [(email, Email), (hook, Webhook), (apprise, Apprise)]


def _dispatcher(
    channels: list[tuple[ChannelOptions, Callable[[Any], Channel]]], store: AlertStore
) -> Dispatcher:
    stop = threading.Event()  # real pauses between retries: the workers wait on it
    return Dispatcher([Worker(opts, build(opts), store, FakeClock(T0), stop) for opts, build in channels])


def _submit(d: Dispatcher, store: AlertStore, n: int) -> list[int]:
    rows = []
    for i in range(1, n + 1):
        raised = event(i, severity="critical")
        for row, label, doc in store.commit([], [(raised, d.route(raised))]):
            d.submit(row, label, doc)
            rows.append(row)
    return rows


def test_hung_far_ends_delay_only_themselves_and_what_fails_is_kept(tmp_path: Path) -> None:
    hangs = {name: HangServer() for name in ("email", "webhook", "apprise")}
    healthy = HttpReceiver()
    store = AlertStore(tmp_path / "alerts.sqlite")
    channels = _hung_channels({k: h.port for k, h in hangs.items()}, retries=1, backoff_s=0.2)
    ngo = WebhookOptions.model_validate({"type": "webhook", "name": "ngo", "url": f"{healthy.url}/ngo"})
    d = _dispatcher([*channels, (ngo, Webhook)], store)
    d.start()
    try:
        started = time.monotonic()
        assert len(_submit(d, store, 3)) == 12
        wait_for(lambda: len(healthy.requests) == 3, 10, "the healthy channel's three alerts")
        took = time.monotonic() - started
        # had the hung channels held it up, it would wait their 3 x (2 x 0.5 s + 0.2 s) = 3.6 s
        assert took < 2.0, f"the healthy channel took {took:.2f} s"
        assert all(d.workers[name].stats.sent == 0 for name in hangs)
        wait_for(lambda: all(h.connections >= 1 for h in hangs.values()), 10, "each far end reached")
        wait_for(
            lambda: all(d.workers[n].stats.given_up == 3 for n in hangs), 30, "the hung channels to give up"
        )
    finally:
        d.stop()
        healthy.close()
        for h in hangs.values():
            h.close()
    stats = d.stats()
    for name, hang in hangs.items():
        assert stats[name]["failures"] == 6 and stats[name]["sent"] == 0  # 3 events x (1 + 1 retry)
        assert hang.connections >= 6  # every attempt really reached the far end and waited
        assert "timed out" in stats[name]["last_error"].lower() or name == "apprise"
    assert stats["ngo"]["sent"] == 3 and stats["ngo"]["failures"] == 0
    assert store.pending() == [] and store.failed_count() == 9  # none lost: all kept, marked failed
    store.close()


def test_a_far_end_that_recovers_gets_what_waited(tmp_path: Path) -> None:
    hangs = {name: HangServer() for name in ("email", "webhook", "apprise")}
    ports = {k: h.port for k, h in hangs.items()}
    smtp_dir = tmp_path / "smtp"
    smtp_dir.mkdir()
    password = tmp_path / "smtp-password"
    password.write_text(SmtpServer.PASSWORD)
    password.chmod(0o600)
    # the real relay that will take the hung one's place has its own certificate: trust it up front
    relay_ca, authority = tmp_path / "relay-ca.pem", trustme.CA()
    authority.cert_pem.write_to_path(str(relay_ca))
    smtp_login = {"ca_file": str(relay_ca), "username": SmtpServer.USER, "password_file": str(password)}
    store = AlertStore(tmp_path / "alerts.sqlite")
    up: list[Any] = []
    try:
        d = _dispatcher(_hung_channels(ports, retries=8, backoff_s=0.3, smtp=smtp_login), store)
        d.start()
        rows = _submit(d, store, 1)
        wait_for(lambda: all(d.workers[n].stats.failures >= 1 for n in hangs), 20, "a first timeout each")
        assert all(d.workers[n].stats.sent == 0 for n in hangs)
        for h in hangs.values():
            h.close()  # the far ends recover, on the same ports
        web, app = HttpReceiver(port=ports["webhook"]), HttpReceiver(port=ports["apprise"])
        relay = SmtpServer(smtp_dir, port=ports["email"], ca=authority)
        up += [web, app, relay]
        wait_for(lambda: all(d.workers[n].stats.sent == 1 for n in hangs), 30, "delivery after recovery")
        d.stop()
    finally:
        for server in up:
            server.close()
    assert len(rows) == 3 and store.pending() == [] and store.failed_count() == 0
    assert [b["id"] for b in web.json_bodies("/hook")] == [event(1)["id"]]
    assert "haul-road" in app.json_bodies("/notify")[0]["title"]
    assert relay.messages[0].rcpt_tos == ["monitor@tsagaan.example"]
    store.close()
