"""AQCSV, the AirNow-I / AirNow-Tech exchange CSV (EPA AQS "AQCSV Format",
aqs.epa.gov/aqsweb/documents/AQCSV_Format.html). Twenty fields in their published positions, with
their names as a header row; one row per reading and metric. `datetime` is ISO 8601 basic
(YYYYMMDDThhmm+hhmm) at the start of the averaging window, `duration` in minutes. Parameter and
unit codes are the AQS ones AQDx also uses (gateway/exports/aqdx.py); `qc` and `qualifiers` come
from our flags (gateway/exports/quality.py). `data_status` is 0, preliminary: nothing here has
been certified final by an agency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from contract.metrics import Metric
from gateway.exports import quality
from gateway.exports.aqdx import PARAMETERS
from gateway.exports.cells import fixed, window
from gateway.exports.registry import Context, register
from gateway.timerange import QueryArgumentError

PRELIMINARY = 0


def minutes(duration_s: int) -> str:
    return str(duration_s // 60) if duration_s % 60 == 0 else f"{duration_s / 60:.3f}".rstrip("0")


@register
class Aqcsv:
    name = "aqcsv"
    title = "AQCSV (AirNow-I)"
    columns: tuple[str, ...] = (
        "site",
        "data_status",
        "action_code",
        "datetime",
        "parameter",
        "duration",
        "frequency",
        "value",
        "unit",
        "qc",
        "poc",
        "lat",
        "lon",
        "GISDatum",
        "elev",
        "method_code",
        "mpc",
        "mpc_value",
        "uncertainty",
        "qualifiers",
    )
    metrics: tuple[Metric, ...] = tuple(PARAMETERS)

    def check(self, ctx: Context, site: str, nodes: list[str]) -> None:
        """Every node asked for needs its site code; with no --node, the nodes listed are exported."""
        listed = {n.node for n in ctx.exports.nodes if n.site == site and n.aqs_site}
        missing = [n for n in nodes if n not in listed]
        if missing or not listed:
            raise QueryArgumentError(
                ctx.texts(
                    "exchange_cli.no_aqs_site",
                    config=ctx.config,
                    site=site,
                    nodes=", ".join(missing) or ctx.texts("exchange_cli.none_listed"),
                )
            )

    def rows(
        self, reading: dict[str, Any], metric: Metric, duration_s: int, ctx: Context
    ) -> Iterator[list[Any]]:
        place = ctx.place(reading["site"], reading["node"])
        if place.agency is None or place.agency.aqs_site is None:
            return  # a node without a site code (export of a whole site): `check` has said so
        param = PARAMETERS[metric]
        value = reading[metric.value]
        q = quality.assess(metric, value, quality.parse_flags(reading["flags"]), bool(reading["maintenance"]))
        start, _ = window(reading, duration_s)
        yield [
            place.agency.aqs_site,
            PRELIMINARY,
            "",  # action_code: always blank
            start.astimezone(ctx.tz).strftime("%Y%m%dT%H%M%z"),
            param.code,
            minutes(duration_s),
            "",  # frequency: blank for measurements repeated within the day
            fixed(value, 5),
            param.unit,
            q.qc,
            place.agency.poc,
            fixed(place.lat, 5),
            fixed(place.lon, 5),
            "WGS84" if place.lat is not None else "",
            fixed(place.agency.elevation_m, 2),
            "",  # method_code: no EPA method for a sensor without designation
            "",  # mpc, mpc_value: no method detection limit known
            "",
            "",  # uncertainty: not known at 95 % confidence
            " ".join(q.qualifiers),
        ]
