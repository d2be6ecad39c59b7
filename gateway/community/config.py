"""`[[community_maps]]` in gateway.toml: which node's readings go to which public map, and who
agreed to it. Off unless listed; a node not listed is never forwarded."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from contract.wire import ID_PATTERN

SENSOR_COMMUNITY_URL = "https://api.sensor.community/v1/push-sensor-data/"


class CommunityMap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    site: str = Field(pattern=ID_PATTERN)
    node: str = Field(pattern=ID_PATTERN)
    service: Literal["sensor.community", "openaq"]
    consent: str = Field(
        min_length=5,
        max_length=500,
        description="Who agreed to publishing this node's readings on the map, and when.",
    )
    sensor_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="sensor.community: the X-Sensor id the node was registered with (e.g. raspi-1234abcd).",
    )
    url: AnyHttpUrl | None = Field(
        default=None, description="sensor.community: push URL (default the service's)."
    )
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _sensor_id_for_push(self) -> CommunityMap:
        if self.service == "sensor.community" and self.sensor_id is None:
            raise ValueError("sensor.community needs `sensor_id` (the X-Sensor id it was registered with)")
        if self.service == "openaq" and (self.sensor_id is not None or self.url is not None):
            raise ValueError("openaq has no push API: remove `sensor_id` and `url` (see docs/regulators.md)")
        return self

    @property
    def push_url(self) -> str:
        return str(self.url) if self.url is not None else SENSOR_COMMUNITY_URL
