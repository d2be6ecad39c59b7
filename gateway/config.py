"""gateway.toml (docs/configuration.md). Keys named in docs/protocol.md are part of the contract."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.configfile import load_model, read_secret
from contract.i18n import Names, Texts
from contract.metrics import Metric
from contract.wire import ID_PATTERN
from gateway.alerts.config import RULE_TYPES, AlertsConfig
from gateway.channels import CHANNEL_TYPES
from gateway.community.config import CommunityMap
from gateway.exports.config import ExportsConfig
from gateway.standards import STANDARDS


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_MQTT_USER = "minewatch-gateway"
"""The gateway's MQTT account name when [mqtt] username is not set (broker-config uses it)."""


class MqttConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = None
    client_id: str = Field(default="minewatch-gateway", min_length=1, max_length=64)
    tls: bool = False
    ca_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(
        default=7 * 86400,
        ge=0,
        description="How long the broker keeps our queue while we are down.",
    )

    def password(self) -> str | None:
        return read_secret(self.password_file, "MINEWATCH_MQTT_PASSWORD")


class InfluxConfig(_Section):
    url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8086")
    api: Literal["v1", "v2", "auto"] = "auto"
    # v1 (InfluxDB 1.x)
    database: str = Field(default="minewatch", min_length=1)
    retention_policy: str | None = None
    username: str | None = None
    password_file: Path | None = None
    # v2 (InfluxDB 2.x / 3.x)
    org: str = "minewatch"
    bucket: str = "minewatch"
    token_file: Path | None = None
    timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="A write slower than this counts as failed: spool it."
    )

    def password(self) -> str | None:
        return read_secret(self.password_file, "MINEWATCH_INFLUX_PASSWORD")

    def token(self) -> str | None:
        return read_secret(self.token_file, "MINEWATCH_INFLUX_TOKEN")


class BatchConfig(_Section):
    max_size: int = Field(default=1000, ge=1, le=50_000, description="Readings per InfluxDB write.")
    max_delay_s: float = Field(default=0.2, gt=0, le=60, description="Oldest unwritten reading's age.")


class SpoolConfig(_Section):
    """Where batches wait while InfluxDB is unreachable, slow or failing (gateway/spool.py)."""

    max_bytes: int = Field(default=1024**3, ge=1024**2, description="Bound of the spool file.")
    warn_fraction: float = Field(default=0.5, gt=0, le=1, description="Log loudly from this fill level.")
    min_free_bytes: int = Field(default=100 * 1024**2, ge=0, description="Never fill the disk past this.")
    retry_max_s: float = Field(default=30.0, gt=0, le=3600, description="Longest pause between drain tries.")


class DeadLetterConfig(_Section):
    """Refused messages kept verbatim (gateway/deadletter.py); counts are kept beyond these bounds."""

    max_rows: int = Field(default=100_000, ge=10)
    max_bytes: int = Field(default=64 * 1024**2, ge=1024)
    max_payload_bytes: int = Field(default=65_536, ge=4096, description="Longer payloads are truncated.")


class ValidationConfig(_Section):
    clock_tolerance_s: float = Field(
        default=300.0, ge=0, le=86_400, description="How far in the future a reading's ts may be."
    )
    dedup_window: int = Field(
        default=4096, ge=0, le=1_000_000, description="Recent seqs per node remembered for on_stored hooks."
    )


class SensorInfo(_Section):
    """A sensor as installed, for the report: what the gateway cannot learn from the node itself."""

    model: str = Field(min_length=1, max_length=100)
    serial: str | None = Field(default=None, max_length=100)
    metrics: list[Metric] = Field(default_factory=list, description="What it measures.")


class NodeInfo(_Section):
    """One node's site metadata for the regulators' report (`[[report.nodes]]`)."""

    site: str = Field(pattern=ID_PATTERN)
    node: str = Field(pattern=ID_PATTERN)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    installed: str | None = Field(default=None, max_length=500, description="Date and installation notes.")
    sensors: list[SensorInfo] = Field(default_factory=list)
    maintenance: list[str] = Field(default_factory=list, description="Maintenance notes, one per visit.")


class ReportConfig(_Section):
    operator: str | None = Field(
        default=None, max_length=200, description="Who runs the network, as the report names its producer."
    )
    nodes: list[NodeInfo] = Field(default_factory=list)
    standards: list[str] = Field(
        default_factory=lambda: list(STANDARDS),
        description="Standards whose 24-hour limits the regulators' report compares daily means with.",
    )

    @field_validator("standards")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in STANDARDS]
        if unknown:
            raise ValueError(f"unknown standard {unknown[0]!r}; known: {', '.join(STANDARDS)}")
        return value


class TrustConfig(_Section):
    require_signatures: Literal["auto", "always", "never"] = "auto"
    check_signatures_in: Literal["inline", "worker"] = Field(
        default="inline",
        description="inline: in the main thread; worker: in a process of its own (another core)",
    )
    keys_dir: Path | None = Field(default=None, description="Key registry; default <data_dir>/keys.")


class WebConfig(_Section):
    """The public dashboard and JSON API (gateway/web/, docs/api.md). Read-only; loopback by default."""

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=1, le=65535)
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}$")
    standards: list[str] = Field(default_factory=lambda: ["who-2021", "us-epa", "mns-4585-2016"])
    offline_after_s: int = Field(default=900, ge=60, le=7 * 86400)
    licence: str = Field(default="CC BY 4.0", min_length=1)
    licence_url: str = "https://creativecommons.org/licenses/by/4.0/"
    attribution: str = Field(default="minewatch community monitoring network", min_length=1)
    public_url: AnyHttpUrl | None = Field(
        default=None,
        description="The address people reach the dashboard by ('https://air.tsagaan.mn'): alert "
        "messages then carry acknowledgement links under it. None: no links.",
    )
    # What a hostile client may hold (gateway/web/guard.py, docs/operations.md "The dashboard's limits").
    max_connections: int = Field(
        default=512, ge=1, le=100_000, description="Connections open at once; more are refused at once."
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="From connecting, or a request's first byte, to its headers' end.",
    )
    body_timeout_s: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="From a request's headers' end to its body's end (a photo over a slow link).",
    )
    idle_timeout_s: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="A connection with no request, a body pausing, or a client not reading, is closed.",
    )

    @field_validator("standards")
    @classmethod
    def _known_standards(cls, value: list[str]) -> list[str]:
        for key in value:
            if key not in STANDARDS:
                raise ValueError(f"unknown standard {key!r}; known: {', '.join(STANDARDS)}")
        return value


class ForwardConfig(_Section):
    """Forwarding to a regional hub (docs/region.md); absent: the site keeps everything to itself."""

    site: str = Field(pattern=ID_PATTERN, description="The site whose readings are forwarded.")
    topic_prefix: str = Field(default="minewatch-hub", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    mqtt: MqttConfig = Field(description="The hub's broker, with this site's own account.")
    identity_file: Path = Field(description="The site's Ed25519 identity (`minewatch-gateway hub identity`).")
    outbox: Path | None = Field(default=None, description="Default <data_dir>/forward.sqlite.")
    batch_size: int = Field(default=500, ge=1, le=1000)
    max_in_flight: int = Field(default=4, ge=1, le=64)
    ack_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    backfill: bool = Field(default=True, description="Send what was stored before forwarding began.")
    field_scan_s: float = Field(
        default=60.0, ge=1, le=3600,
        description="How often the site's maintenance visits and accepted observations are read "
        "for what the hub has not been sent (gateway/forward/field.py).",
    )  # fmt: skip


class FriendlyName(_Section):
    """What people call a site, or a node (with `node`), in each language: "Tsagaan bag", "haul road"."""

    site: str = Field(pattern=ID_PATTERN)
    node: str | None = Field(default=None, pattern=ID_PATTERN)
    name: dict[str, str] = Field(min_length=1, description="language -> name, e.g. {en = ..., mn = ...}")

    @field_validator("name")
    @classmethod
    def _languages(cls, value: dict[str, str]) -> dict[str, str]:
        for language, text in value.items():
            if not Texts.exists(language):
                known = ", ".join(Texts.languages())
                raise ValueError(f"name.{language}: no translation {language}.toml (have: {known})")
            if not 1 <= len(text.strip()) <= 100:
                raise ValueError(f"name.{language}: 1 to 100 characters, not {len(text.strip())}")
        return {language: text.strip() for language, text in value.items()}


class SiteConfig(_Section):
    """How people read the site: its time zone and the friendly names of its sites and nodes.
    Only what people read changes; data, the JSON API, exports and MQTT stay UTC and ids."""

    timezone: str = Field(default="UTC", description="IANA zone, e.g. 'Asia/Ulaanbaatar'.")
    names: list[FriendlyName] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return Texts.known_zone(value)

    @field_validator("names")
    @classmethod
    def _once(cls, value: list[FriendlyName]) -> list[FriendlyName]:
        seen: set[str] = set()
        for entry in value:
            key = entry.site if entry.node is None else f"{entry.site}/{entry.node}"
            if key in seen:
                raise ValueError(f"{key} is named twice")
            seen.add(key)
        return value

    def name_table(self) -> Names:
        return {(n.site if n.node is None else f"{n.site}/{n.node}"): n.name for n in self.names}

    def texts(self, language: str = "en") -> Texts:
        """The words, times and names for a reader of `language`."""
        return Texts(language, self.timezone, self.name_table())


class GatewayConfig(_Section):
    data_dir: Path = Path("/var/lib/minewatch/gateway")
    topic_prefix: str = Field(default="minewatch", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    gateway_id: str = Field(default="main", pattern=ID_PATTERN)
    site: SiteConfig = SiteConfig()  # the time zone and friendly names people read
    mqtt: MqttConfig = MqttConfig()
    influxdb: InfluxConfig = InfluxConfig()
    batch: BatchConfig = BatchConfig()
    status_interval_s: float = Field(default=10.0, gt=0, le=3600, description="Gateway status period.")
    spool: SpoolConfig = SpoolConfig()
    deadletter: DeadLetterConfig = DeadLetterConfig()
    validation: ValidationConfig = ValidationConfig()
    alerts: AlertsConfig = AlertsConfig()
    report: ReportConfig = ReportConfig()
    trust: TrustConfig = TrustConfig()
    web: WebConfig | None = None  # present = `run` serves the dashboard too
    forward: ForwardConfig | None = None  # present = `run` forwards to a regional hub
    exports: ExportsConfig = ExportsConfig()  # AQDx, AQCSV, OpenAQ (gateway/exports/)
    community_maps: list[CommunityMap] = Field(default_factory=list)  # off unless listed

    @property
    def keys_dir(self) -> Path:
        return self.trust.keys_dir or self.data_dir / "keys"

    @model_validator(mode="before")
    @classmethod
    def _channels_take_the_sites_language_and_zone(cls, data: Any) -> Any:
        """A channel that names no `language` speaks the gateway's (`[web] language`), and one that
        names no `timezone` keeps its quiet hours on the site's clock (`[site] timezone`): a
        Mongolian site's alerts are Mongolian, and "22:00-07:00" means night in Ulaanbaatar,
        unless a channel says otherwise."""
        if not isinstance(data, dict) or not isinstance(alerts := data.get("alerts"), dict):
            return data
        if not isinstance(channels := alerts.get("channels"), list):
            return data
        defaults = {
            "language": _given(data.get("web"), "language", Texts.exists),
            "timezone": _given(data.get("site"), "timezone", _known_zone),
        }
        fill = {key: value for key, value in defaults.items() if value is not None}
        if not fill:
            return data
        given = [{**fill, **c} if isinstance(c, dict) else c for c in channels]
        return {**data, "alerts": {**alerts, "channels": given}}


def _given(section: Any, key: str, valid: Callable[[str], bool]) -> str | None:
    """A section's `key` as written (a dict from the file, or a model), when it is a valid one: an
    invalid one is refused at its own key, not again at every channel."""
    value = section.get(key) if isinstance(section, dict) else getattr(section, key, None)
    return value if isinstance(value, str) and valid(value) else None


def _known_zone(name: str) -> bool:
    try:
        Texts.known_zone(name)
    except ValueError:
        return False
    return True


def load(path: Path | str) -> GatewayConfig:
    # `mqtt` is also a section name, so a channel of type mqtt keeps its tag in error locations
    tags = (*RULE_TYPES, *(t for t in CHANNEL_TYPES if t != "mqtt"))
    cfg = load_model(path, GatewayConfig, hide=tags)
    if not cfg.data_dir.is_absolute():  # relative to the config file, not to wherever we were started
        cfg = cfg.model_copy(update={"data_dir": (Path(path).parent / cfg.data_dir).resolve()})
    if cfg.trust.keys_dir is not None and not cfg.trust.keys_dir.is_absolute():
        trust = cfg.trust.model_copy(update={"keys_dir": (Path(path).parent / cfg.trust.keys_dir).resolve()})
        cfg = cfg.model_copy(update={"trust": trust})
    if cfg.forward is not None:
        base = Path(path).parent
        fwd = cfg.forward
        update: dict[str, Path] = {}
        if not fwd.identity_file.is_absolute():
            update["identity_file"] = (base / fwd.identity_file).resolve()
        if fwd.outbox is not None and not fwd.outbox.is_absolute():
            update["outbox"] = (base / fwd.outbox).resolve()
        if update:
            cfg = cfg.model_copy(update={"forward": fwd.model_copy(update=update)})
    return cfg
