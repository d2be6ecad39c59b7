"""The InfluxQL in docs/regulators.md runs on a real influxd and gives the numbers it promises."""

from __future__ import annotations

import re

from tests import regdata
from tests.helpers import ROOT, Influx


def _queries() -> list[str]:
    text = (ROOT / "docs" / "regulators.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    queries = [q.strip() for block in blocks for q in block.split("\n\n") if q.strip()]
    # the examples cover November; our data is 2026-11-01 .. 2026-11-04
    return [" ".join(q.replace("2026-12-01", "2026-11-04").split()) for q in queries]


def test_the_documented_queries_run_and_agree_with_the_data(influx: Influx) -> None:
    regdata.dust_site(influx, days=3)
    regdata.alerts(influx)
    queries = _queries()
    assert len(queries) == 6
    hourly, daily, days_over, episodes, raised, missing = queries
    assert len([r for r in influx.rows(hourly) if r["node"] == "haul-road"]) == 24
    days = [r for r in influx.rows(daily) if r["node"] == "haul-road"]
    assert [round(r["completeness"], 4) for r in days] == [round(1439 / 1440, 4), 1.0, 0.75]
    assert influx.rows(days_over) == []  # no day over 50 µg/m³ ...
    over_who = influx.rows(days_over.replace('"m" > 50', '"m" > 15'))
    assert [(r["node"], r["count"]) for r in over_who] == [("haul-road", 3)]  # ... every day over 15
    assert len(influx.rows(episodes)) == 5
    assert sorted((r["rule"], r["count"]) for r in influx.rows(raised)) == [
        ("mns-4585-2016-pm2_5-24h", 1),
        ("pm25-1h", 1),
    ]
    made = {r["node"]: (r["made"], r["stored"]) for r in influx.rows(missing)}
    assert made["haul-road"] == (3 * 1440 - 360, 3 * 1440 - 360)  # offline, not lost: seq has no gap
