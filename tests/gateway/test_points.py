"""The gateway's own line-protocol formatter must write the point influxdb-client's Point writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contract.flags import Flag
from contract.metrics import PHYSICAL_RANGE, Metric
from contract.wire import MetricValue, ReadingPayload
from gateway.points import reading_point, to_line


@st.composite
def readings(draw: st.DrawFn) -> ReadingPayload:
    metrics = {}
    for metric in draw(st.sets(st.sampled_from(list(Metric)), min_size=1)):
        low, high = PHYSICAL_RANGE[metric]
        metrics[metric] = MetricValue(
            value=draw(st.none() | st.floats(low, high) | st.integers(int(low), int(high)).map(float)),
            raw=draw(st.none() | st.floats(allow_nan=False, allow_infinity=False)),
            n=draw(st.integers(0, 1_000_000)),
            cal=draw(st.none() | st.from_regex(r'\A[a-z0-9][a-z0-9"\\@.,=-]{0,29}\Z')),
        )
    ms = draw(st.integers(946_684_800_000, 4_102_444_800_000))
    return ReadingPayload(
        schema=1,
        site=draw(st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,31}\Z")),
        node=draw(st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,31}\Z")),
        seq=draw(st.integers(1, 2**53)),
        ts=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms),
        period_s=60,
        metrics=metrics,
        flags=draw(st.lists(st.sampled_from(list(Flag)), unique=True)),
        **draw(
            st.none().map(lambda _: {})
            | st.fixed_dictionaries(
                {
                    "kid": st.from_regex(r"\A[0-9a-f]{16}\Z"),
                    "sig": st.from_regex(r"\A[A-Za-z0-9+/]{86}==\Z"),
                }
            )
        ),
    )


_LINE = re.compile(r"\A(reading),node=(\S+),site=(\S+) (.+) (\d+)\Z")
_FIELD = re.compile(r'([a-z0-9_]+)=("(?:[^"\\]|\\.)*"|[^,"]+)(?:,|\Z)')


def parsed(line: str) -> tuple[Any, ...]:
    """What InfluxDB reads from one of our lines: measurement, tags, typed fields, time."""
    match = _LINE.match(line)
    assert match, line
    measurement, node, site, text, ts = match.groups()
    fields: dict[str, Any] = {}
    end = 0
    for field in _FIELD.finditer(text):
        assert field.start() == end, (text, end)  # every character belongs to a field
        end = field.end()
        key, value = field.groups()
        assert key not in fields, key
        if value.startswith('"'):
            fields[key] = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif value in ("true", "false"):
            fields[key] = value == "true"
        elif value.endswith("i"):
            fields[key] = ("int", int(value[:-1]))
        else:
            fields[key] = float(value)
    assert end == len(text), text
    return measurement, node, site, fields, int(ts)


@given(readings())
def test_to_line_writes_the_point_influxdb_client_writes(reading: ReadingPayload) -> None:
    ours, theirs = parsed(to_line(reading)), parsed(reading_point(reading).to_line_protocol())
    exact_ms = (reading.ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert ours[-1] == exact_ms
    # Point computes int(nanoseconds / 1e6) in floating point, which truncates some times to 1 ms
    # early (2015-08-26T17:00:01.938Z becomes ...937); ours is exact. Nothing else may differ.
    assert theirs[-1] in (exact_ms, exact_ms - 1)
    assert ours[:-1] == theirs[:-1]


def test_every_field_a_reading_can_have_is_written() -> None:
    every = ReadingPayload(
        schema=1,
        site="s",
        node="n",
        seq=1,
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        period_s=60,
        metrics={m: MetricValue(value=PHYSICAL_RANGE[m][0] + 1.5, raw=2.0, n=3, cal="c") for m in Metric},
        flags=[Flag.WARMING_UP],
        kid="0123456789abcdef",
        sig="A" * 86 + "==",
    )
    fields = parsed(to_line(every))[3]
    assert len(fields) == 4 * len(Metric) + 6
    assert fields["pm2_5"] == 1.5 and fields["pm2_5_raw"] == 2.0 and fields["pm2_5_n"] == ("int", 3)
    assert fields["signed"] is True and fields["period_s"] == ("int", 60)
    assert parsed(to_line(every)) == parsed(reading_point(every).to_line_protocol())
    # the gateway's own time of storing: an integer field the node does not sign
    at = datetime(2026, 1, 1, 0, 0, 2, 345000, tzinfo=UTC)
    stored = parsed(to_line(every, received=at))
    assert stored[3]["received"] == ("int", 1767225602345)
    assert stored == parsed(reading_point(every, received=at).to_line_protocol())


def test_time_is_exact_where_float_division_would_truncate() -> None:
    reading = ReadingPayload(
        schema=1,
        site="s",
        node="n",
        seq=1,
        ts=datetime(2015, 8, 26, 17, 0, 1, 938000, tzinfo=UTC),
        period_s=60,
        metrics={Metric.PM2_5: MetricValue(value=1.0, n=1)},
    )
    assert to_line(reading).endswith(" 1440608401938")


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)


@given(
    st.dictionaries(_text, _text, max_size=4),
    st.dictionaries(
        _text,
        st.none()
        | st.booleans()
        | st.integers(-(2**62), 2**62)
        | st.floats(allow_nan=False, allow_infinity=False)
        | _text,
        min_size=1,
        max_size=6,
    ).filter(lambda f: any(v is not None for v in f.values())),
    st.integers(946_684_800_000, 4_102_444_800_000),
)
def test_format_line_writes_what_influxdb_client_writes(
    tags: dict[str, str], fields: dict[str, object], ms: int
) -> None:
    from influxdb_client.client.write.point import Point
    from influxdb_client.domain.write_precision import WritePrecision

    from gateway.points import format_line

    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    point = Point("node_status")
    for key, value in tags.items():
        point.tag(key, value)
    for key, value in fields.items():
        point.field(key, value)
    expected = point.time(at, WritePrecision.MS).to_line_protocol()
    ours = format_line("node_status", tags, fields, at)  # type: ignore[arg-type]
    # Point computes the timestamp by float division and is sometimes 1 ms early; ours is exact.
    assert ours.rsplit(" ", 1)[0] == expected.rsplit(" ", 1)[0]
    assert ours.rsplit(" ", 1)[1] == str(ms)
