"""Stopping never hides why we stop (issue 22): a step of the stop that fails while an exception
is leaving is logged beside it, and the cause is what the caller sees."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.dedup import RecentSeqs
from gateway.devservices import free_port
from gateway.shutdown import shut_down
from tests.helpers import ROOT


def _steps(workdir: Path, closed: list[str]) -> list[tuple[str, object]]:
    recent = RecentSeqs()
    recent.is_new("tsagaan", "haul-road", 1, 0)
    db = sqlite3.connect(workdir / "spool.sqlite")

    def close() -> None:
        db.close()
        closed.append("spool")

    gone = workdir / "removed"  # a data_dir that is no longer there: the save really fails
    return [("saving recent-seqs.json", lambda: recent.save(gone / "recent-seqs.json")), ("closing", close)]


def test_a_failing_step_is_logged_and_the_cause_goes_on(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[str] = []
    cause = OSError(24, "Too many open files")
    with pytest.raises(OSError, match="Too many open files") as raised:
        try:
            raise cause
        finally:
            shut_down(_steps(workdir, closed), cause)  # type: ignore[arg-type]
    assert raised.value is cause
    assert closed == ["spool"]  # the steps after the failing one still ran
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith("saving recent-seqs.json failed while stopping on OSError: [Errno 24] Too many")
    assert "No such file or directory" in line


def test_on_a_clean_stop_the_first_failure_is_raised_after_every_step(workdir: Path) -> None:
    closed: list[str] = []
    with pytest.raises(FileNotFoundError):
        shut_down(_steps(workdir, closed), None)  # type: ignore[arg-type]
    assert closed == ["spool"]


# A real gateway loop, in a process of its own, that finds no file descriptor left when it
# connects: paho cannot make its socket pair. The stop's own save fails too; what leaves `run` must
# still be the connect's error, not the save's.
SCRIPT = """
import json, os, shutil, sys, traceback
from gateway.config import GatewayConfig, InfluxConfig, MqttConfig
from gateway.wiring import build
from contract.configfile import setup_logging
setup_logging()
data_dir, mqtt_port, influx_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
service = build(GatewayConfig(data_dir=data_dir, mqtt=MqttConfig(port=mqtt_port),
                              influxdb=InfluxConfig(url=f"http://127.0.0.1:{influx_port}", api="v1")))
shutil.rmtree(data_dir)  # and the stop's save has nowhere to go: it fails too, for a reason of its own
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
try:
    service.run()
except OSError as exc:
    frames = [f.name for f in traceback.extract_tb(exc.__traceback__)]
    for fd in held:
        os.close(fd)
    print(json.dumps({"error": str(exc), "frames": frames}))
"""


def test_the_gateway_out_of_files_says_where_it_ran_out_not_where_it_stopped(workdir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(workdir / "gw"), str(free_port()), str(free_port())],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "Too many open files" in doc["error"]
    assert "start" in doc["frames"] and "save" not in doc["frames"], doc["frames"]
    assert "saving recent-seqs.json failed while stopping on OSError: [Errno 24]" in proc.stderr, (
        doc,
        proc.stderr,
    )
