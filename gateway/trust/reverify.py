"""Re-verifying stored readings from rows alone (an export, or InfluxDB query results).

The check itself is contract.verify_offline, the module a third party runs without the gateway, so
`minewatch-gateway verify` and someone holding only the rows, the public keys and that one file
say the same thing about the same reading. This module only hands it the gateway's key registry.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from contract import verify_offline
from contract.verify_offline import RowReport
from contract.wire import ReadingPayload
from gateway.trust.registry import KeyRecord, KeyRegistry


def offline_key(record: KeyRecord) -> verify_offline.Key:
    return verify_offline.Key(
        kid=record.kid,
        site=record.site,
        node=record.node,
        public_key=base64.b64decode(record.public_key),
        status=record.status.value,
        since=record.since,
    )


def reverify(rows: Iterable[Mapping[str, Any]], registry: KeyRegistry, *, max_listed: int = 10) -> RowReport:
    """Check every row; unsigned rows are counted as `unsigned` (per node), not listed as failures."""
    keys = {r.kid: offline_key(r) for r in registry.records()}
    return verify_offline.check_rows(rows, keys, max_listed=max_listed)


def reading_of_row(row: Mapping[str, Any]) -> ReadingPayload:
    """The reading a stored row holds, exactly as its node signed it (`sig` included): what the hub
    forwarder sends. ValueError (a pydantic ValidationError is one) when the row is not a whole reading."""
    try:
        doc = verify_offline.canonical_doc(row)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a stored reading: missing {exc}") from None
    sig = row.get("sig")
    if isinstance(sig, str) and sig.strip():
        doc["sig"] = sig
    return ReadingPayload.model_validate(doc)
