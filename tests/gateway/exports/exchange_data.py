"""Readings for the exchange-format tests: one of each flag, and two a maintenance visit marks,
written to influxd through the gateway's own line-protocol writers (gateway.points.to_line,
gateway.maintenance.Visit.to_line), and the gateway.toml describing them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.flags import Flag
from contract.metrics import Metric
from contract.wire import MetricValue, ReadingPayload
from gateway.maintenance import Visit
from gateway.points import to_line
from tests.helpers import Influx

SITE = "tsagaan"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
CAL = "pms5003-a12@2026-10-01"


def _reading(node: str, seq: int, metrics: dict[Metric, MetricValue], flags: list[Flag]) -> ReadingPayload:
    return ReadingPayload(
        schema=1, site=SITE, node=node, seq=seq, ts=T0 + timedelta(minutes=seq), period_s=60,
        metrics=metrics, flags=flags,
    )  # fmt: skip


def _air(pm25: float | None, pm10: float, rh: float = 55.0) -> dict[Metric, MetricValue]:
    return {
        Metric.PM2_5: MetricValue(
            pm25, 60 if pm25 is not None else 0, 0.0 if pm25 is None else pm25 * 1.25, CAL
        ),
        Metric.PM10: MetricValue(pm10, 60, pm10 * 1.3),
        Metric.RH: MetricValue(rh, 60, rh),
        Metric.AIR_TEMP: MetricValue(-12.4, 60, -12.4),
        Metric.PRESSURE: MetricValue(868.25, 60, 868.25),
    }


READINGS = [
    _reading("haul-road", 1, _air(14.2, 30.5), [Flag.WARMING_UP]),
    _reading("haul-road", 2, _air(15.125, 31.0), []),
    _reading("haul-road", 3, _air(None, 29.75), [Flag.SENSOR_FAULT]),
    _reading("haul-road", 4, _air(41.0, 80.2, rh=93.0), [Flag.HIGH_HUMIDITY]),
    _reading("haul-road", 5, _air(16.0, 32.0), [Flag.CAL_FALLBACK]),
    _reading("haul-road", 6, _air(17.5, 33.0), [Flag.CLOCK_UNSYNCED, Flag.OUT_OF_RANGE]),
    _reading("haul-road", 7, _air(18.0, 34.0), [Flag.CAL_EXPIRED]),
    # no flag, but the window was being cleaned: the visit below marks these two
    _reading("haul-road", 8, _air(19.0, 35.0), []),
    _reading("haul-road", 9, _air(19.5, 36.0), []),
    # a water node: no AQS code for turbidity, so it is in none of these files
    _reading("river-down", 1, {Metric.TURBIDITY: MetricValue(12.5, 30, 0.61)}, []),
]


CLEANING = Visit(
    site=SITE,
    node="haul-road",
    kind="cleaned",
    at=T0 + timedelta(minutes=10),
    by="Bold",
    note="inlet cleaned",
    flag_from=T0 + timedelta(minutes=7, seconds=30),  # (flag_from, flag_to]: seq 8 and seq 9
    flag_to=T0 + timedelta(minutes=9),
    recorded=T0 + timedelta(minutes=11),
)
MARKED_SEQS = (8, 9)


def store(influx: Influx) -> None:
    influx.write([to_line(r) for r in READINGS] + [CLEANING.to_line()])


def config(path: Path, influx: Influx, extra: str = "") -> Path:
    path.write_text(
        f'[influxdb]\nurl = "{influx.url}"\napi = "v1"\ndatabase = "{influx.db}"\n'
        '[report]\noperator = "Tsagaan community council"\n'
        f'[[report.nodes]]\nsite = "{SITE}"\nnode = "haul-road"\nlat = 43.5712345\nlon = 104.4256789\n'
        '[exports]\ndata_steward_name = "TsagaanCommunity"\nutc_offset = "+08:00"\ncountry = "MN"\n'
        'city = "Tsogttsetsii"\nattribution_url = "https://example.org/tsagaan"\n'
        f'[[exports.nodes]]\nsite = "{SITE}"\nnode = "haul-road"\naqs_site = "496000000001"\n'
        "elevation_m = 1480.5\n"
        f'[[community_maps]]\nsite = "{SITE}"\nnode = "haul-road"\nservice = "openaq"\n'
        'consent = "B. Bold for the council, meeting of 2026-10-20"\n' + extra
    )
    return path
