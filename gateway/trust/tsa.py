"""Asking an RFC 3161 time-stamping authority to stamp a digest, over plain HTTP(S).

The request is a dozen bytes of DER written here (version, SHA-256 message imprint, a nonce, and
certReq so the token carries the TSA's certificate for offline checking); the answer is checked at
once with contract.verify_offline, the same code a regulator later runs, so a bundle never carries
a time-stamp that would not verify.
"""

from __future__ import annotations

import hashlib
import secrets
import urllib.error
import urllib.request

from contract import verify_offline

_SHA256 = bytes.fromhex("0609608648016503040201")  # OID 2.16.840.1.101.3.4.2.1


class TsaError(OSError):
    """The TSA could not be reached or gave no valid time-stamp (exit 1: try again later)."""


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def request(data: bytes) -> bytes:
    """A DER TimeStampReq for the SHA-256 of `data` (RFC 3161 section 2.4.1)."""
    algorithm = _der(0x30, _SHA256 + b"\x05\x00")
    imprint = _der(0x30, algorithm + _der(0x04, hashlib.sha256(data).digest()))
    nonce = _der(0x02, b"\x01" + secrets.token_bytes(8))  # positive, 9 bytes
    return _der(0x30, b"\x02\x01\x01" + imprint + nonce + b"\x01\x01\xff")


def stamp(url: str, data: bytes, timeout_s: float = 30.0) -> tuple[bytes, verify_offline.TimeStamp]:
    """The TSA's TimeStampResp over `data`, verified; TsaError says what went wrong."""
    req = urllib.request.Request(
        url, data=request(data), headers={"Content-Type": "application/timestamp-query"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            answer: bytes = resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise TsaError(f"--tsa {url}: no time-stamp: {exc}") from exc
    try:
        return answer, verify_offline.check_timestamp(answer, data)
    except ValueError as exc:
        raise TsaError(f"--tsa {url}: the answer is not a valid time-stamp of the manifest: {exc}") from exc
