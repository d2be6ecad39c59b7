"""The gateway's signature policy: refuse what is unsigned (when required), signed by a key we do
not know, by a revoked key, or whose signature does not match. Each refusal is a PayloadError, so
it takes the same path as any other refused message (counted, logged, kept as a reject).

The check itself is libsodium's (PyNaCl), over the same canonical bytes `contract.signing` defines:
it takes half the CPU of cryptography's (OpenSSL) per signature on the gateway's machine, and a
gateway that loads it instead of cryptography is about 6 MB smaller (docs/operations.md, "Signed
readings"). libsodium is the stricter of the two (it also refuses small-order and non-canonical
keys and points), so nothing OpenSSL refuses is accepted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from contract.signing import canonical_bytes, raw_public_from_b64, signature_from_b64
from contract.wire import PayloadError, ReadingPayload
from gateway.trust.registry import KeyRegistry, KeyStatus, RegistryError

log = logging.getLogger(__name__)


class RequireSignatures(StrEnum):
    AUTO = "auto"  # required from a node once any key was registered for it
    ALWAYS = "always"  # required from every node
    NEVER = "never"  # unsigned readings accepted; a signature present is still checked


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """One Ed25519 check left to do: the node's raw public key, the raw signature, and the reading
    whose canonical bytes it signs (built when the check runs, so a batch waiting for its checks
    does not hold them twice)."""

    public: bytes
    sig: bytes
    reading: ReadingPayload
    kid: str

    @property
    def message(self) -> bytes:
        return canonical_bytes(self.reading)

    def passes(self) -> bool:
        return sodium_verify(self.public, self.sig, self.message)


def sodium_verify(public: bytes, sig: bytes, message: bytes) -> bool:
    """libsodium's check, for the site's ingest and the hub's. Imported at the first call, as
    cryptography was: a gateway that takes only unsigned readings never loads it (about 1 MB);
    after that, one dict lookup, not an import."""
    sodium = _SODIUM or _load_sodium()
    try:
        sodium["open"](sig + message, public)
    except sodium["bad"]:
        return False
    return True


_SODIUM: dict[str, Any] = {}


def _load_sodium() -> dict[str, Any]:
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError

    _SODIUM.update(open=crypto_sign_open, bad=BadSignatureError)
    return _SODIUM


class Verifier:
    def __init__(self, registry: KeyRegistry, policy: RequireSignatures = RequireSignatures.AUTO) -> None:
        self.registry = registry
        self.policy = policy
        self._last_registry_error = ""
        self._raw: dict[str, bytes] = {}  # base64 public key -> raw bytes, decoded once per key

    def __call__(self, reading: ReadingPayload) -> None:
        """Return when the reading may be stored; raise PayloadError with the reason otherwise."""
        check = self.prepare(reading)
        if check is not None and not check.passes():
            raise PayloadError("bad_signature", f"signature does not match key {check.kid}")

    def prepare(self, reading: ReadingPayload) -> SignatureCheck | None:
        """Everything but the signature arithmetic: raise PayloadError for a reading the policy or
        the registry refuses; return the signature check to make, or None for an unsigned reading
        the policy accepts. The check may then run elsewhere (gateway/trust/checker.py)."""
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
            return None
        record = self.registry.get(reading.kid)
        if record is None or (record.site, record.node) != (reading.site, reading.node):
            raise PayloadError(
                "unknown_key", f"key {reading.kid} is not registered for {reading.site}/{reading.node}"
            )
        if not record.accepts(reading.ts):
            when = record.since.isoformat() if record.since else "?"
            raise PayloadError("revoked_key", f"key {reading.kid} is {record.status.value} since {when}")
        sig = signature_from_b64(reading.sig)
        if sig is None:
            raise PayloadError("bad_signature", f"signature does not match key {reading.kid}")
        public = self._raw.get(record.public_key)
        if public is None:
            public = self._raw[record.public_key] = raw_public_from_b64(record.public_key)
        return SignatureCheck(public, sig, reading, reading.kid)

    def _required(self, reading: ReadingPayload) -> bool:
        if self.policy is RequireSignatures.ALWAYS:
            return True
        if self.policy is RequireSignatures.NEVER:
            return False
        return self.registry.has_node(reading.site, reading.node)


__all__ = ["KeyStatus", "RequireSignatures", "SignatureCheck", "Verifier"]
