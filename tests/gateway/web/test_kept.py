"""The latest readings kept as the gateway stores them (issue 24): what the reader would answer,
without asking the database on every page, and still right for a node silent for months."""

from __future__ import annotations

from datetime import timedelta

from contract.flags import Flag
from gateway.points import to_line
from gateway.stores.reader import Reader
from gateway.web.kept import HourlyMeans, KeptLatest
from tests.alert_helpers import T0, reading
from tests.helpers import Influx

NOW = T0 + timedelta(days=1)


def test_kept_latest_answers_as_the_database_does_and_sees_each_stored_reading(
    influx: Influx, reader: Reader
) -> None:
    stored = [
        reading("quiet", NOW - timedelta(days=90), 4.0),
        reading("busy", NOW - timedelta(minutes=2), 7.0, flags=(Flag.WARMING_UP,)),
    ]
    influx.write([to_line(r) for r in stored])
    clock = [0.0]
    kept = KeptLatest(reader, refresh_s=60, monotonic=lambda: clock[0])
    assert kept.latest(NOW) == reader.latest(NOW)  # filled from the database, silent node and all
    assert [x.node for x in kept.latest(NOW)] == ["busy", "quiet"]
    new = reading("busy", NOW - timedelta(minutes=1), 9.0)
    kept.on_stored([new])  # the gateway's hook: no database involved
    (busy,) = kept.latest(NOW, node="busy")
    assert (busy.time, busy.values, busy.flags) == (new.ts, {"pm2_5": 9.0}, [])
    kept.on_stored([reading("busy", NOW - timedelta(minutes=5), 1.0)])  # an older one, late
    assert kept.latest(NOW, node="busy")[0].values == {"pm2_5": 9.0}
    influx.write([to_line(new)])
    assert kept.latest(NOW) == reader.latest(NOW)
    # a reading after `now` (a page for a past moment): the database says what was last then
    kept.on_stored([reading("quiet", NOW + timedelta(minutes=1), 5.0)])
    assert kept.latest(NOW, node="quiet")[0].time == NOW - timedelta(days=90)
    # another program stored a reading: seen at the next refresh
    influx.write([to_line(reading("other", NOW - timedelta(minutes=3), 2.0, site="pit"))])
    assert [x.site for x in kept.latest(NOW + timedelta(minutes=2))] == ["tsagaan", "tsagaan"]
    before = kept.latest(NOW + timedelta(minutes=2))
    clock[0] = 61.0
    after = kept.latest(NOW + timedelta(minutes=2))
    assert [x.node for x in after] == ["other", "busy", "quiet"]
    # the nodes the database answered as they were kept are the same objects (the API's and the
    # overview's kept entries are made again only for a new one, gateway/web/entries.py)
    assert after[1] is before[0] and after[2] is before[1]


def test_hourly_means_are_asked_for_once_an_hour_per_node_and_again_after_max_age() -> None:
    asked: list[list[tuple[str, str]]] = []

    def fetch(keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[float | None]]:
        asked.append(keys)
        return {k: [float(len(asked))] for k in keys if k[1] != "none"}

    clock = [0.0]
    cache = HourlyMeans(max_age_s=300, monotonic=lambda: clock[0])
    a, b, none = ("s", "a"), ("s", "b"), ("s", "none")
    assert cache.get(fetch, NOW, [a, none]) == {a: [1.0]}
    assert cache.get(fetch, NOW, [a, b, none]) == {a: [1.0], b: [2.0]}  # only b was missing
    assert asked == [[a, none], [b]]
    assert cache.get(fetch, NOW + timedelta(hours=1), [a]) == {a: [3.0]}  # the hour turned
    clock[0] = 301.0
    assert cache.get(fetch, NOW + timedelta(hours=1), [a]) == {a: [4.0]}  # kept at most 5 minutes
