"""The public wire contract (docs/protocol.md): identifiers, topics, the reading payload, quality flags.

Both sides use these models: the node to build what it publishes, the gateway to refuse anything
else. Parsing is strict (no type coercion, unknown fields refused, finite numbers only) because a
regulator must be able to trust that what is stored is exactly what a node said.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, NotRequired

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    field_serializer,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from contract.flags import Flag
from contract.metrics import PHYSICAL_RANGE, Metric

CONTRACT_VERSION = "v1"
SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 4096
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_ID_RE = re.compile(ID_PATTERN)
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|\+00:00)$")

Identifier = Annotated[str, StringConstraints(strict=True, pattern=ID_PATTERN)]
# A letter or digit first (Unicode: `örgöö-1`), so no spreadsheet takes an exported id for a formula
# (`=HYPERLINK(...)`, `+`, `-`, `@`); no whitespace and no control characters after it: the id is
# written into InfluxDB as a string field.
CAL_ID_PATTERN = r"^[^\W_][^\s\x00-\x1f\x7f]*$"
CalId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=96, pattern=CAL_ID_PATTERN)]
EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
"""No reading can be older than this: a node whose clock says 1970 has never synchronised it."""
DEFAULT_CLOCK_TOLERANCE_S = 300.0


_METRIC_NAMES = frozenset(m.value for m in Metric)


def is_identifier(text: str) -> bool:
    return bool(_ID_RE.match(text))


class TopicKind(StrEnum):
    READING = "reading"
    STATUS = "status"
    ALERT = "alert"


def topic(prefix: str, site: str, node: str, kind: TopicKind) -> str:
    return f"{prefix}/{CONTRACT_VERSION}/{site}/{node}/{kind.value}"


def subscription(prefix: str, kind: TopicKind) -> str:
    return f"{prefix}/{CONTRACT_VERSION}/+/+/{kind.value}"


GATEWAY_LEVEL = "_gateway"
"""Topic level of the gateways' own topics; `_` cannot start a site id, so it never meets a node's."""


def gateway_status_topic(prefix: str, gateway_id: str) -> str:
    return f"{prefix}/{CONTRACT_VERSION}/{GATEWAY_LEVEL}/{gateway_id}/status"


@functools.lru_cache(maxsize=4096)
def parse_topic(prefix: str, text: str) -> tuple[str, str, TopicKind]:
    """Split `<prefix>/v1/<site>/<node>/<kind>`; ValueError says what is wrong.

    Cached: a site's few topics come again with every reading, and checking the ids took a tenth of
    the validation's time (a topic that fails is not cached, and the cache is bounded)."""
    head = f"{prefix}/{CONTRACT_VERSION}/"
    if not text.startswith(head):
        raise ValueError(f"topic {text!r} is not under {head}")
    parts = text[len(head) :].split("/")
    if len(parts) != 3:
        raise ValueError(f"topic {text!r} is not {head}<site>/<node>/<kind>")
    site, node, kind = parts
    if not is_identifier(site) or not is_identifier(node):
        raise ValueError(f"topic {text!r} has an invalid site or node id")
    try:
        return site, node, TopicKind(kind)
    except ValueError:
        raise ValueError(f"topic {text!r} has unknown kind {kind!r}") from None


def format_ts(ts: datetime) -> str:
    """RFC 3339 UTC with millisecond precision, as the contract writes `ts`."""
    utc = ts if ts.tzinfo is UTC else ts.astimezone(UTC)
    if utc.year >= 1000:  # isoformat pads the year to four digits, as strftime's %Y does from 1000
        return utc.isoformat(timespec="milliseconds")[:-6] + "Z"  # it truncates, as [:-3] below does
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class MetricValue(NamedTuple):
    """One metric of a reading, as `ReadingPayload.metrics` holds it once validated.

    An immutable tuple, not a pydantic model: a PMS5003 reading carries a dozen of these, and as
    models they made a validated reading 8.1 KB (3.3 KB with these, tracemalloc) while its batch
    waited to be written; a tuple is also the cheapest to build, a dozen times per reading. The
    wire form is checked strictly as `_MetricEntry` before one is built, and one built in Python
    (the node, tests) is checked the same way when it goes into a ReadingPayload."""

    value: float | None
    n: int
    raw: float | None = None
    cal: str | None = None

    def as_entry(self) -> dict[str, Any]:
        """The wire entry, in the contract's field order; `raw` and `cal` only when present."""
        entry: dict[str, Any] = {"value": self.value}
        if self.raw is not None:
            entry["raw"] = self.raw
        entry["n"] = self.n
        if self.cal is not None:
            entry["cal"] = self.cal
        return entry


@with_config(ConfigDict(extra="forbid", allow_inf_nan=False))
class _MetricEntry(TypedDict):
    """A metric's entry on the wire; validated by pydantic in Rust, without building a model."""

    value: StrictFloat | None
    n: Annotated[int, Field(strict=True, ge=0, le=1_000_000)]
    raw: NotRequired[StrictFloat | None]
    cal: NotRequired[CalId | None]


_new_value = tuple.__new__  # MetricValue's own __new__ is a Python function that calls this


def _metric_values(entries: dict[Metric, _MetricEntry]) -> dict[Metric, MetricValue]:
    """The validated entries as MetricValues, each value within its metric's physical range."""
    out: dict[Metric, MetricValue] = {}
    for metric, entry in entries.items():
        value = entry["value"]
        if value is not None:
            low, high = PHYSICAL_RANGE[metric]
            if not low <= value <= high:
                raise ValueError(f"{metric.value}.value {value} outside [{low}, {high}]")
        out[metric] = _new_value(MetricValue, (value, entry["n"], entry.get("raw"), entry.get("cal")))
    return out


if TYPE_CHECKING:
    Metrics = dict[Metric, MetricValue]
else:  # what pydantic validates, then turns into MetricValues
    Metrics = Annotated[dict[Metric, _MetricEntry], AfterValidator(_metric_values)]


class ReadingPayload(BaseModel):
    """One averaged reading from one node (topic `<prefix>/v1/<site>/<node>/reading`)."""

    # Strictness is per field (StrictInt, StrictFloat, strict ids) so that JSON strings still become
    # our enums for flags and metrics, but "12" never becomes 12.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)

    schema_: Literal[1] = Field(alias="schema")
    site: Identifier
    node: Identifier
    seq: StrictInt = Field(ge=1, le=2**53)
    ts: datetime
    period_s: StrictInt = Field(gt=0, le=86_400)
    metrics: Metrics = Field(min_length=1)
    flags: list[Flag] = Field(default_factory=list, max_length=16)
    # Signed readings (docs/protocol.md, "Signed readings"): key id and base64 Ed25519 signature.
    kid: Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9a-f]{16}$")] | None = None
    sig: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9+/]{86}==$")] | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _utc_rfc3339(cls, value: Any) -> datetime:
        if isinstance(value, datetime) and value.utcoffset() == timedelta(0):
            return value  # built in Python (the node), not parsed from the wire
        if not isinstance(value, str) or not _TS_RE.match(value):
            raise ValueError("ts must be an RFC 3339 UTC string like 2026-11-22T10:01:00.000Z")
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    @field_validator("metrics", mode="before")
    @classmethod
    def _known_metrics(cls, value: Any) -> Any:
        if isinstance(value, dict) and value:
            if not value.keys() <= _METRIC_NAMES:
                for key in value:
                    if key not in _METRIC_NAMES:
                        raise ValueError(f"unknown metric {key!r}")
            if MetricValue in map(type, value.values()):  # built in Python (the node): check it too
                return {k: v.as_entry() if type(v) is MetricValue else v for k, v in value.items()}
        return value  # pydantic turns the names into Metric

    @field_serializer("metrics")
    def _metrics_as_dicts(self, metrics: dict[Metric, MetricValue]) -> dict[str, dict[str, Any]]:
        """`model_dump` gives each metric as the dict the wire has (and `model_validate` takes)."""
        return {metric.value: mv._asdict() for metric, mv in metrics.items()}

    @model_validator(mode="after")
    def _flags_once(self) -> ReadingPayload:
        flags = self.flags
        if len(flags) > 1 and len(set(flags)) != len(flags):
            raise ValueError("flags repeat")
        return self

    def to_wire(self) -> bytes:
        """Compact UTF-8 JSON in the contract's field order; `raw`, `cal`, `kid`, `sig` only when present."""
        metrics = {metric.value: mv.as_entry() for metric, mv in self.metrics.items()}
        doc = {
            "schema": self.schema_,
            "site": self.site,
            "node": self.node,
            "seq": self.seq,
            "ts": format_ts(self.ts),
            "period_s": self.period_s,
            "metrics": metrics,
            "flags": [f.value for f in self.flags],
        }
        if self.kid is not None:
            doc["kid"] = self.kid
        if self.sig is not None:
            doc["sig"] = self.sig
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


class PayloadError(ValueError):
    """A payload the gateway refuses; `reason` is a short stable key for counting."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
