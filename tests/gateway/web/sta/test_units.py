"""Every unit of the metric table has its UCUM code, and every metric a definition and words."""

from __future__ import annotations

from contract.i18n import Texts
from contract.metrics import METRICS
from gateway.web.sta.entities import UCUM


def test_every_metric_unit_has_a_ucum_code() -> None:
    assert {spec.unit for spec in METRICS.values()} <= set(UCUM)
    assert UCUM["µg/m³"] == "ug/m3" and UCUM["°C"] == "Cel" and UCUM["hPa"] == "hPa"


def test_the_sensorthings_words_exist_in_every_language() -> None:
    for language in Texts.languages():
        t = Texts(language)
        assert t("sta.datastream_name", metric="PM2.5", node="n") != "sta.datastream_name"
