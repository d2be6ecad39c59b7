"""Channels against real servers on loopback, and the dispatcher's limits with a simulated clock."""

from __future__ import annotations

import email
import hashlib
import hmac
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.channels.apprise_channel import Apprise, AppriseOptions
from gateway.channels.base import ChannelError, Notification
from gateway.channels.dispatcher import Dispatcher, Worker, single
from gateway.channels.email import Email, EmailOptions
from gateway.channels.webhook import SIGNATURE_HEADER, Webhook, WebhookOptions
from gateway.devservices import free_port
from tests.alert_helpers import T0
from tests.fakes.clock import FakeClock
from tests.receivers import HttpReceiver, SmtpServer

SECRET = "shared-secret-for-tests"


def event(n: int = 1, severity: str = "warning", rule: str = "pm25-instant") -> dict[str, Any]:
    return {
        "schema": 1,
        "id": f"tsagaan.haul-road.{rule}.2026112{n}T000000Z",
        "state": "raised",
        "site": "tsagaan",
        "node": "haul-road",
        "rule": rule,
        "severity": severity,
        "ts": "2026-11-22T06:00:00.000Z",
        "message": f"PM2.5 6{n}.0 µg/m³ at haul-road (tsagaan) exceeds the limit of 50.0 µg/m³",
    }


class Outbox:
    """Records what the dispatcher tells the store (the real AlertStore is tested end to end)."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.failed: list[int] = []

    def delivered(self, row_ids: list[int]) -> None:
        self.done += row_ids

    def gave_up(self, row_ids: list[int]) -> None:
        self.failed += row_ids


class Recorder:
    """A channel of the test's own that keeps what it is given, failing when told to."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []
        self.fail_next = 0

    def send(self, note: Notification) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ChannelError("down for the test")
        self.notes.append(note)

    def close(self) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


def worker(channel: Any, opts: Any, clock: FakeClock, outbox: Outbox | None = None) -> Worker:
    return Worker(opts, channel, outbox or Outbox(), clock, threading.Event(), sleep=lambda s: None)


def test_webhook_posts_the_json_signed_with_hmac_sha256(receiver: HttpReceiver, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    hook = Webhook(WebhookOptions(type="webhook", url=f"{receiver.url}/hook", secret_file=secret))  # type: ignore[arg-type]
    hook.send(single(event()))
    path, headers, body = receiver.requests[0]
    assert path == "/hook" and headers["Content-Type"].startswith("application/json")
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
    body_doc = receiver.json_bodies()[0]
    assert {k: body_doc[k] for k in event()} == event()  # the old body, unchanged
    assert set(body_doc) - set(event()) == {"language", "subject", "text"}  # the words, added
    assert body_doc["language"] == "en" and body_doc["subject"] == single(event()).subject


def test_webhook_500s_are_retried_with_backoff_and_counted(receiver: HttpReceiver) -> None:
    receiver.statuses = [500, 503]
    pauses: list[float] = []
    opts = WebhookOptions(type="webhook", url=receiver.url, retries=3, retry_backoff_s=0.5)  # type: ignore[arg-type]
    w = Worker(opts, Webhook(opts), outbox := Outbox(), FakeClock(T0), threading.Event(), sleep=pauses.append)
    w.process((7, event()))
    assert len(receiver.requests) == 3 and outbox.done == [7]
    assert pauses == [0.5, 1.0] and w.stats.failures == 2 and w.stats.sent == 1


def test_a_4xx_is_not_retried_and_a_dead_server_is_given_up_but_kept(receiver: HttpReceiver) -> None:
    receiver.statuses = [404]
    opts = WebhookOptions(type="webhook", url=receiver.url, retries=3)  # type: ignore[arg-type]
    w = worker(Webhook(opts), opts, FakeClock(T0), outbox := Outbox())
    w.process((1, event()))
    assert len(receiver.requests) == 1 and outbox.failed == [1] and w.stats.given_up == 1
    dead = WebhookOptions(type="webhook", url=f"http://127.0.0.1:{free_port()}/", retries=2, timeout_s=2)  # type: ignore[arg-type]
    w2 = worker(Webhook(dead), dead, FakeClock(T0), outbox2 := Outbox())
    w2.process((2, event()))
    assert outbox2.failed == [2] and w2.stats.failures == 3 and "127.0.0.1" in w2.stats.last_error


def test_a_hanging_receiver_times_out_and_is_retried() -> None:
    slow = HttpReceiver(delay_s=3.0)
    try:
        opts = WebhookOptions(type="webhook", url=slow.url, timeout_s=0.3, retries=1)  # type: ignore[arg-type]
        w = worker(Webhook(opts), opts, FakeClock(T0), outbox := Outbox())
        w.process((5, event()))
        assert w.stats.failures == 2 and outbox.failed == [5]
        assert "timed out" in w.stats.last_error.lower()
    finally:
        slow.close()


def test_email_goes_out_over_starttls_with_login(tmp_path: Path) -> None:
    smtp = SmtpServer(tmp_path)
    try:
        password = tmp_path / "smtp-password"
        password.write_text(SmtpServer.PASSWORD)
        password.chmod(0o600)
        opts = EmailOptions.model_validate(
            {
                "type": "email",
                "host": "127.0.0.1",
                "port": smtp.port,
                "ca_file": str(smtp.ca_file),
                "username": SmtpServer.USER,
                "password_file": str(password),
                "from": "gateway@tsagaan.example",
                "to": ["monitor@tsagaan.example"],
            }
        )
        Email(opts).send(single(event()))
        assert len(smtp.messages) == 1
        msg = email.message_from_bytes(smtp.messages[0].content)  # type: ignore[arg-type]
        assert msg["Subject"] == "[minewatch] WARNING raised: pm25-instant at haul-road"
        assert "exceeds the limit of 50.0 µg/m³" in msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
        assert smtp.messages[0].rcpt_tos == ["monitor@tsagaan.example"]
    finally:
        smtp.close()


def test_apprise_reaches_a_json_endpoint(receiver: HttpReceiver) -> None:
    channel = Apprise(AppriseOptions(type="apprise", urls=[f"json://127.0.0.1:{receiver.port}/notify"]))
    channel.send(single(event(severity="critical")))
    body = receiver.json_bodies()[0]
    assert body["title"] == "CRITICAL raised: pm25-instant at haul-road"
    assert "exceeds the limit" in body["message"] and body["type"] == "failure"


def test_beyond_the_rate_limit_events_go_into_one_digest_never_dropped() -> None:
    clock = FakeClock(datetime(2026, 11, 22, 6, tzinfo=UTC))
    rec = Recorder()
    opts = WebhookOptions(type="webhook", url="http://127.0.0.1:1/", rate_limit=2, rate_period_s=3600)  # type: ignore[arg-type]
    w = worker(rec, opts, clock, outbox := Outbox())
    for n in range(1, 7):
        w.process((n, event(n)))
        w.flush_due()
    assert len(rec.notes) == 2 and w.stats.held == 4
    clock.now += timedelta(minutes=61)
    w.flush_due()
    assert len(rec.notes) == 3 and rec.notes[2].is_digest and len(rec.notes[2].events) == 4
    assert rec.notes[2].body["count"] == 4 and "rate limit" in rec.notes[2].text
    assert sorted(outbox.done) == [1, 2, 3, 4, 5, 6] and w.stats.digests == 1


def test_quiet_hours_hold_warnings_but_never_critical_alerts() -> None:
    clock = FakeClock(datetime(2026, 11, 22, 15, 30, tzinfo=UTC))  # 23:30 in Ulaanbaatar (UTC+8)
    rec = Recorder()
    opts = WebhookOptions(
        type="webhook", url="http://127.0.0.1:1/", quiet_hours="22:00-07:00", timezone="Asia/Ulaanbaatar"
    )  # type: ignore[arg-type]
    w = worker(rec, opts, clock)
    w.process((1, event(1)))
    w.process((2, event(2, severity="critical")))
    w.process((3, event(3, severity="info")))
    assert [n.severity for n in rec.notes] == ["critical"]
    clock.now = datetime(2026, 11, 22, 23, 1, tzinfo=UTC)  # 07:01 local
    w.flush_due()
    assert rec.notes[-1].is_digest and rec.notes[-1].body["reason"] == "quiet hours"
    assert [e["id"][-18:] for e in rec.notes[-1].events] == [event(1)["id"][-18:], event(3)["id"][-18:]]


def test_routing_by_severity_and_rule_and_a_failing_channel_does_not_hold_up_the_others() -> None:
    clock = FakeClock(T0)
    broken, fine = Recorder(), Recorder()
    broken.fail_next = 100
    only_critical = WebhookOptions(
        type="webhook", url="http://127.0.0.1:1/", name="sms", severities=["critical"]
    )  # type: ignore[arg-type]
    only_dust = WebhookOptions(type="webhook", url="http://127.0.0.1:1/", name="ngo", rules=["pm25-instant"])  # type: ignore[arg-type]
    stop = threading.Event()
    wb = Worker(only_critical, broken, Outbox(), clock, stop, sleep=lambda s: None)
    wf = Worker(only_dust, fine, Outbox(), clock, stop, sleep=lambda s: None)
    d = Dispatcher([wb, wf])
    assert d.route(event()) == ["ngo"]
    assert d.route(event(severity="critical", rule="river")) == ["sms"]
    assert d.route(event(severity="critical")) == ["sms", "ngo"]
    d.start()
    try:
        for n in range(1, 4):
            for label in d.route(event(n, severity="critical")):
                d.submit(n, label, event(n, severity="critical"))
        deadline = datetime.now() + timedelta(seconds=20)
        while (len(fine.notes) < 3 or wb.stats.given_up < 3) and datetime.now() < deadline:
            stop.wait(0.05)
    finally:
        d.stop()
    assert len(fine.notes) == 3 and wb.stats.given_up == 3 and wb.stats.failures == 15
    assert d.stats()["sms"]["given_up"] == 3
