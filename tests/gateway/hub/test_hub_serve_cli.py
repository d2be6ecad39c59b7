"""`minewatch-gateway hub serve`, `hub token`, `hub tokens`, `hub revoke-token` and `hub export|evidence
--as` as an operator and a regulator run them, as processes: the regulator's `verify` accepts what
the hub exports, and a revoked token is refused by the running server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

from gateway.devservices import free_port
from tests.gateway.hub.hubdata import NOW, build

ROOT = Path(__file__).resolve().parents[3]


def _cli(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == expect, (out.stdout, out.stderr)
    return out


def _get(url: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_operator_makes_and_revokes_tokens_and_a_regulator_verifies_the_hubs_export(
    pg: str, tmp_path: Path
) -> None:
    build(pg)
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\ndsn = "{pg}"\n[web]\nport = {port}\n')
    token = _cli("hub", "token", "--config", str(config), "--jurisdiction", "aimag", "--by", "O. Operator",
                 "--label", "aimag data office").stdout.strip()  # fmt: skip
    assert token.startswith("mwh_")
    _cli("hub", "token", "--config", str(config), "--jurisdiction", "nowhere", "--by", "x", expect=2)
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "hub", "serve", "--config", str(config)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/agreements.json", timeout=5) as resp:
                    assert json.loads(resp.read())["agreements"][0]["name"] == "tsagaan-to-aimag"
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "hub serve did not start"
                time.sleep(0.1)
        status, body = _get(url + "/api/v1/latest", token)
        assert status == 200 and {x["site"] for x in json.loads(body)} == {"tsagaan", "ulaan"}
        status, keys = _get(url + "/api/v1/keys?site=tsagaan", token)
        assert status == 200
        (tmp_path / "keys.json").write_bytes(keys)

        # the regulator: export the shared site from the hub, verify it with the published keys
        period = ["--site", "tsagaan", "--start", f"{NOW - timedelta(days=1):%Y-%m-%dT%H:%MZ}",
                  "--end", f"{NOW:%Y-%m-%dT%H:%MZ}"]  # fmt: skip
        csv = tmp_path / "tsagaan.csv"
        _cli("hub", "export", "--config", str(config), "--as", "aimag", *period, "--out", str(csv))
        verdict = _cli("verify", "--keys", str(tmp_path / "keys.json"), "--input", str(csv)).stdout
        assert "24" in verdict
        bundle = tmp_path / "tsagaan.zip"
        _cli("hub", "evidence", "--config", str(config), "--as", "aimag", *period, "--out", str(bundle))
        _cli("verify", "--bundle", str(bundle))
        # as a jurisdiction it is not shared with, the site does not exist
        refused = _cli("hub", "export", "--config", str(config), "--as", "other", *period, "--out",
                       str(tmp_path / "no.csv"), expect=2)  # fmt: skip
        assert "tsagaan" in refused.stderr

        token_id = token.split("_")[1]
        listed = _cli("hub", "tokens", "--config", str(config)).stdout
        assert token_id in listed and "aimag data office" in listed and "valid" in listed
        _cli("hub", "revoke-token", "--config", str(config), "--id", token_id, "--by", "O. Operator")
        _cli("hub", "revoke-token", "--config", str(config), "--id", token_id, "--by", "x", expect=2)
        assert "revoked" in _cli("hub", "tokens", "--config", str(config)).stdout
        assert _get(url + "/api/v1/latest", token)[0] == 401
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, server.stderr.read() if server.stderr else ""
