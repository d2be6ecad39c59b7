"""A report over months: the HTML keeps a row per day (a table a month), the PDF prints a month per
row and carries every day in attached CSV files, so that nothing the HTML shows is lost in print."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pypdf import PdfReader

from gateway.config import InfluxConfig
from gateway.report import data, render
from gateway.stores import open_reader
from tests.helpers import Influx

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 70


def test_a_long_period_prints_months_and_attaches_every_day(influx: Influx, tmp_path: Path) -> None:
    lines = []
    for h in range(1, DAYS * 24 + 1):
        if 30 * 24 < h <= 32 * 24:  # two days silent: their rows say 0 readings
            continue
        t = int((DAY0 + timedelta(hours=h)).timestamp() * 1000)
        pm = 5 + (h - 1) // 24 % 3 * 10 + h % 5  # days at about 7, 17 and 27: over 15 on some
        lines.append(f'reading,node=a,site=s pm2_5={pm},pm2_5_n=60i,seq={h}i,flags="",period_s=3600i {t}')
    influx.write(lines)
    reader = open_reader(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    end = DAY0 + timedelta(days=DAYS)
    report = data.collect(reader, site="s", start=DAY0, end=end, generated=end, standards=["who-2021"])
    reader.close()

    page = render.html(report)
    assert 'id="daily-a-pm2_5-2026-01"' in page and 'id="daily-a-pm2_5-2026-03"' in page
    assert page.count("<tr class=") >= DAYS  # a row per day, in tables a month each
    printed = render.html(report, printed=True)
    assert 'id="daily-a-pm2_5-months"' in printed and 'id="daily-a-pm2_5-2026-01"' not in printed
    assert 'id="completeness-a-months"' in printed

    render.pdf(report, tmp_path / "r.pdf")
    pdf = PdfReader(tmp_path / "r.pdf")
    attached = {name: content[0].decode() for name, content in pdf.attachments.items()}
    means = list(csv.DictReader(io.StringIO(attached[render.ATTACHMENTS["daily"]])))
    (section,) = report.metrics
    assert [(r["day"], float(r["mean"]), int(r["readings"])) for r in means] == [
        (d.start.strftime("%Y-%m-%d"), d.mean, d.count) for d in section.daily
    ]
    over = {r["day"] for r in means if r["over"]}
    assert over == {d.start.strftime("%Y-%m-%d") for d in section.days_over(section.limits[0][1])}
    assert 0 < len(over) < len(means)
    days = list(csv.DictReader(io.StringIO(attached[render.ATTACHMENTS["completeness"]])))
    assert len(days) == DAYS and [r["readings"] for r in days[30:32]] == ["0", "0"]
    text = "\n".join(p.extract_text() for p in pdf.pages)
    assert "2026-02" in text, text
    assert render.ATTACHMENTS["daily"] in text.replace("\n", ""), text
    # the month rows add up to the days they stand for
    months = section.months()
    assert [m.month for m in months] == ["2026-01", "2026-02", "2026-03"]
    assert sum(m.days for m in months) == len(section.daily)
    assert sum(m.over[0] for m in months) == len(over)
