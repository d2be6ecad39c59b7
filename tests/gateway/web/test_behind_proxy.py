"""The dashboard's forms behind a TLS reverse proxy, over real HTTP: the proxy that keeps Host and
says https (X-Forwarded-Proto, trusted from loopback) passes the origin check; one that rewrites
Host (nginx's default `$proxy_host`) passes when the browser's Origin is `[web] public_url`'s, and
is refused without it; another site's origin is refused either way."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from gateway import devservices
from gateway.cli import main
from gateway.config import WebConfig
from gateway.observations import records
from tests.gateway.web.test_observations import gateway_config
from tests.webdata import Site, served_site

PUBLIC = "https://air.example"


@pytest.fixture(params=[None, PUBLIC + "/"], ids=["no-public-url", "public-url"])
def served(
    influxd: devservices.Service, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Site, bool]]:
    """The dashboard taking observations, with `[web] public_url` or without (and which)."""
    data = tmp_path / "gateway-data"
    web = WebConfig(public_url=request.param)
    with served_site(influxd.port, web=web, data_dir=data) as s:
        gateway_config(tmp_path / "gateway.toml", data, influxd.port, s)
        yield s, request.param is not None


def _submit(site: Site, code: str, headers: dict[str, str]) -> int:
    http = urllib3.PoolManager(retries=False)
    page = http.request("GET", site.url + "/observe")
    cookie = page.headers["set-cookie"].split(";")[0]
    token = re.search(r'name="csrf" value="([^"]+)"', page.data.decode())
    assert token is not None
    fields = {
        "csrf": token.group(1),
        "code": code,
        "id": str(uuid.uuid4()),
        "kind": "dust",
        "at": "2026-11-22T11:40:00Z",
        "site": "tsagaan",
        "node": "haul-road",
    }
    body, ctype = urllib3.encode_multipart_formdata(fields)
    resp = http.request(
        "POST",
        site.url + "/api/v1/observations",
        body=body,
        headers={"Content-Type": ctype, "Cookie": cookie, **headers},
    )
    if resp.status != 201:
        assert "own form" in json.loads(resp.data)["error"]
    return resp.status


def test_a_form_through_a_proxy_passes_the_origin_check_as_the_proxy_is_set_up(
    served: tuple[Site, bool], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, public = served
    assert site.field is not None
    config = tmp_path / "gateway.toml"
    assert main(["observers", "add", "--config", str(config), "--name", "Dorj"]) == 0
    found = re.search(r"code (\S+)", capsys.readouterr().out)
    assert found is not None
    code = found.group(1)
    direct = site.url.removeprefix("http://")
    # straight to the dashboard: Origin is the scheme and Host it sees
    assert _submit(site, code, {"Origin": site.url, "Host": direct}) == 201
    # a proxy keeping Host and saying https, from loopback (uvicorn trusts 127.0.0.1's headers)
    kept = {"Origin": PUBLIC, "Host": "air.example", "X-Forwarded-Proto": "https"}
    assert _submit(site, code, kept) == 201
    # a proxy rewriting Host to the upstream's address: only public_url makes it this dashboard
    rewritten = {"Origin": PUBLIC, "Host": direct}
    assert _submit(site, code, rewritten) == (201 if public else 403)
    # another site's page is refused, with public_url or without
    assert _submit(site, code, {"Origin": "https://evil.example", "Host": direct}) == 403
    assert _submit(site, code, {"Origin": "http://air.example", "Host": direct}) == 403
    assert len(records.listed(site.field.reader)) == (3 if public else 2)
