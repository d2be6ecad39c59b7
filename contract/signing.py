"""Ed25519 signatures over the canonical encoding of a reading (docs/protocol.md, "Signed readings").

The canonical form is a function of the reading's typed values, not of the bytes that travelled, so
it can be rebuilt from an InfluxDB row (where `12` and `12.0` are the same float) and re-verified
by anyone holding the public key. Both the node (to sign) and the gateway and `verify` (to check)
use these functions, so the two sides cannot drift apart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract.configfile import ConfigError
from contract.wire import ReadingPayload, format_ts

# cryptography is imported where a key is used, not here: loading it costs a gateway about 9 MB of
# memory (its Rust extension), which one that takes only unsigned readings never needs.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KID_PATTERN = r"^[0-9a-f]{16}$"


def canonical_doc(reading: ReadingPayload) -> dict[str, Any]:
    """The signed object: every field of the reading except `sig`, with `kid`; floats as floats."""
    metrics: dict[str, Any] = {}
    for metric, mv in reading.metrics.items():
        entry: dict[str, Any] = {"value": None if mv.value is None else float(mv.value), "n": int(mv.n)}
        if mv.raw is not None:
            entry["raw"] = float(mv.raw)
        if mv.cal is not None:
            entry["cal"] = mv.cal
        metrics[metric.value] = entry
    doc: dict[str, Any] = {
        "schema": 1,
        "site": reading.site,
        "node": reading.node,
        "seq": int(reading.seq),
        "ts": format_ts(reading.ts),
        "period_s": int(reading.period_s),
        "metrics": metrics,
        "flags": [f.value for f in reading.flags],
    }
    if reading.kid is not None:
        doc["kid"] = reading.kid
    return doc


# Built once, and without the check for cycles (the document is ours, and has none): both save a
# little of the gateway's time on each signed reading.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
)


def canonical_bytes(reading: ReadingPayload) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (non-ASCII not escaped), Python's shortest float repr."""
    return _CANONICAL.encode(canonical_doc(reading)).encode("utf-8")


# `"sig"` as the last member of what a node sends (`signed_wire`)
_SIG_OPEN = b',"sig":"'
_SIG_CLOSE = b'"}'


def signed_wire(canonical: bytes, sig_b64: str) -> bytes:
    """What a node sends for a signed reading: its canonical bytes with `"sig"` appended as the
    last member. Any JSON with the same values is as valid (docs/protocol.md, "Signed readings"):
    the gateway always checks the canonical form rebuilt from the values it parsed, because a
    check over the bytes as they came would also pass bytes a key holder signed that are not the
    canonical form, which no later verifier could reproduce from the stored values. This spelling
    only lets a reader of the message see the signed bytes verbatim."""
    return canonical[:-1] + _SIG_OPEN + sig_b64.encode("ascii") + _SIG_CLOSE


def key_id(public: Ed25519PublicKey) -> str:
    """First 8 bytes of SHA-256 of the raw 32-byte public key, as 16 lowercase hex digits."""
    from cryptography.hazmat.primitives import serialization

    return key_id_of_raw(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def key_id_of_raw(raw: bytes) -> str:
    """`key_id` of a raw 32-byte public key, without loading cryptography."""
    return hashlib.sha256(raw).hexdigest()[:16]


def public_b64(public: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_from_b64(text: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(raw_public_from_b64(text))


def raw_public_from_b64(text: str) -> bytes:
    """The raw 32-byte public key a registry record holds in base64; ValueError if it is not one.

    The checks `Ed25519PublicKey.from_public_bytes` makes (valid base64, 32 bytes), without loading
    cryptography: a gateway verifies with libsodium (gateway/trust/verifier.py)."""
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
    return raw


def signature_from_b64(text: str) -> bytes | None:
    """The raw signature of `sig`, or None unless `text` is its canonical base64 spelling.

    Only the canonical spelling: otherwise the padding bits of the last character could change and
    the "same" signature would verify under another text."""
    try:
        sig = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return sig if base64.b64encode(sig).decode("ascii") == text else None


@dataclass(frozen=True)
class Signer:
    """A node's private key; `sign` returns the reading with `kid` and `sig` set."""

    private: Ed25519PrivateKey

    @property
    def kid(self) -> str:
        return key_id(self.private.public_key())

    def sign(self, reading: ReadingPayload) -> ReadingPayload:
        unsigned = reading.model_copy(update={"kid": self.kid, "sig": None})
        sig = base64.b64encode(self.private.sign(canonical_bytes(unsigned))).decode("ascii")
        return unsigned.model_copy(update={"sig": sig})

    def sign_wire(self, reading: ReadingPayload) -> bytes:
        """The reading signed, as a node sends it (`signed_wire`): the same `kid` and `sig` as
        `sign`, with the canonical bytes built once."""
        canonical = canonical_bytes(reading.model_copy(update={"kid": self.kid, "sig": None}))
        return signed_wire(canonical, base64.b64encode(self.private.sign(canonical)).decode("ascii"))

    @classmethod
    def from_seed(cls, seed: bytes) -> Signer:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls) -> Signer:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        """Load a PKCS#8 PEM key; warn (as for every secret file) when others may read it."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
                print(f"warning: {path} is readable by other users; run: chmod 600 {path}", file=sys.stderr)
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the node's key: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigError(f"{path}: not a PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{path}: not an Ed25519 private key")
        return cls(key)

    def write(self, path: Path) -> None:
        from cryptography.hazmat.primitives import serialization

        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_secret(path, pem)


def write_secret(path: Path, data: bytes) -> None:
    """Create (or replace) a file only its owner can read, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def verify_signature(public: Ed25519PublicKey, reading: ReadingPayload) -> bool:
    """True when `reading.sig` is a valid signature of its canonical form under `public`."""
    return reading.sig is not None and verify_canonical(public, reading.sig, canonical_bytes(reading))


def verify_canonical(public: Ed25519PublicKey, sig_b64: str, canonical: bytes) -> bool:
    """True when `sig_b64` is a valid signature of `canonical` (a reading's `canonical_bytes`,
    built once by a caller that also stores them) under `public`."""
    from cryptography.exceptions import InvalidSignature

    sig = signature_from_b64(sig_b64)
    if sig is None:
        return False
    try:
        public.verify(sig, canonical)
    except (InvalidSignature, ValueError):
        return False
    return True
