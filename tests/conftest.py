"""Session fixtures: a private Mosquitto and a private influxd, real processes on free loopback ports,
data in a temporary directory, stopped by their own PIDs at the end."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from gateway import devservices
from gateway.config import InfluxConfig
from gateway.stores.backends import open_reader
from gateway.stores.reader import Reader
from tests.fakes.clock import FakeClock
from tests.fakes.pty import PtySensor
from tests.helpers import Influx, artifacts_root, screenshots_note

_STARTED = time.time()  # the controller's start: screenshots newer than this are this run's

# A 2-core machine shared with a broker and a database: time limits in property tests only make
# them flaky, they test nothing we care about.
settings.register_profile(
    "minewatch", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("minewatch")


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run (`make test`, `.ci/run`) by saying where the screenshots are, pass or fail; on
    the controller only, not on each xdist worker."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    note = screenshots_note(artifacts_root(), _STARTED)
    if reporter is not None and note is not None and not hasattr(config, "workerinput"):
        reporter.write_line(note)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservices.Service]:
    service = devservices.mosquitto(tmp_path_factory.mktemp("mosquitto"))
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservices.Service]:
    service = devservices.influxd(tmp_path_factory.mktemp("influxd"))
    service.start()
    yield service
    service.stop()


@pytest.fixture
def influx(influxd: devservices.Service) -> Iterator[Influx]:
    """A fresh database on the shared influxd, so tests never see each other's points."""
    db = Influx(f"http://127.0.0.1:{influxd.port}", f"t_{uuid.uuid4().hex[:12]}")
    db.create()
    yield db
    db.drop()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of the test's own, so tests sharing the broker never hear each other."""
    return f"mw{uuid.uuid4().hex[:10]}"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def pty_sensor(tmp_path: Path) -> Iterator[PtySensor]:
    """A serial sensor on a pty pair, under a stable name in the test's directory."""
    sensor = PtySensor(tmp_path)
    yield sensor
    sensor.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def postgres() -> Iterator[devservices.Service]:
    """A private PostgreSQL cluster. Its directory is made with `tempfile.mkdtemp`, not pytest's
    temporary directory: as root the cluster runs as `postgres`, which cannot enter /tmp/pytest-of-root."""
    workdir = Path(tempfile.mkdtemp(prefix="minewatch-pg-"))
    service = devservices.postgres(workdir)
    service.start()
    yield service
    service.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pg(postgres: devservices.Service) -> Iterator[str]:
    """A fresh database on the shared cluster (its DSN), dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = devservices.pg_dsn(postgres)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield devservices.pg_dsn(postgres, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def reader(influx: Influx) -> Iterator[Reader]:
    """A reader of the test's own InfluxDB database (a test file may define its own, with data)."""
    r = open_reader(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    yield r
    r.close()
