"""The dashboard reads periods as [start, end), as docs/api.md says and it always has, although the
reader's rule is (start, end]: a point stamped exactly on an edge is where the API promised."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import InfluxConfig
from gateway.stores import Reader, open_reader
from gateway.web.views import half_open
from tests.helpers import Influx

H = datetime(2026, 11, 22, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


@pytest.fixture
def reader(influx: Influx) -> Iterator[Reader]:
    """Readings and alerts stamped exactly on whole hours."""
    influx.write(
        [
            f'reading,site=s,node=n seq={i + 1}i,pm2_5={10.0 * (i + 1)},flags="" {_ms(H + i * HOUR)}'
            for i in range(3)
        ]
        + [
            f'alert,site=s,node=n,rule=r,metric=pm2_5 state="raised",value={v},limit=50 {_ms(t)}'
            for v, t in ((60, H), (70, H + HOUR))
        ]
    )
    r = open_reader(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    yield r
    r.close()


def test_alerts_and_downloads_hold_start_and_leave_out_end(reader: Reader) -> None:
    alerts = reader.alerts(*half_open(H, H + HOUR))
    assert [a.value for a in alerts] == [60.0]
    rows = list(reader.csv_rows(*half_open(H, H + 2 * HOUR), site="s"))
    assert [r["seq"] for r in rows] == [1, 2]


def test_hourly_means_put_a_reading_on_the_hour_in_the_hour_it_starts(reader: Reader) -> None:
    # the hours [H, H+1h), [H+1h, H+2h), [H+2h, H+3h) ending at H + 3h: one reading each
    means = reader.hourly_means(
        "pm2_5", H + 3 * HOUR - timedelta(milliseconds=1), 3, align=-timedelta(milliseconds=1)
    )
    assert means[("s", "n")] == [30.0, 20.0, 10.0]
    # in the reader's own terms (b, b + 1h] the reading at H + 2h ends the second hour instead
    assert reader.hourly_means("pm2_5", H + 2 * HOUR, 2)[("s", "n")] == [30.0, 20.0]
