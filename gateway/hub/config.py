"""`hub.toml`: the hub's broker, its database and its topic prefix (docs/region.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.configfile import load_model, read_secret
from contract.wire import ID_PATTERN
from gateway.alerts.rules import Rule
from gateway.alerts.rules.base import duration, duration_s
from gateway.config import MqttConfig, WebConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    dsn: str = Field(
        default="dbname=minewatch_hub", min_length=1, description="libpq connection string, no password"
    )
    password_file: Path | None = None

    def conninfo(self) -> str:
        password = read_secret(self.password_file, "MINEWATCH_HUB_DB_PASSWORD")
        if password is None:
            return self.dsn
        escaped = password.replace("\\", "\\\\").replace("'", "\\'")
        return f"{self.dsn} password='{escaped}'"


class PublicConfig(_Section):
    jurisdiction: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="whose view a reader without a token gets: what agreements share with it is public",
    )


class HubConfig(_Section):
    topic_prefix: str = Field(default="minewatch-hub", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    mqtt: MqttConfig = MqttConfig(client_id="minewatch-hub")
    database: DatabaseConfig = DatabaseConfig()
    web: WebConfig = WebConfig(port=8090)  # `hub serve`: as gateway.toml's [web]
    public: PublicConfig = PublicConfig()
    rules: list[Rule] = Field(
        default_factory=list,
        description="[[rules]] as in a site's [[alerts.rules]], run over every site's readings "
        "(a difference rule may take its reference from another site: `reference_site`)",
    )
    late_after: str = Field(default="15m", description="A reading older than this when it arrives is late.")

    _check_late = field_validator("late_after", mode="before")(lambda v: duration(v))

    @model_validator(mode="after")
    def _unique_names(self) -> HubConfig:
        names = [r.name for r in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("two [[rules]] have the same name; rule names must be unique")
        return self

    @property
    def late_after_s(self) -> float:
        return duration_s(self.late_after)


def load(path: Path | str) -> HubConfig:
    return load_model(path, HubConfig)
