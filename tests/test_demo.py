"""`make demo` as a newcomer runs it (issue 18, "Also found, for the kit builder"): its output shows
the alerts, set apart, instead of burying them under a line per reading; with DEMO_KEEP=1 its data
stays, and the commands it prints — start its database again, the `influx` queries, the report —
work on it. The real demo module, a real broker and influxd, the Debian `influx` client."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gateway.cli import main
from tests.helpers import ROOT


def _wait_for_ping(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as resp:
                if resp.status == 204:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def test_the_demo_shows_its_alerts_and_keeps_data_the_printed_commands_query(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_SECONDS": "40", "DEMO_KEEP": "1", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    # the alerts stand out: the dust event raised at the haul road, the river over its upstream
    assert re.search(r"^\*\*\* ALERT RAISED  tsagaan\.haul-road\.dust-instant\.", out, re.M), out
    assert re.search(r"^\*\*\* ALERT RAISED  tsagaan\.river-down\.river-over-background\.", out, re.M), out
    assert not re.search(r"^stored ", out, re.M)  # a line per reading only with DEMO_VERBOSE=1
    # the data is kept, and what the demo says to type works on it
    start = re.search(r"^  (influxd run -config \S+) &$", out, re.M)
    queries = re.findall(r"^  (influx -port \d+ .*)$", out, re.M)
    report = re.search(r"^  minewatch-gateway (report .*)$", out, re.M)
    assert start and queries and report, out
    port = int(re.findall(r"-port (\d+)", queries[0])[0])
    influxd = subprocess.Popen(
        shlex.split(start.group(1)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_ping(port)
        answers = [
            subprocess.run(shlex.split(q), capture_output=True, text=True, timeout=60) for q in queries
        ]
        assert all(a.returncode == 0 for a in answers), [a.stderr for a in answers]
        assert "haul-road" in answers[0].stdout and "river-down" in answers[1].stdout
        assert main(shlex.split(report.group(1))) == 0
        html = Path(shlex.split(report.group(1))[-1]).read_text(encoding="utf-8")
        assert "dust-instant" in html  # the demo's alert, in the report's exceedances
    finally:
        influxd.terminate()
        influxd.wait(20)
