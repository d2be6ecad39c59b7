"""The systemd units and the install script, run for real into a temporary root (users, pip and
systemctl are only printed there, so the test needs no root and changes nothing on the machine)."""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "install.sh"


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


@pytest.mark.parametrize("role", ["node", "gateway"])
def test_units_run_unprivileged_notify_and_restart_forever(role: str) -> None:
    unit = _unit(ROOT / role / "systemd" / f"minewatch-{role}.service")
    service = unit["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["Restart"] == "always"
    assert int(service["WatchdogSec"]) >= 30
    assert int(service["LimitNOFILE"]) >= 65536  # not systemd's soft 1024 (issue 22)
    assert service["User"] == "minewatch"
    assert service["StateDirectory"] == f"minewatch/{role}"
    assert service["ExecStart"].startswith(
        f"/opt/minewatch/bin/minewatch-{role} run --config /etc/minewatch/"
    )
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def _install(*args: str) -> str:
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_install_script_is_idempotent_and_keeps_the_users_config(tmp_path: Path) -> None:
    first = _install("node", "--root", str(tmp_path))
    unit = tmp_path / "etc/systemd/system/minewatch-node.service"
    config = tmp_path / "etc/minewatch/node.toml"
    assert unit.read_bytes() == (ROOT / "node/systemd/minewatch-node.service").read_bytes()
    assert config.read_bytes() == (ROOT / "examples/node.toml").read_bytes()
    assert (tmp_path / "var/lib/minewatch/node").is_dir()
    assert "installed: /etc/systemd/system/minewatch-node.service" in first
    for group in ("dialout", "i2c", "gpio"):
        assert f"usermod -aG {group} minewatch" in first  # printed, not run, under --root
    config.write_text('site = "tsagaan"\n')  # the kit builder edits it
    key = tmp_path / "etc/minewatch/node.key"
    key.write_text("secret")
    key.chmod(0o600)
    second = _install("node", "--root", str(tmp_path))
    assert "chown minewatch:minewatch /etc/minewatch/node.key" in second
    assert "unchanged: /etc/systemd/system/minewatch-node.service" in second
    assert "kept (yours): /etc/minewatch/node.toml" in second
    assert "installed:" not in second and "created:" not in second
    assert config.read_text() == 'site = "tsagaan"\n'
    assert "systemctl start" in second and "systemctl restart" not in second  # nothing changed


def test_install_dry_run_changes_nothing(tmp_path: Path) -> None:
    out = _install("gateway", "--dry-run", "--root", str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    assert "would install: /etc/systemd/system/minewatch-gateway.service" in out
    assert "usermod" not in out  # the gateway needs no device groups


def test_install_refuses_an_unknown_role() -> None:
    done = subprocess.run(["bash", str(SCRIPT), "printer"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage" in done.stderr


GATEWAY_ONLY = {
    "influxdb-client",
    "jiter",
    "tqdm",
    "numpy",
    "starlette",
    "uvicorn",
    "jinja2",
    "matplotlib",
    "odata-query",
    "python-multipart",
    "pillow",
}


def test_a_node_install_brings_nothing_of_the_gateway(tmp_path: Path) -> None:
    """`pip install .` on a Pi, resolved for real by pip (without installing): the node's packages
    only. The gateway's come with its extra, which `install.sh gateway` asks for."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--report",
            str(report),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"minewatch", "paho-mqtt", "pydantic", "pyserial", "cryptography"} <= names
    assert names & GATEWAY_ONLY == set()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("influxdb-client") for dep in extras["gateway"])
    assert 'PKG="$SRC[gateway,web,report]"' in SCRIPT.read_text()
