"""A hub with three jurisdictions, two sites and one agreement, for the read side's tests.

`soum` owns tsagaan, `aimag` owns ulaan, `other` owns nothing; the soum shares tsagaan with the aimag
two hours late. Readings are signed by their nodes' keys, which the hub holds as the sites vouched
them, so exports from the hub can be verified. Roles are cluster-wide: each hub tags its own.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contract.hub import ForwardBatch, forward_topic
from contract.signing import Signer, public_b64
from gateway.stores.postgres_hub import HubStore, Verdicted
from gateway.subscriber import Message
from tests.alert_helpers import reading

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
DELAY = timedelta(hours=2)


@dataclass(frozen=True)
class Hub:
    dsn: str
    roles: dict[str, str]  # jurisdiction -> its role
    keys: dict[str, Signer]  # node -> its key


def key_record(signer: Signer, site: str, node: str) -> dict[str, object]:
    public = public_b64(signer.private.public_key())
    return {"kid": signer.kid, "site": site, "node": node, "public_key": public,
            "created": "2026-01-01T00:00:00Z", "status": "active", "since": None}  # fmt: skip


def build(dsn: str, hours: int = 6) -> Hub:
    store = HubStore(dsn)
    store.prepare()
    tag = uuid.uuid4().hex[:8]
    roles = {j: f"j_{j}_{tag}" for j in ("soum", "aimag", "other")}
    for jid, role in roles.items():
        store.add_jurisdiction(jid, jid.title(), role)
    store.add_site("tsagaan", "soum", public_b64(Signer.generate().private.public_key()))
    store.add_site("ulaan", "aimag", public_b64(Signer.generate().private.public_key()))
    keys = {"a": Signer.generate(), "b": Signer.generate()}
    store.put_key(key_record(keys["a"], "tsagaan", "a"), "vouch")
    store.put_key(key_record(keys["b"], "ulaan", "b"), "vouch")
    rows = [keys["a"].sign(reading("a", NOW - timedelta(minutes=10 * i), 10.0 + i, site="tsagaan"))
            for i in range(hours * 6)]  # fmt: skip
    rows += [keys["b"].sign(reading("b", NOW - timedelta(minutes=10 * i), 50.0 + i, site="ulaan"))
             for i in range(hours * 6)]  # fmt: skip
    store.write_readings([Verdicted(r, "verified") for r in rows])
    store.write_alerts("tsagaan", [{
        "schema": 1, "id": "al-1", "state": "raised", "site": "tsagaan", "node": "a", "rule": "pm-high",
        "type": "threshold", "metric": "pm2_5", "severity": "warning",
        "ts": (NOW - timedelta(hours=3)).isoformat().replace("+00:00", "Z"),
        "started": (NOW - timedelta(hours=3)).isoformat().replace("+00:00", "Z"), "ended": None,
        "value": 40.0, "limit": 35.0, "average": "reading", "peak": 40.0, "late": False, "acked_by": None,
        "category": None, "message": "PM2.5 40 over 35", "msg_id": None, "msg_params": None,
    }])  # fmt: skip
    store.add_agreement(
        name="tsagaan-to-aimag", grantor="soum", grantee="aimag", sites=["tsagaan"], licence="CC-BY-4.0",
        valid_from=NOW - timedelta(days=30), valid_to=None, delay_s=int(DELAY.total_seconds()),
        recorded_by="B. Bat",
    )  # fmt: skip
    store.close()
    return Hub(dsn, roles, keys)


def as_message(batch: ForwardBatch) -> Message:
    """The batch as the hub's subscriber delivers it (QoS 1, its site's forward topic)."""
    topic = forward_topic("hub", batch.site)
    return Message(topic, batch.model_dump_json(by_alias=True).encode(), 1, 1, False, time.monotonic())
