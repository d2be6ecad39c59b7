"""Turns a validated reading into an InfluxDB point of measurement `reading` (docs/protocol.md).

Tags are only `site` and `node` and the timestamp is the reading's `ts`, so a redelivered reading
lands on the same series and time and InfluxDB keeps one point. Floats are always written as floats
(a JSON `12` must not create an integer field that later conflicts with `12.5`).

`to_line` formats the line itself: profiling the gateway (docs/operations.md, "Ingest benchmark")
showed influxdb-client's `Point.to_line_protocol` taking about a third of the CPU per reading. Its
output is the point `reading_point(...).to_line_protocol()` gives (the same fields and values,
strings escaped the same way), which tests/gateway/test_points.py checks on generated readings. The tags
and field keys need no escaping: ids and metric names cannot contain `,`, `=`, space or `"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from contract.metrics import Metric
from contract.wire import ReadingPayload

if TYPE_CHECKING:
    from influxdb_client.client.write.point import Point

MEASUREMENT = "reading"


def reading_point(reading: ReadingPayload, received: datetime | None = None) -> Point:
    """The same point built with influxdb-client: the reference `to_line` is tested against.
    Imported here, not at the top: influxdb-client (and the numpy it pulls in when installed) costs
    the gateway tens of MB of memory it does not need with InfluxDB 1.x."""
    from influxdb_client.client.write.point import Point
    from influxdb_client.domain.write_precision import WritePrecision

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
        # Everything the signature covers is kept, so the row alone can be re-verified.
        point.field("signed", True).field("sig", reading.sig).field("kid", reading.kid)
    # Of every reading, signed or not: the row alone is then the whole reading (the hub's backfill
    # forwards it as sent). Earlier versions kept it for signed readings only.
    point.field("period_s", int(reading.period_s))
    if received is not None:
        point.field("received", epoch_ms(received))
    return point.time(reading.ts, WritePrecision.MS)


_ESCAPE_STRING = str.maketrans({'"': '\\"', "\\": "\\\\"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Each metric's field keys with their "=", made once: building them per reading (and reading an
# enum's `.value`) was half of to_line's time, which profiled as large as validating the payload.
_KEYS = {m: (f"{m.value}=", f"{m.value}_raw=", f"{m.value}_n=", f"{m.value}_cal=") for m in Metric}


def _float(value: float) -> str:
    text = str(float(value))
    return text[:-2] if text.endswith(".0") else text


def to_line(reading: ReadingPayload, received: datetime | None = None) -> str:
    """The reading as one line of line protocol, millisecond precision.

    `received` (the gateway's clock when it accepted the reading) is stored as the integer field
    `received`, epoch ms: the point's time is the node's signed `ts`, which a node (or a thief of
    its key) chooses, while this one only the gateway writes. A revoked key's readings are judged
    by it (docs/trust.md, "Revoking a node").

    The same point `reading_point` builds, written faster: fields in the reading's order rather than
    sorted (InfluxDB does not care), and floats as `repr` gives them (`6.0` where influxdb-client
    writes `6`: the same float). tests/gateway/test_points.py checks that InfluxDB reads the same point from
    both, on generated readings."""
    flags = reading.flags
    fields = [
        'flags="' + ",".join([f.value for f in flags]).translate(_ESCAPE_STRING) + '"'
        if flags
        else 'flags=""',
        f"seq={reading.seq}i",
    ]
    add = fields.append
    keys = _KEYS
    for metric, (value, n, raw, cal) in reading.metrics.items():
        k = keys[metric]
        if value is not None:  # a failed sensor has no value field; its flags say why
            add(f"{k[0]}{value!r}")
        if raw is not None:
            add(f"{k[1]}{raw!r}")
        add(f"{k[2]}{n}i")
        if cal is not None:
            add(k[3] + '"' + cal.translate(_ESCAPE_STRING) + '"')
    if reading.sig is not None and reading.kid is not None:  # as reading_point: signed rows
        add("signed=true")
        add('sig="' + reading.sig.translate(_ESCAPE_STRING) + '"')
        add('kid="' + reading.kid.translate(_ESCAPE_STRING) + '"')
    add(f"period_s={reading.period_s}i")  # as reading_point: every reading
    if received is not None:
        add(f"received={epoch_ms(received)}i")
    return f"{MEASUREMENT},node={reading.node},site={reading.site} {','.join(fields)} {epoch_ms(reading.ts)}"


# Tag keys and values, field keys: `,`, `=`, space and control characters are escaped exactly as
# influxdb-client escapes them (a backslash is left alone: line protocol reads it literally).
_ESCAPE_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n", "\t": "\\t", "\r": "\\r"})
_ESCAPE_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ ", "\n": "\\n", "\t": "\\t", "\r": "\\r"})


def _tag_value(value: str) -> str:
    text = value.translate(_ESCAPE_KEY)
    return text + " " if text.endswith("\\") else text  # a trailing backslash would escape the comma


FieldValue = bool | int | float | str | None


def epoch_ms(at: datetime) -> int:
    delta = at - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def format_line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], at: datetime
) -> str:
    """One line of line protocol (millisecond precision) for the gateway's other measurements
    (`node_status`, `alert`), written the way influxdb-client's Point writes it — tags and fields
    sorted, empty tags and None fields left out — without importing influxdb-client, which the
    gateway on InfluxDB 1.x does not otherwise need (it costs about 30 MB with numpy)."""
    tag_text = "".join(f",{k.translate(_ESCAPE_KEY)}={_tag_value(v)}" for k, v in sorted(tags.items()) if v)
    parts = []
    for key, value in sorted(fields.items()):
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = f"{value}i"
        elif isinstance(value, float):
            text = _float(value)
        else:
            text = '"' + value.translate(_ESCAPE_STRING) + '"'
        parts.append(f"{key.translate(_ESCAPE_KEY)}={text}")
    return f"{measurement.translate(_ESCAPE_MEASUREMENT)}{tag_text} {','.join(parts)} {epoch_ms(at)}"
