"""The metric table is the one description of a metric: every other place reads it."""

from __future__ import annotations

import pytest

from contract.i18n import Texts
from contract.metrics import METRIC_UNITS, METRICS, PHYSICAL_RANGE, Metric, spec, unit
from contract.wire import MetricValue, ReadingPayload


def test_every_metric_has_one_row_with_a_unit_a_range_and_words() -> None:
    en = Texts("en")
    assert set(METRICS) == set(Metric)
    for metric, row in METRICS.items():
        assert row.metric is metric and row.unit and row.low < row.high
        assert METRIC_UNITS[metric] == row.unit and PHYSICAL_RANGE[metric] == (row.low, row.high)
        assert en.has(row.label_key) and en.has(row.short_key)
        assert row.unit_key is None or en.has(row.unit_key)


def test_pages_show_symbols_from_the_table_and_words_from_the_translation() -> None:
    en = Texts("en")
    assert en.unit("pm2_5") == "µg/m³" and unit("pm2_5") == "µg/m³"
    assert en.unit("pc0_3") == "per 0.1 L" and unit("pc0_3") == "particles/0.1 L"
    assert en.label("pm2_5") == "PM2.5 (fine dust)" and en.short("pm2_5") == "PM2.5"
    assert en.number("pm2_5", 50.03) == "50.0"
    assert spec("status") is None and en.unit("status") == "" and en.label("any") == "any"


@pytest.mark.parametrize("metric", [Metric.RH, Metric.PRESSURE])
def test_the_wire_models_refuse_a_value_outside_the_tables_range(metric: Metric) -> None:
    row = METRICS[metric]
    doc = {
        "schema": 1,
        "site": "s",
        "node": "n",
        "seq": 1,
        "ts": "2026-11-22T10:00:00.000Z",
        "period_s": 60,
        "flags": [],
    }
    ReadingPayload.model_validate({**doc, "metrics": {metric.value: MetricValue(row.high, 1)}})
    with pytest.raises(ValueError, match="outside"):
        ReadingPayload.model_validate({**doc, "metrics": {metric.value: MetricValue(row.high + 1, 1)}})
