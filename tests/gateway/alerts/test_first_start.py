"""A first start (no saved windows) reads its history on a thread while readings come (issue 24):
the alerts and windows it ends with are those of a full reload before the first reading. Real influxd;
the readings that come meanwhile are stored by the gateway's own store (so a second reading at a
stored time gets its `ts_rank`, as in production) and handed to the alerts as `on_stored` does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contract.wire import ReadingPayload
from gateway.alerts import snapshot
from gateway.alerts.engine import Engine
from gateway.alerts.service import Alerts
from gateway.alerts.store import AlertStore
from gateway.config import GatewayConfig, load
from gateway.points import to_line
from gateway.stores import open_store
from tests.alert_helpers import reading
from tests.fakes.clock import FakeClock
from tests.helpers import Influx, wait_for


def _config(path: Path, influx: Influx, data: str) -> GatewayConfig:
    path.write_text(
        f'data_dir = "{path.parent / data}"\ntopic_prefix = "first"\n'
        f'[influxdb]\nurl = "{influx.url}"\ndatabase = "{influx.db}"\napi = "v1"\n'
        '[alerts]\npresets = ["who-2021", "us-epa"]\n'
    )
    return load(path)


def _windows(engine: Engine) -> dict[tuple[str, str, str], tuple[list[bytes], int]]:
    out = {}
    for key, series in engine.all_series():
        _, parts = series.to_parts()
        out[key] = ([bytes(p) for p in parts], series.to_parts()[0]["period_ms"])
        for part in parts:
            part.release()
    return out


def _events(alerts: Alerts) -> list[tuple[Any, ...]]:
    assert alerts.store is not None
    keys = ("state", "rule", "node", "ts", "started", "value", "peak", "late", "category", "id")
    return [tuple(e[k] for k in keys) for e in alerts.store.events()]


def test_a_first_start_fills_its_windows_meanwhile_and_judges_what_came_as_a_full_reload_would(
    tmp_path: Path, influx: Influx
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = range(20 * 60, 0, -1)  # 20 hours: the 24-hour means are complete (75 %)
    history = [reading("a", now - timedelta(minutes=m), 14.0 + m % 3 * 0.25) for m in minutes]
    history[600] = reading("a", history[600].ts, None)  # a failed sensor: `pm2_5_n` alone
    history += [reading("b", now - timedelta(minutes=m), 40.0, metric="pm10") for m in minutes]
    history += [reading("quiet", now - timedelta(hours=30), 5.0)]  # older than the windows reach
    influx.write([to_line(r) for r in history])
    # what comes while the history is read: a rise at a (a WHO 24-hour alert), a second reading
    # at a stored time with another seq (a node's clock stepped back), a backlog stamped hours back
    came: list[ReadingPayload] = [reading("a", now + timedelta(minutes=m), 400.0) for m in range(1, 31)]
    came.insert(5, reading("a", now - timedelta(hours=2), 90.0).model_copy(update={"seq": 999_999}))
    came.insert(9, reading("b", now - timedelta(hours=5, seconds=30), 70.0, metric="pm10"))
    came += [reading("b", now + timedelta(minutes=m), 600.0, metric="pm10") for m in range(1, 21)]

    # the reference: the whole history reloaded before the first reading (as every start was)
    clock = FakeClock(now + timedelta(seconds=1))
    full = Alerts(_config(tmp_path / "full.toml", influx, "full"), clock=clock, publish=lambda t, p: True)
    full.start()
    store = open_store(full.cfg.influxdb)
    store.write([to_line(r) for r in came[:40]])  # stored before the first start reads them too
    fill_clock = FakeClock(now + timedelta(seconds=1))
    first = Alerts(
        _config(tmp_path / "first.toml", influx, "first"),
        clock=fill_clock,
        publish=lambda t, p: True,
        background_fill=True,
    )
    first.start()
    try:
        assert first.engine.is_filling
        for i, r in enumerate(came):
            if i == 40:
                store.write([to_line(x) for x in came[40:]])  # these after
            clock.now = fill_clock.now = max(r.ts, now) + timedelta(seconds=1)
            full.engine_hook([r])
            first.engine_hook([r])
        assert first.engine.pending_count == len(came)
        assert _events(first) == []  # nothing judged on windows yet
        assert not (first.cfg.data_dir / snapshot.FILE).exists()  # nor saved half full

        def filled() -> bool:
            first.tick()
            return not first.engine.is_filling

        wait_for(filled, 60, "the windows filled")
        wait_for((first.cfg.data_dir / snapshot.FILE).exists, 20, "the windows saved once full")
        assert _windows(first.engine) == _windows(full.engine)
        assert first.engine.arrivals == full.engine.arrivals
        events = _events(full)
        assert ("raised", "who-2021-pm25-24h", "a") in {e[:3] for e in events}
        assert ("raised", "who-2021-pm10-24h", "b") in {e[:3] for e in events}
        assert _events(first) == events
    finally:
        store.close()
        first.stop()
        full.stop()


def test_a_stop_while_the_windows_fill_waits_for_them_and_judges_what_came(
    tmp_path: Path, influx: Influx
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    influx.write([to_line(reading("a", now - timedelta(minutes=m), 14.0)) for m in range(20 * 60, 0, -1)])
    clock = FakeClock(now + timedelta(seconds=1))
    cfg = _config(tmp_path / "gateway.toml", influx, "data")
    alerts = Alerts(cfg, clock=clock, publish=lambda t, p: True, background_fill=True)
    alerts.start()
    came = [reading("a", now + timedelta(minutes=m), 400.0) for m in range(1, 31)]
    for r in came:
        clock.now = r.ts + timedelta(seconds=1)
        alerts.engine_hook([r])
    assert alerts.engine.is_filling  # (no tick has taken the windows in)
    alerts.stop()  # at once: the fill is waited for, then the readings judged and the windows saved
    assert not alerts.engine.is_filling
    stored = AlertStore(cfg.data_dir / "alerts.sqlite")
    assert ("raised", "who-2021-pm25-24h", "a") in {
        (e["state"], e["rule"], e["node"]) for e in stored.events()
    }
    stored.close()
    again = Engine(cfg.alerts.all_rules(), clock=clock)
    assert snapshot.load(again, cfg.data_dir / snapshot.FILE, int(clock().timestamp() * 1000)) is not None
    series = again.series("tsagaan", "a", "pm2_5")
    assert series is not None and len(series) == 20 * 60 + len(came)
