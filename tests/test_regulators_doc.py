"""The InfluxQL in docs/regulators.md runs on a real influxd and gives the numbers it promises."""

from __future__ import annotations

import re
from pathlib import Path

from gateway import cli
from tests import regdata
from tests.helpers import ROOT, Influx


def _queries() -> list[str]:
    text = (ROOT / "docs" / "regulators.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    queries = [q.strip() for block in blocks for q in block.split("\n\n") if q.strip()]
    # the examples cover November; our data is 2026-11-01 .. 2026-11-04
    return [" ".join(q.replace("2026-12-01", "2026-11-04").split()) for q in queries]


def test_the_documented_queries_run_and_agree_with_the_data(influx: Influx, tmp_path: Path) -> None:
    regdata.dust_site(influx, days=3)
    regdata.alerts(influx)
    queries = _queries()
    assert len(queries) == 7
    band, hourly, daily, days_over, episodes, raised, missing = queries
    # the long period's plot band, from the hourly roll-ups: per 10 hours, the lowest and highest
    # hourly mean, as the readings' own hourly means grouped the same way give them
    (tmp_path / "gateway.toml").write_text(
        f'data_dir = "{tmp_path}"\n[mqtt]\nhost = "127.0.0.1"\n'
        f'[influxdb]\nurl = "{influx.url}"\ndatabase = "{influx.db}"\napi = "v1"\n'
    )
    rebuild = ["rollup", "--config", str(tmp_path / "gateway.toml"), "--rebuild", "--site", "tsagaan"]
    assert cli.main([*rebuild, "--start", "2026-11-01", "--end", "2026-11-05"]) == 0
    got = [r for r in influx.rows(band) if r["node"] == "haul-road"]
    means = influx.rows(
        'SELECT mean("pm2_5") AS m FROM "reading" WHERE "site" = \'tsagaan\' AND "node" = \'haul-road\' '
        "AND time > '2026-11-01T00:00:00Z' AND time <= '2026-11-05T00:00:00Z' "
        "GROUP BY time(1h, 1ms) fill(none)"
    )
    want: dict[int, list[float]] = {}
    for r in means:
        # each hour is (b, b + 1 h], stamped b + 1 ms here and b + 1 h in the roll-up; the band's
        # groups of 10 hours start 1 ms past a multiple of 10 h since the epoch
        end_ms = int(r["time"]) - 1 + 3_600_000
        want.setdefault((end_ms - 1) // 36_000_000, []).append(r["m"])
    assert len(got) == len(want) > 5
    for row in got:
        group = want[(int(row["time"]) - 1) // 36_000_000]
        assert round(row["min_pm2_5_mean"], 6) == round(min(group), 6)
        assert round(row["max_pm2_5_mean"], 6) == round(max(group), 6)
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
