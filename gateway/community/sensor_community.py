"""Sensor.Community's push API as its own firmware calls it (opendata-stuttgart/sensors-software,
`airrohr-firmware/airrohr-firmware.ino`: `sendData`, `sendSensorCommunity`; `ext_def.h`: the pins).

One POST per sensor group to `/v1/push-sensor-data/`, headers `Content-Type: application/json`,
`X-Sensor: <sensor id>` and `X-PIN: <pin>` (the firmware writes it in capitals; HTTP does not mind),
body `{"software_version": "...", "sensordatavalues":[{"value_type":"P1","value":"3.40"},...]}`
with each value a string of two decimals, as the firmware's `String(float)` gives. Particulate
matter goes as pin 1 (the PMS/SDS pin: `P0` PM1, `P1` PM10, `P2` PM2.5, in the firmware's order),
temperature, pressure (in Pa) and humidity as pin 11 (the BME280 pin, prefix removed as the
firmware does). The service stamps a reading with the time it arrives: readings older than
`MAX_AGE_S` (a node's outbox catching up) are not sent, and values our flags call invalid are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from contract import __version__
from contract.metrics import Metric
from contract.wire import ReadingPayload
from gateway.community.config import CommunityMap
from gateway.exports import quality

PM_PIN = 1
BME280_PIN = 11
MAX_AGE_S = 600
SOFTWARE_VERSION = f"minewatch-{__version__}"

# (pin, [(metric, value_type, scale)]) in the order the firmware writes them
GROUPS: tuple[tuple[int, tuple[tuple[Metric, str, float], ...]], ...] = (
    (PM_PIN, ((Metric.PM1_0, "P0", 1.0), (Metric.PM10, "P1", 1.0), (Metric.PM2_5, "P2", 1.0))),
    (
        BME280_PIN,
        (
            (Metric.AIR_TEMP, "temperature", 1.0),
            (Metric.PRESSURE, "pressure", 100.0),
            (Metric.RH, "humidity", 1.0),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Push:
    """One request, built when the reading is stored, sent later by the forwarder's worker."""

    url: str
    headers: dict[str, str]
    body: bytes
    what: str  # for logs: "<site>/<node> seq <n> pin <p>"
    timeout_s: float = 10.0


def pushes(reading: ReadingPayload, target: CommunityMap, now: datetime) -> list[Push]:
    if now - reading.ts > timedelta(seconds=MAX_AGE_S):
        return []
    out = []
    for pin, members in GROUPS:
        values = []
        for metric, value_type, scale in members:
            mv = reading.metrics.get(metric)
            if mv is None or mv.value is None:
                continue
            if quality.assess(metric, mv.value, reading.flags).validity == quality.INVALID:
                continue
            values.append({"value_type": value_type, "value": f"{mv.value * scale:.2f}"})
        if values:
            out.append(
                _push(target, pin, values, f"{reading.site}/{reading.node} seq {reading.seq} pin {pin}")
            )
    return out


def _push(target: CommunityMap, pin: int, values: list[dict[str, str]], what: str) -> Push:
    # the firmware's exact bytes: its literal first part, then compact value objects
    entries = ",".join(json.dumps(v, separators=(",", ":")) for v in values)
    body = '{"software_version": ' + json.dumps(SOFTWARE_VERSION) + ', "sensordatavalues":[' + entries + "]}"
    assert target.sensor_id is not None  # CommunityMap requires it for this service
    headers = {
        "Content-Type": "application/json",
        "X-Sensor": target.sensor_id,
        "X-PIN": str(pin),
        "User-Agent": SOFTWARE_VERSION,
    }
    return Push(target.push_url, headers, body.encode("utf-8"), what, target.timeout_s)
