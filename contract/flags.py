"""Quality flags a reading may carry (docs/protocol.md, "Flags")."""

from __future__ import annotations

from enum import StrEnum


class Flag(StrEnum):
    """Each flag marks a reading; none deletes it (a regulator judges what the flags mean)."""

    WARMING_UP = "warming_up"
    SENSOR_FAULT = "sensor_fault"
    OUT_OF_RANGE = "out_of_range"
    HIGH_HUMIDITY = "high_humidity"
    CLOCK_UNSYNCED = "clock_unsynced"
    CAL_EXPIRED = "cal_expired"
    CAL_FALLBACK = "cal_fallback"


class GatewayFlag(StrEnum):
    """Flags the gateway finds when it stores a reading, kept in the stored field `gateway_flags`
    and never in `flags`: those are what the node signed, and must stay as signed to verify."""

    TS_SHARED = "ts_shared"
    """Another reading of the node (another `seq`) has the same `ts`: both are kept."""
