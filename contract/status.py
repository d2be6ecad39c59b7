"""The node status payload (docs/protocol.md, "Node status payload"), shared by the node that builds
it and the gateway that stores it.

It lives apart from the gateway's storage code so that the node imports only pydantic for it. The
`stopped` message (a clean shutdown: a planned stop) and the `offline` one (the MQTT last will: the
node vanished) carry only `state`, so the gateway can tell a planned stop from a loss.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from contract.wire import MAX_PAYLOAD_BYTES, PayloadError, format_ts

SensorName = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
Timestamp = Annotated[str, StringConstraints(strict=True, pattern=r"^\d{4}-\d{2}-\d{2}T[\d:.]+Z$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutboxStatus(_Strict):
    depth: StrictInt = Field(ge=0)
    oldest_ts: Timestamp | None
    dropped: StrictInt = Field(ge=0)
    # The damaged outbox the node kept aside (file name) while it is still there; left out when none,
    # so a gateway older than this field still accepts the status.
    recovered_from: Annotated[str, StringConstraints(strict=True, max_length=200)] | None = None


class SensorStatus(_Strict):
    ok: StrictBool
    last_error: Annotated[str, StringConstraints(max_length=200)] | None
    last_ok: Timestamp | None


class NodeStatus(_Strict):
    """`online` carries everything below; `stopped` and `offline` only `state`."""

    state: Literal["online", "offline", "stopped"]
    version: Annotated[str, StringConstraints(max_length=64)] | None = None
    started: Timestamp | None = None
    uptime_s: StrictInt | None = Field(default=None, ge=0)
    outbox: OutboxStatus | None = None
    sensors: dict[SensorName, SensorStatus] = Field(default_factory=dict, max_length=32)
    clock_synced: StrictBool | None = None
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)

    @model_validator(mode="after")
    def _position_whole(self) -> NodeStatus:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon: both or neither")
        return self

    def to_wire(self) -> bytes:
        """`offline` and `stopped` are `state` alone; `online` has every field, `lat`/`lon` and
        `outbox.recovered_from` only when known."""
        if self.state != "online":
            return self.model_dump_json(exclude_defaults=True).encode()
        exclude: dict[str, Any] = {"lat": True, "lon": True} if self.lat is None else {}
        if self.outbox is not None and self.outbox.recovered_from is None:
            exclude["outbox"] = {"recovered_from"}
        return self.model_dump_json(exclude=exclude).encode()


OFFLINE = NodeStatus(state="offline")
"""The last will: the node went without saying goodbye (power cut, kill, link lost)."""
STOPPED = NodeStatus(state="stopped")
"""What a node publishes itself on a clean shutdown (SIGTERM, `systemctl stop`): a planned stop."""


def ts_text(ts: datetime | None) -> str | None:
    return None if ts is None else format_ts(ts)


def parse_status(payload: bytes) -> NodeStatus:
    """Validate a status message, or raise PayloadError with a reason key."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        return NodeStatus.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise PayloadError("invalid", f"{loc}: {first.get('msg')}"[:200]) from None
