"""The report in Mongolian (`report --lang mn`): every section in Cyrillic, in the site's time zone
and with the nodes' friendly names, HTML and PDF (DejaVu has Cyrillic); no English word of en.toml
left, once the machine's text (queries, ids, fingerprints) is set aside."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from contract import i18n
from gateway.cli import main
from tests import regdata
from tests.contract.test_i18n_mn import english_words
from tests.gateway.report.test_report import END, START, full_report, site_db, tables  # noqa: F401 (fixtures)
from tests.gateway.web.test_i18n import _flat
from tests.helpers import Influx

SITE_TABLE = """
[site]
timezone = "Asia/Ulaanbaatar"
[[site.names]]
site = "tsagaan"
name = { en = "Tsagaan bag", mn = "Цагаан баг" }
[[site.names]]
site = "tsagaan"
node = "haul-road"
name = { en = "haul road", mn = "тээврийн зам" }
[[site.names]]
site = "tsagaan"
node = "river-down"
name = { en = "river, downstream", mn = "голын доод хэсэг" }
"""
ENGLISH = {
    w.lower()
    for key, text in _flat(Path(i18n.__file__).parent / "en.toml").items()
    if key != "lang"
    for w in english_words(text)
}
"""Every English word the English file uses: none may be left in a Mongolian report."""


def _report(db: Influx, tmp_path: Path, *extra: str) -> tuple[str, str]:
    config = regdata.gateway_config(tmp_path / "gateway.toml", db)
    config.write_text(config.read_text() + SITE_TABLE)
    out = tmp_path / "report.html"
    args = ["--site", regdata.SITE, "--start", START, "--end", END, "--out", str(out), "--pdf"]
    assert main(["report", "--config", str(config), *args, *extra]) == 0
    pdf = PdfReader(out.with_suffix(".pdf"))
    return out.read_text(encoding="utf-8"), "\n".join(page.extract_text() for page in pdf.pages)


def _embedded_fonts(pdf: PdfReader) -> dict[str, bool]:
    """Each font the PDF's pages use, by its name without the subset tag ("ABCDEF+DejaVuSans" ->
    "DejaVuSans"), and whether its glyphs are embedded (a FontFile in its descriptor)."""
    found: dict[str, bool] = {}
    for page in pdf.pages:
        fonts: Any = page["/Resources"].get_object().get("/Font")
        for ref in fonts.get_object().values() if fonts is not None else ():
            font = ref.get_object()
            shape = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor = shape["/FontDescriptor"].get_object()
            name = str(font["/BaseFont"]).lstrip("/").split("+")[-1]
            found[name] = any(f"/FontFile{n}" in descriptor for n in ("", "2", "3"))
    return found


def _machine_text(page: str) -> list[str]:
    """What the report prints for machines and for checking: its queries and code (commands, key
    fingerprints), rule, node and calibration ids, as the database has them."""
    code = [html.unescape(c) for c in re.findall(r"<(?:pre|code)>(.*?)</(?:pre|code)>", page, re.S)]
    ids = re.findall(r'data-(?:node|rule)="([^"]+)"', page)
    cells = [c for rows in tables(page).values() for row in rows for c in row]
    cal_ids = [c for c in cells if "@" in c]
    typed = ["--calibrations"]  # an option the reader types as it is
    return [*code, *ids, *cal_ids, *typed, "minewatch", "node-offline", "haul-road", "river-down", "tsagaan"]


def _without(text: str, parts: Iterable[str]) -> str:
    """`text` with each part taken out, wherever the PDF broke its lines inside it."""
    for part in sorted({p.strip() for p in parts if p.strip()}, key=len, reverse=True):
        pattern = r"\s*".join(re.escape(ch) for ch in re.sub(r"\s+", "", part))
        text = re.sub(pattern, " ", text)
    return text


def _leaks(text: str) -> set[str]:
    return {w for w in english_words(text) if w.lower() in ENGLISH}


def test_the_report_in_mongolian_has_no_english_word_in_html_or_pdf(site_db: Influx, tmp_path: Path) -> None:  # noqa: F811
    page, pdf = _report(site_db, tmp_path, "--lang", "mn")
    machine = _machine_text(page)
    assert '<html lang="mn">' in page
    prose = re.sub(r"<(pre|code)>.*?</\1>|<style>.*?</style>|<[^>]+>", " ", page, flags=re.S)
    assert _leaks(_without(html.unescape(prose), machine)) == set()
    assert _leaks(_without(pdf, machine)) == set()
    # every section is there, in Mongolian, in the PDF too (its font has Cyrillic)
    for heading in (
        "Агаар ба усны хяналтын тайлан: Цагаан баг талбай",
        "Энэ тайланг хэрхэн унших вэ",
        "Хураангуй",
        "Сэрэмжлүүлгийн системийн бүртгэсэн хэтрэлт",
        "тээврийн зам мэдрэгч: өгөгдлийн бүрэн байдал",
        "Гарал үүсэл",
        "мэдрэгчийг дөнгөж асаасан эсвэл сэрээсэн",  # a flag's meaning
    ):
        assert heading in page
        assert re.sub(r"\s+", "", heading) in re.sub(r"\s+", "", pdf), heading
    # and the words are drawn in DejaVu Sans (the template's font), embedded; every font in it is
    # DejaVu, which has Cyrillic: text read back from a PDF drawn in a font without Cyrillic (boxes
    # for missing glyphs) would still pass the lines above
    fonts = _embedded_fonts(PdfReader(tmp_path / "report.pdf"))
    assert "DejaVu-Sans" in fonts and all(name.startswith("DejaVu") for name in fonts), fonts
    assert all(fonts.values()), fonts


def test_the_reports_times_are_local_with_the_zone_and_its_ids_stay(site_db: Influx, tmp_path: Path) -> None:  # noqa: F811
    page, pdf = _report(site_db, tmp_path, "--lang", "mn")
    t = tables(page)
    # the exceedance that began at 07:00 UTC began at 15:00 in Ulaanbaatar (UTC+08 all year)
    pm25 = next(r for r in t["exceedance-table"] if r[1].startswith("pm25-1h"))
    assert pm25[0] == "тээврийн зам"
    assert pm25[5:8] == ["2026-11-02 15:00 UTC+08", "2026-11-02 18:00 UTC+08", "2026-11-02 19:00 UTC+08"]
    assert "2026-11-0215:00UTC+08" in re.sub(r"\s+", "", pdf)
    assert "UTC+08" in page and "07:00 UTC" not in page
    # machines' names are kept where machines read: table ids and data attributes
    assert 'id="completeness-haul-road"' in page and 'data-node="haul-road"' in page


def test_the_english_report_names_the_places_and_zone_too(site_db: Influx, tmp_path: Path) -> None:  # noqa: F811
    page, _ = _report(site_db, tmp_path, "--lang", "en")
    assert "Air and water monitoring report: site Tsagaan bag" in page
    assert "(times in UTC+08)" in page
    assert "Node haul road: data completeness" in page
    assert "In local time, a day begins at 08:00 UTC+08." in page


def test_a_report_in_utc_does_not_say_when_a_day_begins_twice(full_report: str) -> None:  # noqa: F811
    assert "(times in UTC)" in full_report and "In local time" not in full_report


def test_the_report_names_a_rule_as_its_messages_do_with_its_id_beside(
    influx: Influx, tmp_path: Path
) -> None:
    """An alert stored with its message id and parameters: the exceedance table names its rule in
    the reader's words ("PM2.5 24 цагийн дундаж, АНУ-ын EPA"), its id beside it as machine text."""
    import json
    from datetime import timedelta

    from gateway.alerts.messages import rule_name

    regdata.dust_site(influx, days=1)
    params = {"metric": "pm2_5", "average": "24h", "standard": "US EPA NAAQS"}
    at = regdata.DAY0 + timedelta(hours=5)
    line = regdata.alert_line("haul-road", "us-epa-pm25-24h", "pm2_5", "raised", at, 40.0, 35.0)
    extra = f',msg_id="alert.threshold.raised",msg_params="{regdata.esc(json.dumps(params))}"'
    fields, stamp = line.rsplit(" ", 1)
    influx.write([f"{fields}{extra} {stamp}"])
    page, _ = _report(influx, tmp_path, "--lang", "mn")
    named = rule_name(
        {"msg_id": "alert.threshold.raised", "msg_params": params, "rule": "x"}, i18n.Texts("mn")
    )
    assert re.search("[А-Яа-яӨөҮү]", named) and "us-epa" not in named, named
    (row,) = [r for r in tables(page)["exceedance-table"] if "us-epa-pm25-24h" in r[1]]
    assert row[1].startswith(named), row[1]
    assert "<code>us-epa-pm25-24h</code>" in page
