"""Turns a validated reading into an InfluxDB point of measurement `reading` (docs/protocol.md).

Tags are only `site` and `node` and the timestamp is the reading's `ts`, so a redelivered reading
lands on the same series and time and InfluxDB keeps one point. Floats are always written as floats
(a JSON `12` must not create an integer field that later conflicts with `12.5`).
"""

from __future__ import annotations

from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from gateway.schema import ReadingPayload

MEASUREMENT = "reading"


def reading_point(reading: ReadingPayload) -> Point:
    point = Point(MEASUREMENT).tag("site", reading.site).tag("node", reading.node)
    for metric, mv in sorted(reading.metrics.items()):
        name = metric.value
        if mv.value is not None:  # a failed sensor has no value field; its flags say why
            point.field(name, float(mv.value))
        if mv.raw is not None:
            point.field(f"{name}_raw", float(mv.raw))
        point.field(f"{name}_n", int(mv.n))
        if mv.cal is not None:
            point.field(f"{name}_cal", mv.cal)
    point.field("seq", int(reading.seq))
    point.field("flags", ",".join(f.value for f in reading.flags))
    if reading.sig is not None and reading.kid is not None:
        # Everything the signature covers is kept (period_s too), so the row alone can be re-verified.
        point.field("signed", True).field("sig", reading.sig).field("kid", reading.kid)
        point.field("period_s", int(reading.period_s))
    return point.time(reading.ts, WritePrecision.MS)


def to_line(reading: ReadingPayload) -> str:
    line: str = reading_point(reading).to_line_protocol()
    return line
