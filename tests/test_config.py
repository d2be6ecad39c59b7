"""Bad configs name the file and the key and exit 2, before anything connects."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.configfile import ConfigError, read_secret
from contract.metrics import Metric
from gateway.config import load as load_gateway
from hardware.base import open_driver
from node.config import load as load_node
from tests.helpers import ROOT

GOOD_NODE = 'site = "tsagaan"\nnode = "haul-road"\n[[sensors]]\ntype = "simulated-pm"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour = 'red'\n" + GOOD_NODE, "colour: unknown key"),
        (GOOD_NODE.replace("haul-road", "Haul Road"), "node: 'Haul Road' is not an id"),
        (GOOD_NODE + "[mqtt]\nprot = 1883\n", "mqtt.prot: unknown key"),
        (GOOD_NODE + "[[sensors]]\ntype = 'simulated-turbidity'\nbaseline = -1\n", "sensors[1].baseline"),
        (GOOD_NODE + "[[sensors]]\ntype = 'simulated-pm'\nport = '/dev/x'\n", "sensors[1].port: unknown key"),
        (GOOD_NODE + "[[sensors]]\ntype = 'geiger'\n", "sensors[1].type: 'geiger' is not a type we know"),
        (
            GOOD_NODE + "[[sensors]]\ntype = 'simulated-pm'\nevents = [{start_s = 1}]\n",
            "sensors[1].events[0].duration_s: Field required",
        ),
        ("interval_s = 0\n" + GOOD_NODE, "interval_s: 0 is too small: it must be 1 or more"),
        ('site = "tsagaan"\nnode = "n"\n', "sensors: Field required"),
        (GOOD_NODE + "[[sensors]]\ntype = 'simulated-pm'\nname = 'simulated-pm'\n", "used twice"),
        ("site = \n", "not valid TOML"),
        ("clock_sync = 'gps'\n" + GOOD_NODE, "clock_sync: 'gps' is not one of 'ntp' or 'rtc'"),
        ("status_interval_s = 0\n" + GOOD_NODE, "status_interval_s: 0 is too small: it must be 1 or more"),
        (GOOD_NODE + "[buffer]\nmax_readings = 0\n", "buffer.max_readings: 0 is too small"),
        (GOOD_NODE + "[buffer]\nmin_free_mb = -1\n", "buffer.min_free_mb"),
        (GOOD_NODE + "[mqtt]\nreconnect_max_s = 0\n", "mqtt.reconnect_max_s"),
    ],
)
def test_node_config_errors_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "node.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_node(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_repeated_sensors_get_numbered_names(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    # two of one type, each keeping its own metrics (one sensor per metric: node.config)
    second = "[[sensors]]\ntype = 'simulated-pm'\nmetrics = ['pm10']\n"
    path.write_text(GOOD_NODE + "metrics = ['pm2_5']\n" + second)
    assert [s.name for s in load_node(path).sensors] == ["simulated-pm", "simulated-pm-2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[influxdb]\napi = 'v3'\n", "influxdb.api: 'v3' is not one of 'v1', 'v2' or 'auto'"),
        ("[influxdb]\nurl = 'not a url'\n", "influxdb.url"),
        ("[mqtt]\nport = 70000\n", "mqtt.port"),
        ("[batch]\nmax_size = 0\n", "batch.max_size"),
        ("[alert]\n", "alert: unknown key"),
        ("[[alerts]]\n", "alerts: Input should be a valid dictionary"),
    ],
)
def test_gateway_config_errors_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_gateway(path)
    assert f"{path}: {expected}" in str(caught.value)


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(GOOD_NODE + "[buffer]\npath = 'state/outbox.sqlite'\n")
    (tmp_path / "gateway.toml").write_text("data_dir = 'gw'\n")
    assert load_node(tmp_path / "node.toml").buffer.path == tmp_path / "state" / "outbox.sqlite"
    assert load_gateway(tmp_path / "gateway.toml").data_dir == tmp_path / "gw"


@pytest.mark.parametrize("module", ["node.cli", "gateway.cli"])
def test_cli_exits_2_on_bad_config_and_names_the_key(tmp_path: Path, module: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("bogus = 1\n" + (GOOD_NODE if module == "node.cli" else ""))
    proc = subprocess.run(
        [sys.executable, "-m", module, "run", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{path}: bogus: unknown key" in proc.stderr


@pytest.mark.parametrize("module", ["node.cli", "gateway.cli"])
def test_cli_exits_2_on_bad_usage_and_on_a_missing_file(tmp_path: Path, module: str) -> None:
    usage = subprocess.run([sys.executable, "-m", module, "fly"], capture_output=True, cwd=ROOT, timeout=60)
    assert usage.returncode == 2
    missing = subprocess.run(
        [sys.executable, "-m", module, "run", "--config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert missing.returncode == 2
    assert "nope.toml: cannot read" in missing.stderr


def test_example_configs_are_valid() -> None:
    for path in sorted((ROOT / "examples").glob("node*.toml")):
        load_node(path)
    for path in sorted((ROOT / "examples").glob("gateway*.toml")):
        load_gateway(path)


def test_the_replay_example_ships_its_recording_found_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`replay-csv` paths are relative to the config file (docs/configuration.md), not to the
    working directory, and examples/recorded.csv is there: a real PMS5003 recording."""
    monkeypatch.chdir(tmp_path)
    cfg = load_node(ROOT / "examples" / "node-replay.toml")
    assert cfg.sensors[0].path == ROOT / "examples" / "recorded.csv"  # type: ignore[attr-defined]
    driver = open_driver(cfg.sensors[0], lambda: datetime.now(UTC))
    samples = driver.read()  # the first 60 s of recorded time
    assert {s.taken_at for s in samples} == {
        datetime(2020, 9, 27, 15, 16, 10, tzinfo=UTC) + timedelta(seconds=10 * i) for i in range(5)
    }
    assert {s.raw for s in samples if s.metric is Metric.PM2_5} == {8.0, 7.0}
    assert cfg.buffer.path == ROOT / "examples" / "archive-outbox.sqlite"


_NOT_UTF8 = {
    "latin-1": GOOD_NODE.replace("haul-road", "h\xe4ul-road").encode("latin-1"),
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
}


@pytest.mark.parametrize("content", sorted(_NOT_UTF8))
@pytest.mark.parametrize(
    "argv",
    [["node.cli", "run"], ["node.cli", "check"], ["gateway.cli", "run"], ["gateway.cli", "serve"]],
    ids=" ".join,
)
def test_a_config_that_is_not_utf8_names_the_file_and_exits_2(
    tmp_path: Path, argv: list[str], content: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(_NOT_UTF8[content])
    proc = subprocess.run(
        [sys.executable, "-m", *argv, "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{path}: not UTF-8 text" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_calibration_file_that_is_not_utf8_names_it_and_exits_2(tmp_path: Path) -> None:
    cal = tmp_path / "cal.toml"
    cal.write_bytes('id = "örgöö-1"\nmodel = "linear"\n'.encode("latin-1"))
    node = tmp_path / "node.toml"
    node.write_text(GOOD_NODE + 'calibration = ["cal.toml"]\n')
    for argv in (["node.cli", "check", "--config", str(node)], ["calibration.cli", "show", str(cal)]):
        proc = subprocess.run(
            [sys.executable, "-m", *argv], capture_output=True, text=True, cwd=ROOT, timeout=60
        )
        assert proc.returncode == 2, proc.stderr
        assert f"{cal}: not UTF-8 text" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_secret_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_bytes(b"p\xe4ss\n")
    secret.chmod(0o600)
    with pytest.raises(ConfigError, match="password: not UTF-8 text"):
        read_secret(secret, "MINEWATCH_TEST_UNSET_SECRET")
