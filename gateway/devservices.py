"""Private Mosquitto and influxd processes for the demo, the tests and the benchmarks.

Each runs from Debian's packages with its own config file and data under a directory we own, on a
free loopback port, and is stopped by its own PID: nothing in the system's service state changes.
The Mosquitto config raises the per-client queue limits: with the stock `max_queued_messages 1000`,
Mosquitto silently drops QoS 1 messages for a subscriber that falls behind (docs/operations.md).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO_QUEUE_LIMITS = """\
# Mosquitto drops QoS 1 messages beyond max_queued_messages (default 1000) for a client that falls
# behind, silently. A node replaying a week of backlog, or a gateway restarting, needs far more.
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 1000
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError(
        f"{name} is not installed: run `make test` or `apt-get install mosquitto influxdb`"
    )


@dataclass
class Service:
    """One private server process; `start` and `stop` may be called repeatedly (restart tests)."""

    name: str
    argv: list[str]
    port: int
    workdir: Path
    ready: str  # "tcp" or an HTTP URL that answers 2xx when up
    user: str | None = None  # run as this user (PostgreSQL refuses to run as root)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, timeout_s: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
            user=self.user,
            group=self.user,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: {self.log_path.read_text()[-2000:]}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout_s} s; see {self.log_path}")

    def _answers(self) -> bool:
        if self.ready == "pg_isready":  # PostgreSQL takes TCP connections before it takes queries
            argv = [pg_binary("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
            return subprocess.run(argv, check=False).returncode == 0
        if self.ready == "tcp":
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False
        try:
            with urllib.request.urlopen(self.ready, timeout=1) as resp:
                return bool(200 <= resp.status < 300)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    @property
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def mosquitto(
    workdir: Path, port: int | None = None, extra: str = "", *, persistent: bool = False
) -> Service:
    """A private broker. `persistent` keeps sessions and queued messages across a restart (in
    `workdir`), as a production broker must; the test suite's shared broker is thrown away after the
    run and keeps everything in memory."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    # started as root, Mosquitto drops to user "mosquitto", which cannot write in our directory
    user = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
    persistence = (
        f"persistence true\npersistence_location {workdir}/\nautosave_interval 60\n{user}"
        if persistent
        else "persistence false\n"
    )
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"{persistence}"
        "set_tcp_nodelay true\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\n"
        f"{MOSQUITTO_QUEUE_LIMITS}{extra}"
    )
    return Service("mosquitto", [find_binary("mosquitto"), "-c", str(conf)], port, workdir, "tcp")


def influxd(workdir: Path, port: int | None = None) -> Service:
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    rpc = free_port()
    conf = workdir / "influxdb.conf"
    conf.write_text(
        f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{workdir}/meta"
  logging-enabled = false
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  auth-enabled = false
  log-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
"""
    )
    return Service(
        "influxd",
        [find_binary("influxd"), "run", "-config", str(conf)],
        port,
        workdir,
        f"http://127.0.0.1:{port}/ping",
    )


def _as_postgres_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as Debian's `postgres` user."""
    return "postgres" if os.geteuid() == 0 else None


def pg_binary(name: str) -> str:
    """Debian keeps PostgreSQL's server programs out of PATH, under /usr/lib/postgresql/<major>/bin."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise FileNotFoundError(
        f"{name} is not installed: run `make test` or `apt-get install postgresql postgresql-postgis`"
    )


def postgres(workdir: Path, port: int | None = None, superuser: str = "minewatch") -> Service:
    """A private PostgreSQL cluster: `initdb` in `workdir/pgdata`, trust authentication on
    loopback only, its socket in its own directory. As root, the cluster belongs to `postgres`:
    `workdir` must then be reachable by that user (pytest's temporary directories are not; see
    tests/conftest.py)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    user = _as_postgres_user()
    data = workdir / "pgdata"
    if user is not None:
        shutil.chown(workdir, user, user)
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            [pg_binary("initdb"), "-D", str(data), "-U", superuser, "--auth=trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True, user=user, group=user, cwd=workdir,
        )  # fmt: skip
    argv = [
        pg_binary("postgres"),
        "-D", str(data),
        "-p", str(port),
        "-k", str(workdir),
        "-c", "listen_addresses=127.0.0.1",
        "-c", "fsync=on",
        "-c", "max_connections=200",
        "-c", "shared_buffers=64MB",
    ]  # fmt: skip
    return Service("postgres", argv, port, workdir, "pg_isready", user=user)


def pg_dsn(service: Service, dbname: str = "postgres", user: str = "minewatch") -> str:
    return f"host=127.0.0.1 port={service.port} dbname={dbname} user={user}"
