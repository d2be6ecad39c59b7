"""Without `[web] public_url` the messages of email, Apprise and webhook channels carry no
acknowledgement link (only the CLI command and the MQTT topic): the gateway says so once, at the
start of the alerts, naming the channels; with the address set, or with only the MQTT topic (never
personal), it says nothing. Real influxd, the real alert wiring, pytest's log capture."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.alerts.service import Alerts
from gateway.config import load
from gateway.devservices import free_port
from tests.fakes.clock import FakeClock
from tests.helpers import Influx

RULE = """
[[alerts.rules]]
name = "pm25-instant"
type = "threshold"
metric = "pm2_5"
limit = 50.0
"""


def _channels(port: int) -> str:
    return f"""
[[alerts.channels]]
type = "webhook"
name = "ops-relay"
url = "http://127.0.0.1:{port}/hook"
[[alerts.channels]]
type = "apprise"
name = "night-watch"
urls = ["json://127.0.0.1:{port}/notify"]
[[alerts.channels]]
type = "mqtt"
"""


def _warnings(tmp_path: Path, influx: Influx, caplog: pytest.LogCaptureFixture, extra: str) -> list[str]:
    """The alert wiring's warnings about links as `Alerts.start` logs them for this config."""
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[influxdb]\nurl = "{influx.url}"\ndatabase = "{influx.db}"\napi = "v1"\n{RULE}{extra}'
    )
    alerts = Alerts(load(path), clock=FakeClock(datetime.now(UTC)), publish=lambda topic, payload: True)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gateway.alerts.service"):
        alerts.start()
        try:
            alerts.tick()  # the ticks that follow say nothing more
            alerts.tick()
        finally:
            alerts.stop()
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "acknowledgement link" in r.getMessage()
    ]


@pytest.mark.parametrize(
    ("web", "where"),
    [
        ("", "there is no [web] table"),
        ('[web]\nport = 18123\nlanguage = "mn"\n', "[web] public_url is not set"),
    ],
)
def test_channels_without_public_url_are_warned_about_once_naming_them(
    tmp_path: Path, influx: Influx, caplog: pytest.LogCaptureFixture, web: str, where: str
) -> None:
    (warning,) = _warnings(tmp_path, influx, caplog, _channels(free_port()) + web)
    assert warning.startswith(f"alerts: {where}, so the messages of ops-relay, night-watch carry no")
    assert "set [web] public_url" in warning and "minewatch-gateway ack" in warning
    assert "mqtt" not in warning.split(" carry ")[0]  # the topic is not personal: not named


def test_with_public_url_or_only_the_mqtt_topic_nothing_is_said(
    tmp_path: Path, influx: Influx, caplog: pytest.LogCaptureFixture
) -> None:
    public = '[web]\nport = 18124\npublic_url = "https://air.tsagaan.example"\n'
    assert _warnings(tmp_path, influx, caplog, _channels(free_port()) + public) == []
    assert _warnings(tmp_path, influx, caplog, '[[alerts.channels]]\ntype = "mqtt"\n') == []
    assert _warnings(tmp_path, influx, caplog, "") == []  # no channel configured: the topic alone
