"""A node's reading interval inferred from its readings' times and seq (gateway/dataset.py): what
`export` uses for rows without `period_s`, and the forwarder's estimate for unsigned rows an
earlier version stored without it (docs/protocol.md, `period_unknown`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import InfluxConfig
from gateway.dataset import CLOCK_FIRST, DEFAULT_INTERVAL_S, inferred_interval_s, interval_s
from gateway.stores import open_reader
from gateway.stores.reader import CLOCK_READINGS
from tests.helpers import Influx


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        ([(0, 1), (60_000, 2), (120_000, 3)], 60),
        ([(0, 1), (180_000, 4), (240_000, 5)], 60),  # two readings missing: Δseq says so
        ([(0, 10), (10_000, 11), (20_000, 12), (3_600_000, 13)], 10),  # a long gap is one step of many
        ([(0, 1)], DEFAULT_INTERVAL_S),  # one reading: nothing to infer from
        ([(0, 5), (60_000, 5)], DEFAULT_INTERVAL_S),  # the same seq again (a node restarted)
        ([(0, 1), (400, 2)], 1),  # never below a second
    ],
)
def test_a_nodes_interval_is_inferred_from_times_and_seq(clock: list[tuple[int, int]], expected: int) -> None:
    assert inferred_interval_s(clock) == expected


def test_the_interval_from_the_first_days_or_the_whole_period(influx: Influx) -> None:
    """`interval_s` asks the period's first two days first (over a year the database's plan of the
    whole is slow) and the whole period only when those hold too few readings: either way the
    node's first readings, as one query over the whole period finds them."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    lines = []
    for i in range(1, 3001):  # node "a" reads every minute, without `period_s`: inferred
        lines.append(
            f"reading,node=a,site=s pm2_5=1,seq={i}i {int((start + timedelta(minutes=i)).timestamp() * 1000)}"
        )
    for i in range(1, 200):  # node "b" every hour, with `period_s`, a stretch at 600 s after day 3
        period = 600 if 80 < i < 120 else 3600
        ts = int((start + timedelta(hours=i)).timestamp() * 1000)
        lines.append(f"reading,node=b,site=s pm2_5=1,seq={i}i,period_s={period}i {ts}")
    influx.write(lines)
    reader = open_reader(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    end = start + timedelta(days=30)
    for node, expected in (("a", 60), ("b", 3600)):
        whole = reader.reading_clock("s", node, start, end)
        assert interval_s(reader, "s", node, start, end) == expected
        assert len(whole) == min(CLOCK_READINGS, 3000 if node == "a" else 199)
        first = reader.reading_clock("s", node, start, start + CLOCK_FIRST)
        assert whole[: len(first)] == first and (node == "a") == (len(first) == CLOCK_READINGS)
    reader.close()
