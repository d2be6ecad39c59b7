"""The read seam holds: query text exists only in gateway/stores/, so a new backend is one module
there plus its tests, and no caller can drift from the one range rule (start < time <= end)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import ROOT

GATEWAY = ROOT / "gateway"
STORES = GATEWAY / "stores"

INFLUXQL = re.compile(
    r'FROM "|GROUP BY|\bSHOW (MEASUREMENTS|FIELD|TAG|SERIES|DATABASES|RETENTION)|'
    r"\btime [<>]=? ('|\d|now)|\bnow\(\) - \d|\bfill\((0|none|null|previous|linear)\)|"
    r"\b(CREATE|DROP) DATABASE"
)
SELECT = re.compile(r"\bSELECT ")


def _outside_stores() -> list[Path]:
    return sorted(p for p in GATEWAY.rglob("*.py") if STORES not in p.parents)


def test_no_influxql_outside_gateway_stores() -> None:
    found = []
    for path in _outside_stores():
        text = path.read_text(encoding="utf-8")
        sqlite = "import sqlite3" in text  # SQLite's own SQL (spool, dead letters, alert outbox)
        for number, line in enumerate(text.splitlines(), 1):
            if INFLUXQL.search(line) or (not sqlite and SELECT.search(line)):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "InfluxQL outside gateway/stores/:\n" + "\n".join(found)


def test_the_quoting_and_the_range_rule_live_once() -> None:
    assert not (GATEWAY / "influxql.py").exists() and not (GATEWAY / "web" / "influxql.py").exists()
    modules = [p for p in GATEWAY.rglob("*.py") if "def ident(" in p.read_text(encoding="utf-8")]
    assert modules == [STORES / "influxql.py"]


def test_one_http_client_reads_influxdb() -> None:
    """The readers share InfluxV1's client; nothing else opens `/query` or imports urllib for it."""
    for path in _outside_stores():
        text = path.read_text(encoding="utf-8")
        assert "/query" not in text.replace("`/query`", ""), path


BACKEND_MODULES = re.compile(
    r"gateway\.stores\.(influx_v1|influx_v2|influx_read|influx_report|influx_rollup|influxql)\b"
)


def test_nothing_outside_gateway_stores_knows_which_backend_it_talks_to() -> None:
    """Callers get a Store or a Reader from gateway.stores; a second backend changes nothing else."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _outside_stores()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if BACKEND_MODULES.search(line) or re.search(r"\bInfluxV[12]\b", line)
    ]
    assert found == []
