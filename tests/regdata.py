"""Test data for export and report: readings, node statuses and alerts written as line protocol in the
schemas of docs/protocol.md (the `alert` and `node_status` points follow issues 6 and 5)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.helpers import Influx

SITE = "tsagaan"
DAY0 = datetime(2026, 11, 1, tzinfo=UTC)


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def reading_line(
    node: str,
    ts: datetime,
    seq: int,
    metrics: dict[str, tuple[float | None, float | None, int, str | None]],
    flags: str = "",
    site: str = SITE,
    sig: tuple[str, str] | None = None,
) -> str:
    """metrics: name -> (value, raw, n, cal)."""
    fields = []
    for name, (value, raw, n, cal) in sorted(metrics.items()):
        if value is not None:
            fields.append(f"{name}={value!r}")
        if raw is not None:
            fields.append(f"{name}_raw={raw!r}")
        fields.append(f"{name}_n={n}i")
        if cal is not None:
            fields.append(f'{name}_cal="{esc(cal)}"')
    fields += [f"seq={seq}i", f'flags="{esc(flags)}"']
    if sig is not None:
        fields += ["signed=true", f'sig="{sig[0]}"', f'kid="{sig[1]}"']
    return f"reading,node={node},site={site} {','.join(fields)} {ms(ts)}"


def dust(minute: int) -> float:
    """A smooth daily pattern with a dust event from 06:00 to 10:00 on the second day."""
    base = 20.0 + 8.0 * math.sin(minute / 1440 * 2 * math.pi)
    if 1440 + 360 <= minute < 1440 + 600:
        base += 150.0
    return round(base, 3)


def dust_site(influx: Influx, days: int = 3, gap: tuple[int, int] = (2 * 1440 + 120, 2 * 1440 + 480)) -> None:
    """`haul-road`: PM2.5/PM10 every minute for `days` days with a gap (node offline) on day 3 and a
    few flagged readings; `river-down`: turbidity every 5 minutes, day 1 only."""
    lines = []
    seq = 0
    for minute in range(1, days * 1440 + 1):
        seq += 1  # seq counts readings the node made, so it keeps going through delivery gaps
        if gap[0] <= minute < gap[1]:
            seq -= 1  # node was off: it made no readings
            continue
        ts = DAY0 + timedelta(minutes=minute)
        pm = dust(minute)
        flags = "warming_up" if minute < 4 else ("high_humidity" if minute % 500 == 0 else "")
        metrics: dict[str, tuple[float | None, float | None, int, str | None]] = {
            "pm2_5": (
                pm,
                round(pm * 1.1, 3),
                60,
                "pms5003-a12@2026-10-01" if minute < 1440 else "pms5003-a12@2026-11-02",
            ),
            "pm10": (round(pm * 1.6, 3), round(pm * 1.7, 3), 60, None),
        }
        if minute == 777:  # a sensor fault: no value, raw kept
            metrics["pm2_5"] = (None, 0.0, 0, None)
            flags = "sensor_fault"
        lines.append(
            reading_line("haul-road", ts, seq, metrics, flags, sig=("c2ln", "k1") if minute % 2 else None)
        )
    for i in range(1, 289):
        ts = DAY0 + timedelta(minutes=5 * i)
        lines.append(reading_line("river-down", ts, i, {"turbidity": (4.0 + (i % 7) * 0.25, 1.2, 300, None)}))
    for start in range(0, len(lines), 5000):
        influx.write(lines[start : start + 5000])


def statuses(influx: Influx) -> None:
    """node_status points (issue 5): state changes with the firmware version."""
    day3 = DAY0 + timedelta(days=2)
    influx.write(
        [
            f'node_status,node=haul-road,site={SITE} state="online",version="0.1.0" {ms(DAY0)}',
            f'node_status,node=haul-road,site={SITE} state="offline" {ms(day3 + timedelta(hours=2))}',
            f'node_status,node=haul-road,site={SITE} state="online",version="0.2.0" '
            f"{ms(day3 + timedelta(hours=8))}",
        ]
    )


def alert_line(
    node: str,
    rule: str,
    metric: str,
    state: str,
    ts: datetime,
    value: float,
    limit: float,
    late: bool = False,
    peak: float | None = None,
    started: datetime | None = None,
    ended: datetime | None = None,
) -> str:
    """`peak`, `started`, `ended`: stored as the alert engine stores them (docs/protocol.md)."""
    msg = esc(f"{metric} {value} at {node} over {limit}")
    extra = f",peak={peak!r}" if peak is not None else ""
    extra += f',started="{started:%Y-%m-%dT%H:%M:%S.000Z}"' if started else ""
    extra += f',ended="{ended:%Y-%m-%dT%H:%M:%S.000Z}"' if ended else ""
    return (
        f'alert,metric={metric},node={node},rule={rule},site={SITE} state="{state}",value={value!r},'
        f'limit={limit!r},average="1h",severity="warning",late={str(late).lower()},message="{msg}"'
        f"{extra} {ms(ts)}"
    )


def alerts(influx: Influx) -> None:
    """One live episode (raised, reminder, cleared) of a site's own rule on day 2, whose stored
    peak (178.25) is no event's `value`, and one late episode of a rule from a standard's preset on
    day 1 that peaked at 50.03 against a limit of 50.0."""
    d2 = DAY0 + timedelta(days=1)
    preset = "mns-4585-2016-pm2_5-24h"
    s1, s2 = d2 + timedelta(hours=7), DAY0 + timedelta(hours=3)
    influx.write(
        [
            alert_line("haul-road", "pm25-1h", "pm2_5", "raised", s1, 160.5, 50.0, peak=160.5, started=s1),
            alert_line(
                "haul-road",
                "pm25-1h",
                "pm2_5",
                "reminder",
                d2 + timedelta(hours=8),
                170.0,
                50.0,
                peak=178.25,
                started=s1,
            ),
            alert_line(
                "haul-road",
                "pm25-1h",
                "pm2_5",
                "cleared",
                d2 + timedelta(hours=11),
                30.0,
                50.0,
                peak=178.25,
                started=s1,
                ended=d2 + timedelta(hours=10),
            ),
            alert_line("haul-road", preset, "pm2_5", "raised", s2, 50.03, 50.0, True, peak=50.03, started=s2),
            alert_line(
                "haul-road",
                preset,
                "pm2_5",
                "cleared",
                DAY0 + timedelta(hours=4),
                40.0,
                50.0,
                True,
                peak=50.03,
                started=s2,
                ended=DAY0 + timedelta(hours=3, minutes=30),
            ),
        ]
    )


def offline_alerts(influx: Influx) -> None:
    """An `offline` rule's alert (metric `status`) while haul-road was down on day 3, and a status
    outage of river-down on day 1 whose readings (every 5 minutes) came in afterwards."""
    day3 = DAY0 + timedelta(days=2)
    influx.write(
        [
            alert_line(
                "haul-road",
                "node-offline",
                "status",
                "raised",
                day3 + timedelta(hours=2, minutes=15),
                15.0,
                15.0,
            ),
            alert_line(
                "haul-road", "node-offline", "status", "cleared", day3 + timedelta(hours=8), 0.13, 2.0
            ),
            f'node_status,node=river-down,site={SITE} state="offline" {ms(DAY0 + timedelta(hours=12))}',
            f'node_status,node=river-down,site={SITE} state="online",version="0.2.0" '
            f"{ms(DAY0 + timedelta(hours=13))}",
        ]
    )


def gateway_config(path: Path, influx: Influx) -> Path:
    path.write_text(f'[influxdb]\nurl = "{influx.url}"\napi = "v1"\ndatabase = "{influx.db}"\n')
    return path
