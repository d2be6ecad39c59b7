"""The FROST project's Python client (frost-sta-client, written by nobody here) reads a real gateway:
Things with their Locations, Datastreams, and filtered, paged Observations whose values are the
ones InfluxDB holds, read back with plain InfluxQL over urllib (tests/helpers.py)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import frost_sta_client as fsc

from tests.gateway.web.sta.conftest import NOW, START, WEB, StaSite


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_things_carry_their_location_and_the_open_data_licence(sta_site: StaSite) -> None:
    service = fsc.SensorThingsService(sta_site.url)
    things = {t.id: t for t in service.things().query().expand("Locations").list()}
    assert set(things) == {"tsagaan.haul-road", "tsagaan.river-down"}
    for thing in things.values():
        assert thing.properties["license"] == {"name": WEB.licence, "url": WEB.licence_url}
        assert thing.properties["attribution"] == WEB.attribution
    haul = things["tsagaan.haul-road"]
    (location,) = haul.locations
    assert list(location.location["coordinates"]) == [106.8503, 43.1105]
    assert len(things["tsagaan.river-down"].locations.entities) == 0  # it never sent a position


def test_datastreams_have_ucum_units_and_the_calibration_in_force(sta_site: StaSite) -> None:
    service = fsc.SensorThingsService(sta_site.url)
    thing = service.things().find("tsagaan.haul-road")
    streams = {d.id: d for d in thing.get_datastreams().query().list()}
    assert set(streams) == {"tsagaan.haul-road.pm2_5", "tsagaan.haul-road.rh"}
    pm = streams["tsagaan.haul-road.pm2_5"]
    assert pm.unit_of_measurement.symbol == "ug/m3"
    assert streams["tsagaan.haul-road.rh"].unit_of_measurement.symbol == "%"
    assert list(pm.observed_area["coordinates"]) == [106.8503, 43.1105]
    sensor = service.sensors().find("tsagaan.haul-road.pm2_5")
    assert sensor.properties["calibration"] == "epa-us-2021"
    assert sensor.properties["model"].startswith("Plantower PMS5003")
    river = service.sensors().find("tsagaan.river-down.turbidity")
    assert river.properties["model"].startswith("DFRobot SEN0189")


def test_filtered_paged_observations_equal_what_influxdb_holds(sta_site: StaSite) -> None:
    service = fsc.SensorThingsService(sta_site.url)
    ds = service.datastreams().find("tsagaan.haul-road.pm2_5")
    since = START + timedelta(hours=2)
    until = NOW - timedelta(hours=3)
    text = (
        f"phenomenonTime gt {since:%Y-%m-%dT%H:%M:%SZ} and phenomenonTime le {until:%Y-%m-%dT%H:%M:%SZ} "
        "and result ge 40"
    )
    pages = ds.get_observations().query().filter(text).orderby("phenomenonTime", "ASC").top(7).list()
    seen = [(_ms(o.phenomenon_time), o.result) for o in pages]  # the client follows @iot.nextLink
    stored = sta_site.db.rows(
        'SELECT "pm2_5" FROM "reading" WHERE "node" = \'haul-road\' AND "pm2_5" >= 40 '
        f"AND time > {int(since.timestamp() * 1000)}ms AND time <= {int(until.timestamp() * 1000)}ms"
    )
    assert len(stored) > 14  # more than two pages of 7
    assert seen == [(int(r["time"]), float(r["pm2_5"])) for r in stored]


def test_time_ranges_joined_by_or_and_negations_are_answered_exactly(sta_site: StaSite) -> None:
    """InfluxDB 1.x answers `time < a OR time > b` with nothing: the reader cuts the period instead."""
    service = fsc.SensorThingsService(sta_site.url)
    ds = service.datastreams().find("tsagaan.haul-road.pm2_5")
    a, b = START + timedelta(hours=3), NOW - timedelta(hours=2)
    text = (
        f"(phenomenonTime lt {a:%Y-%m-%dT%H:%M:%SZ} or phenomenonTime ge {b:%Y-%m-%dT%H:%M:%SZ}) "
        "and not (result gt 60 or result lt 20)"
    )
    newest = ds.get_observations().query().filter(text).orderby("phenomenonTime", "DESC").top(5).list()
    seen = [(_ms(o.phenomenon_time), o.result) for o in newest]
    rows = sta_site.db.rows('SELECT "pm2_5" FROM "reading" WHERE "node" = \'haul-road\'')
    a_ms, b_ms = (int(t.timestamp() * 1000) for t in (a, b))
    expected = [
        (int(r["time"]), float(r["pm2_5"]))
        for r in reversed(rows)
        if r["pm2_5"] is not None and (r["time"] < a_ms or r["time"] >= b_ms) and 20 <= r["pm2_5"] <= 60
    ]
    assert len(expected) > 5
    assert seen == expected


def test_flags_raw_and_a_signature_anyone_can_check(sta_site: StaSite) -> None:
    service = fsc.SensorThingsService(sta_site.url)
    ds = service.datastreams().find("tsagaan.haul-road.pm2_5")
    first = ds.get_observations().query().top(18).list().entities
    assert first[0].result_quality == {"flags": ["warming_up"], "maintenance": []}
    assert first[17].result is None
    assert first[17].result_quality == {"flags": ["sensor_fault"], "maintenance": []}
    assert first[3].parameters["raw"] == 4.0 and first[3].parameters["seq"] == 4
    assert first[3].parameters["cal"] == "epa-us-2021" and first[3].parameters["signed"] is False
    (one,) = ds.get_observations().query().expand("FeatureOfInterest,Datastream").top(1).list().entities
    assert list(one.feature_of_interest.feature["coordinates"]) == [106.8503, 43.1105]
    assert one.datastream.id == "tsagaan.haul-road.pm2_5"
    water = service.features_of_interest().find("tsagaan.river-down.turbidity")
    assert water.name == "Water at river-down" and water.feature is None  # no position sent
    river = service.datastreams().find("tsagaan.river-down.turbidity")
    obs = river.get_observations().query().top(3).list().entities
    public = sta_site.signer.private.public_key()
    for o in obs:
        p = o.parameters
        assert p["signed"] is True and p["kid"] == sta_site.signer.kid
        public.verify(base64.b64decode(p["sig"]), p["signed_text"].encode("utf-8"))  # raises if not
        assert json.loads(p["signed_text"])["metrics"]["turbidity"]["value"] == o.result


def test_count_and_next_link_page_through_everything(sta_site: StaSite) -> None:
    status, doc = sta_site.get("/Datastreams('tsagaan.haul-road.rh')/Observations", "?$count=true&$top=1000")
    assert status == 200 and doc["@iot.count"] == len(doc["value"]) == 144
    assert "@iot.nextLink" not in doc
    rh = "/Datastreams('tsagaan.haul-road.rh')/Observations"
    assert "@iot.nextLink" not in sta_site.get(rh, "?$top=144")[1]  # a last page that is exactly full
    assert "@iot.nextLink" in sta_site.get(rh, "?$top=143")[1]
    assert sta_site.get(rh, "?$top=0&$count=true")[1] == {"@iot.count": 144, "value": []}
    status, doc = sta_site.get("/Datastreams('tsagaan.haul-road.rh')/Observations", "?$top=5000")
    assert status == 200 and len(doc["value"]) == 144  # capped at 1000, and there are only 144
    status, doc = sta_site.get("/Observations", "?$skip=140&$top=10&$count=true")
    assert status == 200 and doc["@iot.count"] == 3 * 144
    ids = [o["@iot.id"].rsplit(".", 1)[0] for o in doc["value"]]
    assert ids == ["tsagaan.haul-road.pm2_5"] * 4 + ["tsagaan.haul-road.rh"] * 6
    assert "$skip=150" in doc["@iot.nextLink"].replace("%24", "$")


def test_a_things_maintenance_visits_are_its_history(sta_site: StaSite) -> None:
    service = fsc.SensorThingsService(sta_site.url)
    things = {t.id: t for t in service.things().query().list()}
    assert things["tsagaan.haul-road"].properties["maintenance"] == []
    assert things["tsagaan.river-down"].properties["maintenance"] == [
        {
            "kind": "cleaned",
            "at": "2026-11-22T06:00:00Z",
            "by": "Bold",
            "note": "window wiped",
            "flag_from": "2026-11-22T05:55:00Z",
            "flag_to": "2026-11-22T06:05:00Z",
            "recorded": "2026-11-22T07:00:00Z",
        }
    ]


def test_the_readings_a_visit_marks_carry_its_kind_in_their_result_quality(sta_site: StaSite) -> None:
    """The visit's window (05:55, 06:05] holds two of river-down's readings: their Observations say
    `cleaned`, every other one (and haul-road's at the same times) says nothing; the values stand."""
    service = fsc.SensorThingsService(sta_site.url)
    river = service.datastreams().find("tsagaan.river-down.turbidity")
    every = river.get_observations().query().top(1000).list().entities
    assert len(every) == 144
    six, five_past = _ms("2026-11-22T06:00:00Z"), _ms("2026-11-22T06:05:00Z")
    marked = {_ms(o.phenomenon_time): o for o in every if o.result_quality["maintenance"]}
    assert sorted(marked) == [six, five_past]
    assert all(o.result_quality == {"flags": [], "maintenance": ["cleaned"]} for o in marked.values())
    assert all(o.result_quality["maintenance"] == [] for o in every if _ms(o.phenomenon_time) not in marked)
    stored = sta_site.db.rows(
        'SELECT "turbidity" FROM "reading" WHERE "node" = \'river-down\' AND time = \'2026-11-22T06:00:00Z\''
    )
    assert marked[six].result == float(stored[0]["turbidity"])  # flagged, not changed
    one = service.observations().find(f"tsagaan.river-down.turbidity.{five_past}")
    assert one.result_quality["maintenance"] == ["cleaned"]
    haul = service.datastreams().find("tsagaan.haul-road.pm2_5")
    text = "phenomenonTime ge 2026-11-22T05:55:00Z and phenomenonTime le 2026-11-22T06:05:00Z"
    beside = haul.get_observations().query().filter(text).list().entities
    assert len(beside) == 3 and all(o.result_quality["maintenance"] == [] for o in beside)
