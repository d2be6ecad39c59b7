"""The gateway's signature policy: refuse what is unsigned (when required), signed by a key we do
not know, by a revoked key, or whose signature does not match. Each refusal is a PayloadError, so
it takes the same path as any other refused message (counted, logged, kept as a reject)."""

from __future__ import annotations

import logging
from enum import StrEnum

from contract.signing import verify_signature
from contract.wire import PayloadError, ReadingPayload
from gateway.trust.registry import KeyRegistry, KeyStatus, RegistryError

log = logging.getLogger(__name__)


class RequireSignatures(StrEnum):
    AUTO = "auto"  # required from a node once any key was registered for it
    ALWAYS = "always"  # required from every node
    NEVER = "never"  # unsigned readings accepted; a signature present is still checked


class Verifier:
    def __init__(self, registry: KeyRegistry, policy: RequireSignatures = RequireSignatures.AUTO) -> None:
        self.registry = registry
        self.policy = policy
        self._last_registry_error = ""

    def __call__(self, reading: ReadingPayload) -> None:
        """Return when the reading may be stored; raise PayloadError with the reason otherwise."""
        try:
            if self.registry.refresh():
                self._last_registry_error = ""
        except RegistryError as exc:  # keep the last good registry rather than stop ingest
            if str(exc) != self._last_registry_error:  # once per problem, not once a second
                log.error("key registry not reloaded, still using the previous keys: %s", exc)
            self._last_registry_error = str(exc)
        if reading.sig is None or reading.kid is None:
            if reading.sig is not None or reading.kid is not None:
                raise PayloadError("bad_signature", "`sig` and `kid` must come together")
            if self._required(reading):
                raise PayloadError("unsigned", f"{reading.site}/{reading.node} must sign its readings")
            return
        record = self.registry.get(reading.kid)
        if record is None or (record.site, record.node) != (reading.site, reading.node):
            raise PayloadError(
                "unknown_key", f"key {reading.kid} is not registered for {reading.site}/{reading.node}"
            )
        if not record.accepts(reading.ts):
            when = record.since.isoformat() if record.since else "?"
            raise PayloadError("revoked_key", f"key {reading.kid} is {record.status.value} since {when}")
        if not verify_signature(record.public(), reading):
            raise PayloadError("bad_signature", f"signature does not match key {reading.kid}")

    def _required(self, reading: ReadingPayload) -> bool:
        if self.policy is RequireSignatures.ALWAYS:
            return True
        if self.policy is RequireSignatures.NEVER:
            return False
        return self.registry.has_node(reading.site, reading.node)


__all__ = ["KeyStatus", "RequireSignatures", "Verifier"]
