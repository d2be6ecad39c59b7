"""A script in an observation's text is refused by the form (tests/gateway/web/test_observations.py,
ATTACKS), and one stored all the same (by a version before that check, or written by hand) is shown
as text on every page that shows it: to the monitor deciding on it (/moderate, where a hostile
resident would aim at a monitor's session), and once accepted on the node's page, the site's
timeline and the report. Real HTTP, a real influxd, the report's CLI."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import urllib3

from gateway import devservices
from gateway.cli import main
from gateway.observations.records import Observation
from tests.gateway.web.test_monitors import PASSWORD, Browser
from tests.gateway.web.test_observations import Field, gateway_config
from tests.webdata import NOW, served_site

SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SHOWN = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture
def field(influxd: devservices.Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Field]:
    data = tmp_path / "gateway-data"
    with served_site(influxd.port, data_dir=data) as site:
        config = gateway_config(tmp_path / "gateway.toml", data, influxd.port, site)
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        assert main(["monitors", "add", "--config", str(config), "--name", "saraa", "--password-stdin"]) == 0
        yield Field(site, config, urllib3.PoolManager(retries=False))


def _as_text(page: str, where: str) -> None:
    assert "<script>alert" not in page and "<img src=x" not in page, where
    assert SHOWN in page, where


def test_a_script_in_the_text_is_refused_and_one_stored_is_escaped_wherever_it_is_shown(
    field: Field, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    sub = field.submission(code, token, text=SCRIPT)
    status, doc = field.post(sub, headers={"Cookie": cookie})
    assert status == 400 and doc["error"].startswith("text: ") and "markup" in doc["error"]
    assert field.stored() == []
    # stored all the same, through the write seam, as a version before the check took it
    assert field.site.field is not None
    typed = Observation(
        id=sub["id"], observer="code:1", kind="dust", text=SCRIPT, at=NOW - timedelta(minutes=20),
        site="tsagaan", node="haul-road", lat=None, lon=None, received=NOW,
        photo_received_sha256=None, photo_sha256=None,
    )  # fmt: skip
    assert field.site.field.add(typed, None)
    assert [o.text for o in field.stored()] == [SCRIPT]  # as typed

    monitor = Browser(field.site.url)
    assert monitor.login().status == 303
    _as_text(monitor.get("/moderate").data.decode(), "/moderate")

    args = ["observations", "accept", sub["id"], "--config", str(field.config)]
    assert main([*args, "--by", "saraa", "--why", "checked"]) == 0
    for path in ("/node/tsagaan/haul-road", "/sites/tsagaan/timeline", "/observations"):
        resp = field.http.request("GET", field.site.url + path)
        assert resp.status == 200, path
        _as_text(resp.data.decode(), path)
    out = tmp_path / "report.html"
    window = ["--site", "tsagaan", "--start", "2026-11-22", "--end", "2026-11-23", "--out", str(out)]
    assert main(["report", "--config", str(field.config), *window]) == 0
    _as_text(out.read_text(encoding="utf-8"), "the report")
