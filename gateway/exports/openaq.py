"""OpenAQ's upload CSV (openaq/openaq-data-format `upload/README.md`, the format of the OpenAQ Data
Upload Tool). OpenAQ documents no push API for community data: it pulls from providers, and takes
files through that tool; this is the file. Columns in the README's order. OpenAQ accepts `pm25` and
`pm10` in µg/m³ (of ours), times are the end of the averaging window ("averages are always
backward looking"), and the format has no quality field: so only values AQDx would call valid or
estimated are written (gateway/exports/quality.py). Only nodes whose consent to OpenAQ is recorded
in `[[community_maps]]` (service = "openaq") are exported."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from contract.metrics import Metric
from gateway.exports import quality
from gateway.exports.cells import window
from gateway.exports.registry import Context, register
from gateway.timerange import QueryArgumentError

PARAMETERS = {Metric.PM2_5: "pm25", Metric.PM10: "pm10"}
PUBLISHABLE = frozenset({quality.VALID, quality.ESTIMATED})


def _utc(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _period(duration_s: int) -> tuple[str, str]:
    """`averagingPeriod_value` and `_unit`: whole hours as hours, anything shorter in minutes."""
    if duration_s % 3600 == 0:
        return str(duration_s // 3600), "hours"
    return (str(duration_s // 60) if duration_s % 60 == 0 else f"{duration_s / 60:.3f}"), "minutes"


@register
class OpenAq:
    name = "openaq"
    title = "OpenAQ upload CSV"
    columns: tuple[str, ...] = (
        "parameter",
        "location",
        "city",
        "country",
        "value",
        "unit",
        "date_utc",
        "date_local",
        "sourceType",
        "mobile",
        "coordinates_latitude",
        "coordinates_longitude",
        "attribution_name",
        "attribution_url",
        "averagingPeriod_value",
        "averagingPeriod_unit",
    )
    metrics: tuple[Metric, ...] = tuple(PARAMETERS)

    def check(self, ctx: Context, site: str, nodes: list[str]) -> None:
        for key, value in (
            ("exports.country", ctx.exports.country),
            ("exports.attribution_url", ctx.exports.attribution_url),
        ):
            if value is None:
                raise QueryArgumentError(
                    ctx.texts("exchange_cli.key_missing", config=ctx.config, setting=key, format=self.title)
                )
        consented = {n for service, s, n in ctx.consented if service == "openaq" and s == site}
        refused = [n for n in nodes if n not in consented]
        if refused or not consented:
            none = ctx.texts("exchange_cli.none_listed")
            raise QueryArgumentError(
                ctx.texts(
                    "exchange_cli.no_consent", config=ctx.config, site=site, nodes=", ".join(refused) or none
                )
            )
        unplaced = sorted(n for n in consented if ctx.place(site, n).lat is None)
        if unplaced:
            raise QueryArgumentError(
                ctx.texts(
                    "exchange_cli.no_coordinates",
                    config=ctx.config,
                    site=site,
                    nodes=", ".join(unplaced),
                    format=self.title,
                )
            )

    def rows(
        self, reading: dict[str, Any], metric: Metric, duration_s: int, ctx: Context
    ) -> Iterator[list[Any]]:
        if ("openaq", reading["site"], reading["node"]) not in ctx.consented:
            return
        value = reading[metric.value]
        q = quality.assess(metric, value, quality.parse_flags(reading["flags"]), bool(reading["maintenance"]))
        if q.validity not in PUBLISHABLE:
            return  # suspect or invalid, a visit's marked reading too: OpenAQ would show it as good
        _, end = window(reading, duration_s)
        place = ctx.place(reading["site"], reading["node"])
        yield [
            PARAMETERS[metric],
            f"{reading['site']} {reading['node']}",
            ctx.exports.city or "",
            ctx.exports.country,
            repr(float(value)),
            "µg/m³",
            _utc(end),
            end.astimezone(ctx.tz).isoformat(timespec="seconds"),
            ctx.exports.openaq_source_type,
            "false",
            repr(place.lat),
            repr(place.lon),
            ctx.attribution,
            ctx.exports.attribution_url,
            *_period(duration_s),
        ]
