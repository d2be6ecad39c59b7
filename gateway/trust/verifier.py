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

from contract.signing import canonical_bytes, raw_public_from_b64, sent_canonical, signature_from_b64
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
    does not hold them twice).

    `sent` is the payload as received when it may be the canonical form with `"sig"` appended
    (`contract.signing.signed_wire`, what minewatch-node sends): then the check is first made over
    those bytes, cut out of the payload when it runs, and the canonical form is rebuilt from the
    values only if that fails (another spelling, key order or whitespace). Rebuilding it cost
    10-45 µs a reading, about a third of what a signature added (docs/operations.md, "Ingest
    benchmark")."""

    public: bytes
    sig: bytes
    reading: ReadingPayload
    kid: str
    sent: bytes | None = None

    @property
    def message(self) -> bytes:
        """The bytes to check first: the payload's own when it may be canonical, else rebuilt."""
        if self.sent is not None and self.reading.sig is not None:
            cut = sent_canonical(self.sent, self.reading.sig)
            if cut is not None:
                return cut
        return canonical_bytes(self.reading)

    def passes(self) -> bool:
        message = self.message
        return sodium_verify(self.public, self.sig, message) or self.passes_rebuilt(message)

    def passes_rebuilt(self, tried: bytes | None = None) -> bool:
        """The check over the canonical form rebuilt from the values, unless `tried` (the bytes a
        first check failed on) already was it: a bad signature costs one check, not two."""
        if self.sent is None:
            return False  # `message` was the rebuilt form
        rebuilt = canonical_bytes(self.reading)
        return rebuilt != tried and sodium_verify(self.public, self.sig, rebuilt)


def sodium_verify(public: bytes, sig: bytes, message: bytes) -> bool:
    """libsodium's check, for the site's ingest and the hub's. Imported at the first call, as
    cryptography was: a gateway that takes only unsigned readings never loads it (about 1 MB);
    after that, one dict lookup, not an import."""
    sodium = _SODIUM or _load_sodium()
    signed = sig + message
    # `crypto_sign_open` with no buffer for the message (libsodium allows NULL): only the verdict
    return bool(sodium["open"](sodium["null"], sodium["null"], signed, len(signed), public) == 0)


_SODIUM: dict[str, Any] = {}


def _load_sodium() -> dict[str, Any]:
    """PyNaCl's compiled libsodium alone, not `nacl.bindings`: its two dozen modules of wrappers
    cost the gateway 0.3 MB more, and the wrapper a buffer and a copy of each message."""
    from nacl._sodium import ffi, lib  # type: ignore[import-not-found]  # the compiled module has no stubs

    if lib.sodium_init() < 0:  # what nacl.bindings does on import; 1 when already done
        raise RuntimeError("libsodium could not be initialised")
    _SODIUM.update(open=lib.crypto_sign_open, null=ffi.NULL)
    return _SODIUM


class Verifier:
    def __init__(self, registry: KeyRegistry, policy: RequireSignatures = RequireSignatures.AUTO) -> None:
        self.registry = registry
        self.policy = policy
        self._last_registry_error = ""
        self._raw: dict[str, bytes] = {}  # base64 public key -> raw bytes, decoded once per key

    def __call__(self, reading: ReadingPayload, payload: bytes | None = None) -> None:
        """Return when the reading may be stored; raise PayloadError with the reason otherwise."""
        check = self.prepare(reading, payload)
        if check is not None and not check.passes():
            raise PayloadError("bad_signature", f"signature does not match key {check.kid}")

    def prepare(self, reading: ReadingPayload, payload: bytes | None = None) -> SignatureCheck | None:
        """Everything but the signature arithmetic: raise PayloadError for a reading the policy or
        the registry refuses; return the signature check to make, or None for an unsigned reading
        the policy accepts. The check may then run elsewhere (gateway/trust/checker.py).

        `payload` is the message the reading was parsed from (gateway/validate.py), when it is
        at hand: the check may then be made over its own bytes (`SignatureCheck.sent`)."""
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
        return SignatureCheck(public, sig, reading, reading.kid, payload)

    def _required(self, reading: ReadingPayload) -> bool:
        if self.policy is RequireSignatures.ALWAYS:
            return True
        if self.policy is RequireSignatures.NEVER:
            return False
        return self.registry.has_node(reading.site, reading.node)


__all__ = ["KeyStatus", "RequireSignatures", "SignatureCheck", "Verifier"]
