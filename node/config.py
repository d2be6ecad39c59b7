"""node.toml (docs/configuration.md). Keys named in docs/protocol.md are part of the contract.

Each `[[sensors]]` table is validated by its driver's options model, chosen by `type`, so a driver
brings its own keys and errors keep their place: `node.toml: sensors[1].port: Field required`. Only
the drivers a file names are imported (hardware.driver_class).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SerializeAsAny,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticKnownError

import hardware
from contract.configfile import ConfigError, Issue, load_model, read_secret, worded, words_of
from contract.metrics import Metric
from contract.wire import ID_PATTERN
from hardware.base import reported_metrics
from node.calibration import check as check_calibrations


def _sensor_options(value: Any, info: ValidationInfo) -> hardware.SensorOptions:
    """One `[[sensors]]` table, validated by the options model of its `type`'s driver, the one
    driver imported for it. Errors are pydantic's own for a tagged union (a missing or unknown
    `type`, with every known type listed) and the driver model's, in place (`sensors[1].port`)."""
    if isinstance(value, hardware.SensorOptions):  # built in code, already validated
        return value
    if not isinstance(value, dict):
        return hardware.SensorOptions.model_validate(value)  # raises: not a table
    if "type" not in value:
        raise PydanticKnownError("union_tag_not_found", {"discriminator": "'type'"})
    try:
        driver = hardware.driver_class(str(value["type"]))
    except KeyError:
        known = ", ".join(repr(name) for name in hardware.known_types())
        context = {"discriminator": "'type'", "tag": str(value["type"]), "expected_tags": known}
        raise PydanticKnownError("union_tag_invalid", context) from None
    opts: hardware.SensorOptions = driver.options.model_validate(value, context=info.context)
    return opts


SensorConfig = Annotated[SerializeAsAny[hardware.SensorOptions], PlainValidator(_sensor_options)]
"""A `[[sensors]]` table: the options model of its driver (a subclass of SensorOptions)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeMqttConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = Field(default=None, description="Client certificate, for brokers that ask.")
    cert_key_file: Path | None = Field(default=None, description="Its private key (a secret, mode 600).")
    client_id: str | None = Field(default=None, max_length=64)
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    max_inflight: int = Field(default=100, ge=1, le=10_000, description="Unacknowledged readings.")
    session_expiry_s: int = Field(
        default=7 * 86400, ge=0, description="How long the broker keeps our session."
    )
    reconnect_max_s: float = Field(default=60.0, ge=1, le=3600, description="Longest wait between attempts.")

    def password(self) -> str | None:
        """The password; ConfigError naming the key when its file cannot be read (the OS's reason
        stays the cause, for `check` to say it in the reader's words)."""
        try:
            return read_secret(self.password_file, "MINEWATCH_MQTT_PASSWORD")
        except ConfigError as exc:
            raise ConfigError(f"[mqtt] password_file: {exc}") from exc.__cause__

    @model_validator(mode="after")
    def _cert_with_key(self) -> NodeMqttConfig:
        if (self.cert_file is None) != (self.cert_key_file is None):
            raise ValueError("cert_file and cert_key_file go together")
        return self

    @property
    def client_cert(self) -> tuple[str, str] | None:
        if self.cert_file is None or self.cert_key_file is None:
            return None
        return str(self.cert_file), str(self.cert_key_file)


class IdentityConfig(_Section):
    key_file: Path | None = Field(default=None, description="Ed25519 private key (PEM); signs readings.")


class BufferConfig(_Section):
    path: Path = Path("/var/lib/minewatch/node/outbox.sqlite")
    max_readings: int = Field(default=500_000, ge=1, description="Oldest dropped (and counted) beyond this.")
    min_free_mb: int = Field(default=100, ge=0, description="Free disk space the outbox leaves alone.")


class NodeConfig(_Section):
    site: str = Field(pattern=ID_PATTERN)
    node: str = Field(pattern=ID_PATTERN)
    interval_s: int = Field(default=60, ge=1, le=3600, description="Averaging window and reading period.")
    topic_prefix: str = Field(default="minewatch", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    lat: float | None = Field(default=None, ge=-90, le=90, description="WGS 84 degrees north; in status")
    lon: float | None = Field(default=None, ge=-180, le=180, description="WGS 84 degrees east; in status")
    mqtt: NodeMqttConfig = NodeMqttConfig()
    buffer: BufferConfig = BufferConfig()
    identity: IdentityConfig = IdentityConfig()
    status_interval_s: int = Field(default=300, ge=1, le=86_400, description="Status period when online.")
    clock_sync: Literal["ntp", "rtc"] = Field(
        default="ntp", description="ntp: ask the kernel whether NTP set the clock; rtc: trust the clock."
    )
    sensors: list[SensorConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _name_sensors(self) -> NodeConfig:
        """Give each sensor a unique name (its type, numbered when repeated) and fit its driver's
        keys to the averaging window (replay chunks)."""
        seen: set[str] = set()
        named: list[Any] = []
        for index, opts in enumerate(self.sensors):
            update: dict[str, Any] = {}
            name = opts.name
            if name is None:
                name, k = opts.type, 2
                while name in seen:
                    name, k = f"{opts.type}-{k}", k + 1
                update["name"] = name
            if name in seen:
                raise ValueError(f"sensors[{index}].name: {name!r} is used twice")
            seen.add(name)
            try:
                update.update(opts.fit_to_window(self.interval_s))
            except ValueError as exc:
                raise ValueError(f"sensors[{index}].{exc}") from None
            named.append(opts.model_copy(update=update) if update else opts)
        object.__setattr__(self, "sensors", named)
        return self

    @model_validator(mode="after")
    def _position_whole(self) -> NodeConfig:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon: give both or neither")
        return self

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"minewatch-node-{self.site}-{self.node}"


def load(path: Path | str) -> NodeConfig:
    cfg = load_model(path, NodeConfig)
    base = Path(path).parent
    if not cfg.buffer.path.is_absolute():  # relative to the config file
        buffer = cfg.buffer.model_copy(update={"path": (base / cfg.buffer.path).resolve()})
        cfg = cfg.model_copy(update={"buffer": buffer})
    # the key and the MQTT secrets sit next to node.toml in what `minewatch-gateway provision` writes
    identity = _relative_to(base, cfg.identity, "key_file")
    mqtt = cfg.mqtt
    for key in ("password_file", "ca_file", "cert_file", "cert_key_file"):
        mqtt = _relative_to(base, mqtt, key)
    cfg = cfg.model_copy(update={"identity": identity, "mqtt": mqtt})
    cfg = _resolve_calibrations(cfg, base)
    cfg = _resolve_sensor_paths(cfg, base)
    try:
        check_one_sensor_per_metric(cfg.sensors)
        check_calibrations(cfg.sensors)
    except ConfigError as exc:
        issues = tuple(dataclasses.replace(i, path=str(path)) for i in exc.issues)
        raise ConfigError(worded(issues) if issues else f"{path}: {exc}", issues) from exc
    return cfg


def _refuse(where: str, key: str, **params: Any) -> ConfigError:
    """A sensors mistake in `[config]`'s words (English here; `check --lang` words it again)."""
    issue = Issue("", where, key, params)
    return ConfigError(f"{where}: {words_of(key, params)}", (issue,))


def check_one_sensor_per_metric(sensors: list[SensorConfig]) -> None:
    """Refuse two sensors reporting one metric (two PMS units; a BME280 and an SHT4x both give
    `rh` and `air_temp`). A reading carries one value per metric, so the sampler would average the
    two sensors into it, and a calibration for the metric would correct both; neither is what
    anyone measured. The `metrics` key of a sensor keeps it to the others (docs/configuration.md)."""
    first: dict[Metric, tuple[int, SensorConfig]] = {}
    for j, opts in enumerate(sensors):
        if opts.metrics is not None:
            every = reported_metrics(opts.model_copy(update={"metrics": None}))
            unknown = [m.value for m in opts.metrics if every is not None and m not in every]
            if unknown:
                raise _refuse(
                    f"sensors[{j}].metrics",
                    "not_reported",
                    metrics=", ".join(unknown),
                    type=opts.type,
                    reported=", ".join(m.value for m in every or ()),
                )
        reported = reported_metrics(opts) or ()
        for metric in reported:
            if metric not in first:
                continue
            i, other = first[metric]
            rest = [m.value for m in reported if m not in first]
            raise _refuse(
                f"sensors[{j}] ({opts.name}, {opts.type})",
                "same_metric_rest" if rest else "same_metric",
                metric=metric.value,
                this=f"sensors[{j}]",
                other=f"sensors[{i}]",
                name=other.name,
                type=other.type,
                rest=json.dumps(rest),
                file="node.toml",
            )
        first.update({m: (j, opts) for m in reported})


S = TypeVar("S", bound=BaseModel)


def _relative_to(base: Path, section: S, key: str) -> S:
    value = getattr(section, key)
    if value is None or value.is_absolute():
        return section
    return section.model_copy(update={key: (base / value).resolve()})


def _resolve_calibrations(cfg: NodeConfig, base: Path) -> NodeConfig:
    """Calibration paths relative to the config file become absolute; preset names stay names."""
    sensors = [
        opts.model_copy(update={"calibration": [_resolve(ref, base) for ref in opts.calibration]})
        if opts.calibration
        else opts
        for opts in cfg.sensors
    ]
    return cfg.model_copy(update={"sensors": sensors})


def _resolve_sensor_paths(cfg: NodeConfig, base: Path) -> NodeConfig:
    """A driver's file paths (a `replay-csv` file) are relative to the config file, as every other
    path in it is."""
    sensors = []
    for opts in cfg.sensors:
        for key in opts.path_keys:
            opts = _relative_to(base, opts, key)
        sensors.append(opts)
    return cfg.model_copy(update={"sensors": sensors})


def _resolve(ref: str, base: Path) -> str:
    from calibration import presets  # only for a sensor with a calibration: a Pi's memory

    return ref if presets.path(ref) else str(presets.resolve(ref, base).resolve())
