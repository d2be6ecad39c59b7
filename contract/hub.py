"""What a site gateway and a regional hub say to each other (docs/region.md, docs/protocol.md).

A site forwards batches on `<prefix>/v1/<site>/forward`; the hub answers each batch on
`<prefix>/v1/<site>/ack` once it is durably stored. Readings travel exactly as the node signed them
(`ReadingPayload`), so the hub verifies the node's own signature. The node keys a site forwards are
vouched for by the site's identity key: the hub knows that key from the site's registration and
refuses any node key it did not sign, so a broken site link cannot slip a key of its own in.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from contract.status import NodeStatus
from contract.wire import ID_PATTERN, ReadingPayload

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SiteName = Annotated[str, StringConstraints(strict=True, pattern=ID_PATTERN)]
MAX_BATCH = 1000
"""Readings per forwarded batch: one hub transaction, and an MQTT message well under a megabyte."""


def forward_topic(prefix: str, site: str) -> str:
    return f"{prefix}/v1/{site}/forward"


def ack_topic(prefix: str, site: str) -> str:
    return f"{prefix}/v1/{site}/ack"


def forward_subscription(prefix: str) -> str:
    return f"{prefix}/v1/+/forward"


def site_of_forward_topic(prefix: str, topic: str) -> str | None:
    """The site a forward topic names, or None when it is not one."""
    head, tail = f"{prefix}/v1/", "/forward"
    if not (topic.startswith(head) and topic.endswith(tail)):
        return None
    site = topic[len(head) : -len(tail)]
    return site if site and "/" not in site else None


def canonical_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class ForwardedKey(BaseModel):
    """A node's public key record as the site's registry holds it, with the site identity's
    signature over its canonical JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record: dict[str, Any]
    vouch: str = Field(pattern=r"^[A-Za-z0-9+/]{86}==$")

    @classmethod
    def vouched(cls, record: dict[str, Any], identity: Ed25519PrivateKey) -> ForwardedKey:
        sig = identity.sign(canonical_json(record))
        return cls(record=record, vouch=base64.b64encode(sig).decode())

    def is_vouched_by(self, identity: Ed25519PublicKey) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            identity.verify(base64.b64decode(self.vouch), canonical_json(self.record))
        except InvalidSignature:
            return False
        return True


class ForwardedStatus(BaseModel):
    """A node's status message as the site received it (its payload carries no time of its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: SiteName
    received: datetime
    status: NodeStatus


class StoredReading(BaseModel):
    """A reading in a site's outbox with the time the site stored it (`received` at the site)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    received: datetime | None
    reading: ReadingPayload
    period_known: bool = Field(
        default=True,
        description="False for an unsigned reading stored before the site kept `period_s` for every "
        "reading: its `period_s` is the site's estimate, and the hub stores it without one",
    )


Sha256 = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9a-f]{64}$")]
FIELD_TEXT_MAX = 2000
MAX_PHOTOS = 4
"""Photos one observation may carry (the site's form takes no more)."""
"""Longer than any note, reason or observation text the site accepts: a bound, not a rule of its own."""


class ForwardedVisit(BaseModel):
    """A maintenance visit as the site stored it (measurement `maintenance`, docs/protocol.md), of
    the batch's site. `(node, kind, at)` names it, as at the site: the hub stores it once and
    refuses (and keeps) a visit of the same name that differs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: SiteName
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]
    at: datetime
    by: str = Field(min_length=1, max_length=FIELD_TEXT_MAX)
    note: str = Field(default="", max_length=FIELD_TEXT_MAX)
    flag_from: datetime | None = None  # the marked window (flag_from, flag_to]
    flag_to: datetime | None = None
    recorded: datetime
    entered_by: str | None = Field(default=None, max_length=FIELD_TEXT_MAX)

    @model_validator(mode="after")
    def _window(self) -> ForwardedVisit:
        if (self.flag_from is None) != (self.flag_to is None):
            raise ValueError("flag_from and flag_to go together")
        if self.flag_from is not None and self.flag_to is not None and self.flag_to <= self.flag_from:
            raise ValueError("flag_to must be after flag_from")
        return self


class ForwardedDecision(BaseModel):
    """A monitor's decision on an observation: who, when, why (measurement `observation_decision`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Literal["accepted", "rejected"]
    by: str = Field(min_length=1, max_length=FIELD_TEXT_MAX)
    at: datetime
    why: str = Field(default="", max_length=FIELD_TEXT_MAX)


class ForwardedObservation(BaseModel):
    """A resident's observation that a monitor accepted, with every decision on it, oldest first
    (measurement `observation`). Who observed (an observer code's number, a monitor account) stays
    at the site, as in the site's export; the photos travel as their hashes only: `photo_*` of the
    first, and `photos_*` of every one in order, sent only for two or more (so an observation of
    one photo or none is the document earlier sites send, and an earlier hub takes it). An
    observation given as a position alone belongs to the batch's site at the hub; `near_node` is
    its nearest node within 2 km, sent only when there is one (again the earlier document)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]
    text: str = Field(default="", max_length=FIELD_TEXT_MAX)
    at: datetime
    node: SiteName | None = None
    place: Literal["node", "position", "map"] = "node"
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    received: datetime
    photo_received_sha256: Sha256 | None = None
    photo_sha256: Sha256 | None = None
    photos_received_sha256: list[Sha256] | None = Field(default=None, min_length=2, max_length=MAX_PHOTOS)
    photos_sha256: list[Sha256] | None = Field(default=None, min_length=2, max_length=MAX_PHOTOS)
    near_node: SiteName | None = None
    decisions: list[ForwardedDecision] = Field(min_length=1, max_length=MAX_BATCH)

    @model_validator(mode="after")
    def _photos(self) -> ForwardedObservation:
        many = (self.photos_received_sha256, self.photos_sha256)
        if (many[0] is None) != (many[1] is None) or (many[0] and len(many[0]) != len(many[1] or ())):
            raise ValueError("photos_received_sha256 and photos_sha256 go together, one hash per photo")
        if (
            many[0] is not None
            and many[1] is not None
            and (many[0][0] != self.photo_received_sha256 or many[1][0] != self.photo_sha256)
        ):
            raise ValueError("photo_received_sha256 and photo_sha256 are those of the first photo")
        return self


class ForwardBatch(BaseModel):
    """One site's batch: its id is the site's own (increasing), so the ack names what to drop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    site: SiteName
    batch: int = Field(ge=0)
    readings: list[ReadingPayload] = Field(default_factory=list, max_length=MAX_BATCH)
    keys: list[ForwardedKey] = Field(default_factory=list, max_length=MAX_BATCH)
    statuses: list[ForwardedStatus] = Field(default_factory=list, max_length=MAX_BATCH)
    alerts: list[dict[str, Any]] = Field(
        default_factory=list, max_length=MAX_BATCH, description="alert payloads (docs/protocol.md)"
    )
    received: list[datetime | None] = Field(
        default_factory=list,
        max_length=MAX_BATCH,
        description="when the site stored each reading, in the order of `readings` (or empty): a key "
        "the site revoked later is judged by it, as at the site (docs/trust.md)",
    )

    period_unknown: list[int] = Field(
        default_factory=list,
        max_length=MAX_BATCH,
        description="indices into `readings` of unsigned readings whose `period_s` the site does not "
        "know (stored by a version that kept it for signed readings only): their `period_s` is the "
        "site's estimate from the node's times and seq, and the hub stores them without it",
    )

    visits: list[ForwardedVisit] = Field(
        default_factory=list,
        max_length=MAX_BATCH,
        description="maintenance visits of the site (sent only when there are some: a hub that "
        "predates them refuses the field as malformed, so the hub is upgraded first)",
    )
    observations: list[ForwardedObservation] = Field(
        default_factory=list,
        max_length=MAX_BATCH,
        description="accepted observations with their decisions (sent only when there are some, as `visits`)",
    )

    @model_validator(mode="after")
    def _one_received_per_reading(self) -> ForwardBatch:
        if self.received and len(self.received) != len(self.readings):
            raise ValueError(f"{len(self.received)} received times for {len(self.readings)} readings")
        for i in self.period_unknown:
            if not 0 <= i < len(self.readings):
                raise ValueError(f"period_unknown: no reading {i} in a batch of {len(self.readings)}")
            if self.readings[i].sig is not None:
                raise ValueError(
                    f"period_unknown: reading {i} is signed, and its signature covers its period"
                )
        return self


class HubAck(BaseModel):
    """The hub's answer, sent after its transaction committed: what it stored, what it had already,
    and what it refused (kept for review at the hub; refusing is final, so the site drops them too)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    site: SiteName
    batch: int = Field(ge=0)
    stored: int = Field(ge=0)
    duplicate: int = Field(ge=0)
    refused: int = Field(ge=0)
