"""The latest-reading table the running gateway keeps in `latest.sqlite` and the dashboard's table
follows by change number (issue 24), through real Mosquitto and influxd: it lists a node silent for
months, a late reading does not hide a newer one, a refresh reads only what changed, and it survives
a restart of either side."""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway import devservices
from gateway.latest import FILE, LatestFile, LatestFollower
from gateway.points import to_line
from gateway.stores.reader import Reader
from gateway.web.kept import KeptLatest
from tests.alert_helpers import reading
from tests.helpers import (
    Influx,
    gateway_toml,
    pm25_message,
    publish_many,
    spawn,
    wait_for,
    wait_gateway_ready,
)


def _start(
    cfg: Path, workdir: Path, mosquitto: devservices.Service, influx: Influx
) -> subprocess.Popen[bytes]:
    gateway = spawn(["gateway.cli", "run", "--config", str(cfg)], workdir / "gateway.log")
    wait_gateway_ready(mosquitto.port, "tsagaan", influx)
    return gateway


def _stop(gateway: subprocess.Popen[bytes]) -> None:
    if gateway.poll() is None:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(20)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait(10)


def test_the_gateway_keeps_the_latest_readings_and_the_dashboard_follows_only_the_changes(
    mosquitto: devservices.Service, influx: Influx, workdir: Path, reader: Reader
) -> None:
    cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix="tsagaan",
    )
    now = datetime.now(UTC).replace(microsecond=0)
    # stored before the gateway (and its file) existed: silent for 90 days
    influx.write([to_line(reading("quiet", now - timedelta(days=90), 4.0))])
    path = workdir / "gateway-data" / FILE
    gateway = _start(cfg, workdir, mosquitto, influx)
    try:
        follower = LatestFollower(path)
        kept = KeptLatest(reader, follow=follower, refresh_s=3600)
        wait_for(lambda: path.exists(), 30, "latest.sqlite")

        def nodes() -> list[str]:
            kept.refresh(now)
            return [x.node for x in kept.latest(now + timedelta(minutes=5))]

        wait_for(lambda: nodes() == ["probe", "quiet"], 30, "the silent node from the database")
        publish_many(
            mosquitto.port,
            [
                pm25_message("busy", 1, now - timedelta(minutes=2), 7.0),
                pm25_message("busy", 2, now - timedelta(minutes=1), 9.0),
            ],
        )
        wait_for(lambda: "busy" in nodes(), 20, "busy listed")

        def busy_seq() -> int | None:
            kept.refresh(now)
            return kept.latest(now, site="tsagaan", node="busy")[0].seq

        wait_for(lambda: busy_seq() == 2, 30, "busy's newest reading")
        # a late reading (a backlog) is stored but does not hide the newer one
        publish_many(mosquitto.port, [pm25_message("busy", 3, now - timedelta(minutes=30), 1.0)])
        count = 'SELECT count("seq") FROM "reading" WHERE "node" = \'busy\''
        wait_for(lambda: (influx.rows(count) or [{"count": 0}])[0]["count"] == 3, 20, "the late one stored")
        kept.refresh(now)
        (busy,) = kept.latest(now, site="tsagaan", node="busy")
        assert (busy.seq, busy.values) == (2, {"pm2_5": 9.0})
        assert kept.latest(now) == reader.latest(now)  # what the database answers, from memory
        # a refresh reads the rows that changed, not the fleet
        changes = follower.read()
        assert changes is not None and (changes.rows, changes.whole) == ([], False)
        publish_many(mosquitto.port, [pm25_message("other", 1, now, 2.0)])
        got: list[str] = []

        def changed() -> bool:
            c = follower.read()
            got.extend(x.node for x in (c.rows if c is not None else []))
            return bool(got)

        wait_for(changed, 20, "the change")
        assert got == ["other"]
        _stop(gateway)
        # a restart of the gateway: the table and its change numbers go on
        gateway = _start(cfg, workdir, mosquitto, influx)
        publish_many(mosquitto.port, [pm25_message("busy", 4, now + timedelta(seconds=30), 11.0)])
        latest = wait_for(lambda: LatestFollower(path).read(), 30, "the file")
        wait_for(
            lambda: any((x.node, x.seq) == ("busy", 4) for x in (LatestFollower(path).read() or latest).rows),
            20,
            "busy again",
        )
        got.clear()
        changed()
        assert "busy" in got  # the same follower goes on across the gateway's restart
        # a restart of the dashboard: a new table reads the file whole, the silent node with it
        again = KeptLatest(reader, follow=LatestFollower(path), refresh_s=3600)
        later = now + timedelta(minutes=1)
        assert [x.node for x in again.latest(later)] == ["probe", "busy", "other", "quiet"]
        assert again.latest(later, site="tsagaan", node="busy")[0].values == {"pm2_5": 11.0}
        assert [(x.node, x.time) for x in again.latest(later) if x.node != "probe"] == [
            (x.node, x.time) for x in reader.latest(later) if x.node != "probe"
        ]
    finally:
        _stop(gateway)


def test_a_new_file_is_read_whole_and_a_missing_one_means_the_database(
    influx: Influx, reader: Reader, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    influx.write([to_line(reading("a", now - timedelta(minutes=1), 3.0))])
    path = tmp_path / FILE
    follower = LatestFollower(path)
    assert follower.read() is None
    kept = KeptLatest(reader, follow=follower, refresh_s=3600)
    assert [x.node for x in kept.latest(now)] == ["a"]  # no file: from the database
    first = LatestFile(path)
    first.seed(reader, now)
    first.close()
    assert [x.node for x in (follower.read() or pytest.fail("no file")).rows] == ["a"]
    path.unlink()
    Path(f"{path}-wal").unlink(missing_ok=True)
    Path(f"{path}-shm").unlink(missing_ok=True)
    second = LatestFile(path)  # a new file: a new generation, its change numbers start again
    second.on_stored([reading("b", now, 5.0)])
    second.close()
    changes = follower.read()
    assert changes is not None and changes.whole and [x.node for x in changes.rows] == ["b"]
