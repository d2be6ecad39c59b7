"""Check minewatch evidence with nothing but Python and `cryptography`: signed rows, key files, and
whole evidence bundles with their manifest and RFC 3161 time-stamp.

    python -m contract.verify_offline --bundle tsagaan-evidence.zip [--tsa-cert tsa.pem]
    python -m contract.verify_offline --keys keys.json --input export.csv

This file imports nothing of ours on purpose (stdlib and `cryptography` only): a regulator, a court's
expert or a journalist can read it whole, copy it alone (every evidence bundle carries a copy, as
`verify_offline.py`) and run it on a machine where minewatch was never installed. Its canonical form,
its CSV cell rule and its key rule repeat contract.signing, contract.csvcell and
gateway.trust.registry; tests/contract/test_verify_offline.py checks that they agree on generated
readings, so the two cannot drift apart unnoticed.

Every problem has a stable code (docs/trust.md, "What each verdict means") and a sentence naming the
file, row, node or key. Exit status: 0 no problem; 1 problems found (each listed); 2 unusable input;
3 (rows only) every signed row verified but some rows are unsigned.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import csv
import hashlib
import io
import itertools
import json
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BUNDLE_FORMAT = "minewatch-evidence"
MANIFEST = "manifest.json"
TIMESTAMP = "manifest.json.tsr"
VERIFIED = "verified"
UNSIGNED = "unsigned"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SIG = re.compile(r"^[A-Za-z0-9+/]{86}==$")
_KID = re.compile(r"^[0-9a-f]{16}$")


class Unusable(ValueError):
    """Input that cannot be checked at all (exit 2): the message names the file."""


@dataclass(frozen=True)
class Problem:
    """One finding: `code` is stable (docs/trust.md), `text` says where and what."""

    code: str
    text: str

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"


# ---- keys -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """A node's public key and when it may be trusted (gateway.trust.registry.KeyRecord)."""

    kid: str
    site: str
    node: str
    public_key: bytes
    status: str
    since: datetime | None

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.public_key).hexdigest()

    def trusts(self, ts: datetime, stored: datetime | None) -> bool:
        """Whether a reading signed with this key is evidence. `ts` is the signed reading time,
        `stored` the time the gateway stored it (column `received`), which no node can forge.

        active: always. retired (rotated, or the node decommissioned): readings with `ts` before
        `since`, as the gateway accepted them. revoked (compromised): readings the gateway stored
        before `since`; a row without a stored time is judged by its signed `ts`."""
        if self.status == "active":
            return True
        if self.since is None:
            return False
        if self.status == "retired":
            return ts < self.since
        if self.status == "revoked":
            return (stored if stored is not None else ts) < self.since
        return False


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def parse_keys(doc: Any, where: str) -> tuple[dict[str, Key], list[Problem]]:
    """A list of key records (the dashboard's /api/v1/keys, a bundle's keys.json) or one record."""
    records = doc.get("keys", doc) if isinstance(doc, dict) and "keys" in doc else doc
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list):
        raise Unusable(f"{where}: not a list of key records")
    keys: dict[str, Key] = {}
    problems: list[Problem] = []
    for i, rec in enumerate(records):
        try:
            raw = base64.b64decode(str(rec["public_key"]), validate=True)
            kid = str(rec["kid"])
            since = rec.get("since")
            key = Key(
                kid=kid,
                site=str(rec["site"]),
                node=str(rec["node"]),
                public_key=raw,
                status=str(rec.get("status", "active")),
                since=parse_time(since) if since else None,
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise Unusable(f"{where}: key record {i + 1} is not a key record: {exc}") from None
        if len(raw) != 32 or key_id(raw) != kid:
            problems.append(
                Problem(
                    "key_mismatch", f"{where}: key {kid} ({key.site}/{key.node}) is not the key of that id"
                )
            )
            continue
        keys[kid] = key
    return keys, problems


def load_keys(path: Path) -> tuple[dict[str, Key], list[Problem]]:
    """A directory of `<kid>.json` (the gateway's `keys/`) or one JSON file of records."""
    if path.is_dir():
        docs = []
        for file in sorted(path.glob("*.json")):
            docs.append(_json_file(file))
        return parse_keys(docs, str(path))
    return parse_keys(_json_file(path), str(path))


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise Unusable(f"{path}: cannot read JSON: {exc}") from None


# ---- rows -> canonical bytes ----------------------------------------------------------------------


def parse_time(value: Any) -> datetime:
    """RFC 3339 text, or an epoch number whose unit is told by its size (s, ms, µs or ns)."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        number = int(text)
        if abs(number) >= 10**17:
            return _EPOCH + timedelta(microseconds=number // 1000)
        if abs(number) >= 10**14:
            return _EPOCH + timedelta(microseconds=number)
        if abs(number) >= 10**11:
            return _EPOCH + timedelta(milliseconds=number)
        return _EPOCH + timedelta(seconds=number)
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _with_tags(row: Mapping[str, Any]) -> dict[str, Any]:
    """`influx -format csv` puts a grouped query's tags in one `tags` column: `node=a,site=b`."""
    out = dict(row)
    tags = row.get("tags")
    if isinstance(tags, str) and "=" in tags:
        for pair in tags.split(","):
            key, _, value = pair.partition("=")
            if _empty(out.get(key)):
                out[key] = value
    return out


def canonical_doc(row: Mapping[str, Any]) -> dict[str, Any]:
    """The signed object rebuilt from a stored row (docs/protocol.md, "Signed readings")."""
    metrics: dict[str, Any] = {}
    for column, n in row.items():
        if not column.endswith("_n") or _empty(n):
            continue
        name = column[:-2]
        entry: dict[str, Any] = {
            "value": None if _empty(row.get(name)) else float(row[name]),
            "n": int(float(n)),
        }
        if not _empty(row.get(f"{name}_raw")):
            entry["raw"] = float(row[f"{name}_raw"])
        if not _empty(row.get(f"{name}_cal")):
            entry["cal"] = str(row[f"{name}_cal"])
        metrics[name] = entry
    if not metrics:
        raise ValueError("no metric (<metric>_n) columns")
    flags = row.get("flags")
    doc: dict[str, Any] = {
        "schema": 1,
        "site": str(row["site"]),
        "node": str(row["node"]),
        "seq": int(float(row["seq"])),
        "ts": format_ts(parse_time(row.get("time", row.get("ts")))),
        "period_s": int(float(row["period_s"])),
        "metrics": metrics,
        "flags": [] if _empty(flags) else str(flags).split(","),
    }
    if not _empty(row.get("kid")):
        doc["kid"] = str(row["kid"])
    return doc


def canonical_bytes(doc: Mapping[str, Any]) -> bytes:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def verify_ed25519(public_key: bytes, signature_b64: str, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not _SIG.match(signature_b64):
        return False
    try:
        sig = base64.b64decode(signature_b64, validate=True)
        if base64.b64encode(sig).decode("ascii") != signature_b64:
            return False  # only the canonical spelling (contract.signing.verify_signature)
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def check_row(row: Mapping[str, Any], keys: Mapping[str, Key]) -> tuple[str, str]:
    """(outcome, detail) with the gateway's reasons: verified, unsigned, unknown_key, revoked_key,
    bad_signature, or bad_row (a row that is not a stored reading)."""
    row = _with_tags(row)
    sig, kid = row.get("sig"), row.get("kid")
    if _empty(sig) and _empty(kid):
        return UNSIGNED, "no signature"
    if _empty(sig) or _empty(kid):
        return "bad_signature", "`sig` and `kid` must come together"
    try:
        doc = canonical_doc(row)
        ts = parse_time(row.get("time", row.get("ts")))
        stored = None if _empty(row.get("received")) else parse_time(row["received"])
    except (KeyError, TypeError, ValueError) as exc:
        return "bad_row", f"not a stored reading: {exc}".splitlines()[0][:200]
    key = keys.get(str(kid))
    if key is None or (key.site, key.node) != (doc["site"], doc["node"]):
        return "unknown_key", f"key {kid} is not registered for {doc['site']}/{doc['node']}"
    if not key.trusts(ts, stored):
        return "revoked_key", f"key {kid} is {key.status} since {key.since and format_ts(key.since)}"
    if not verify_ed25519(key.public_key, str(sig), canonical_bytes(doc)):
        return "bad_signature", f"signature does not match key {kid}: a value, time or flag was changed"
    return VERIFIED, ""


@dataclass
class SeqTrack:
    """One node's `seq` as the rows go by, in constant memory: the count, the first and last, and
    every jump (consecutive rows whose seq is not one more: readings missing, or a restart)."""

    rows: int = 0
    first: int | None = None
    last: int | None = None
    jumps: list[list[int]] = field(default_factory=list)

    def add(self, seq: int) -> None:
        if self.last is not None and seq != self.last + 1:
            self.jumps.append([self.last, seq])
        if self.first is None:
            self.first = seq
        self.rows += 1
        self.last = seq

    def record(self) -> dict[str, Any]:
        return {"rows": self.rows, "first": self.first, "last": self.last, "jumps": self.jumps}


@dataclass
class RowReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    unsigned: Counter[str] = field(default_factory=Counter)  # site/node -> rows
    nodes: dict[str, SeqTrack] = field(default_factory=dict)  # site/node -> its seq, in row order
    failed: Counter[str] = field(default_factory=Counter)  # outcome -> rows not verified

    @property
    def rows(self) -> int:
        return sum(self.outcomes.values())

    def exit_status(self) -> int:
        """0 every row verified; 1 a row failed (or there are none); 3 the rest are unsigned."""
        if self.rows == 0 or any(o not in (VERIFIED, UNSIGNED) for o in self.outcomes):
            return 1
        return 3 if self.outcomes[UNSIGNED] else 0

    def summary(self) -> str:
        parts = ", ".join(f"{n} {o}" for o, n in self.outcomes.most_common())
        return f"{self.rows} rows: {parts or 'none'}"


def check_rows(
    rows: Iterable[Mapping[str, Any]], keys: Mapping[str, Key], *, where: str = "", max_listed: int = 10
) -> RowReport:
    """Check every row; an unsigned row is counted (per node), not listed as a failure. At most
    `max_listed` rows are listed per outcome, then how many more: a swapped key fails every row."""
    report = RowReport()
    for number, row in enumerate(rows, start=1):
        outcome, detail = check_row(row, keys)
        report.outcomes[outcome] += 1
        ident = f"{row.get('site', '?')}/{row.get('node', '?')}"
        if outcome == UNSIGNED:
            report.unsigned[ident] += 1
        elif outcome != VERIFIED:
            if report.failed[outcome] < max_listed:
                at = f"{where}row {number} ({ident} seq {row.get('seq', '?')})"
                report.problems.append(Problem(outcome, f"{at}: {detail}"))
            report.failed[outcome] += 1
        with contextlib.suppress(TypeError, ValueError):  # a bad row was counted above
            report.nodes.setdefault(ident, SeqTrack()).add(int(float(row.get("seq") or 0)))
    for outcome, n in sorted(report.failed.items()):
        if n > max_listed:
            report.problems.append(Problem(outcome, f"{where}and {n - max_listed} more rows ({n} in all)"))
    return report


def restore_cell(text: str) -> str:
    """The stored text of a CSV cell written by contract.csvcell (a leading `'` before a formula)."""
    if text.startswith("'") and _is_formula(text[1:].lstrip("'")):
        return text[1:]
    return text


def _is_formula(text: str) -> bool:
    return text.startswith(_FORMULA_PREFIXES) and not _NUMBER.fullmatch(text)


REQUIRED_COLUMNS = ("site", "node", "seq", "period_s", "flags", "sig", "kid")


def read_rows(source: str | Iterable[str], where: str) -> Iterator[dict[str, Any]]:
    """The rows of a CSV export (ours, the dashboard's, or `influx -format csv`) or of JSON Lines,
    from a text or from lines as they are read (a file opened with newline="")."""
    lines = iter(io.StringIO(source, newline="") if isinstance(source, str) else source)
    first = next(lines, "")
    lines = itertools.chain([first], lines)
    if first.lstrip().startswith("{"):
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    doc = json.loads(line)
                except ValueError as exc:
                    raise Unusable(f"{where}: line {number} is not JSON: {exc}") from None
                yield doc
        return
    reader = csv.DictReader(lines)
    header = set(reader.fieldnames or [])
    missing = sorted(c for c in REQUIRED_COLUMNS if c not in header)
    if not header & {"time", "ts"}:
        missing.insert(0, "time")
    if missing:
        raise Unusable(
            f"{where}: no column(s) {', '.join(missing)}: a signature covers every field of a reading, "
            "so the file must hold them all (docs/trust.md, 'Verifying')"
        )
    for row in reader:
        yield {k: restore_cell(v) if isinstance(v, str) else v for k, v in row.items()}


def read_rows_file(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a file, read as they are checked: a year of minute data never sits in memory."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise Unusable(f"{path}: cannot read: {exc}") from None
    with handle:
        try:
            yield from read_rows(handle, str(path))
        except UnicodeDecodeError as exc:
            raise Unusable(f"{path}: not UTF-8 text: {exc}") from None


# ---- RFC 3161 time-stamps (a minimal DER reader: cryptography parses certificates, not CMS) ----


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at `pos`."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, value start, value end) of each element inside [start, end)."""
    out = []
    pos = start
    while pos < end:
        tag, vstart, vend = _tlv(data, pos)
        out.append((tag, pos, vstart, vend))
        pos = vend
    return out


def _oid(value: bytes) -> str:
    parts = [value[0] // 40, value[0] % 40]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(map(str, parts))


_HASHES = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "1.3.14.3.2.26": "sha1",
}
_SIGNED_DATA = "1.2.840.113549.1.7.2"
_TST_INFO = "1.2.840.113549.1.9.16.1.4"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"


@dataclass(frozen=True)
class TimeStamp:
    time: datetime
    tsa_subject: str
    tsa_fingerprint: str  # SHA-256 of the TSA certificate (DER)


def _alg(data: bytes, start: int, end: int) -> str:
    (_, _, vs, ve) = _children(data, start, end)[0]
    return _oid(data[vs:ve])


def check_timestamp(response: bytes, message: bytes, trusted: list[bytes] | None = None) -> TimeStamp:
    """Verify an RFC 3161 TimeStampResp over `message`; ValueError says what does not hold.
    `trusted`: DER certificates of the TSA (or its CA) to accept; None accepts any TSA certificate
    (the caller reports which one signed)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        _, rs, re_ = _tlv(response, 0)
        resp = _children(response, rs, re_)
        status = _children(response, resp[0][2], resp[0][3])
        if int.from_bytes(response[status[0][2] : status[0][3]], "big") not in (0, 1):
            raise ValueError("the TSA did not grant the time-stamp")
        if len(resp) < 2:
            raise ValueError("no time-stamp token in the response")
        token = _children(response, resp[1][2], resp[1][3])
        if _oid(response[token[0][2] : token[0][3]]) != _SIGNED_DATA:
            raise ValueError("the token is not CMS SignedData")
        (_, _, ss, se) = _children(response, token[1][2], token[1][3])[0]
        signed = _children(response, ss, se)
        encap = _children(response, signed[2][2], signed[2][3])
        if _oid(response[encap[0][2] : encap[0][3]]) != _TST_INFO:
            raise ValueError("the token does not hold a TSTInfo")
        (_, _, os_, oe) = _children(response, encap[1][2], encap[1][3])[0]
        tst = response[os_:oe]
        tst_items = _children(tst, *_tlv(tst, 0)[1:])
        imprint = _children(tst, tst_items[2][2], tst_items[2][3])
        algorithm = _HASHES.get(_alg(tst, imprint[0][2], imprint[0][3]))
        if algorithm is None:
            raise ValueError("unknown hash algorithm in the time-stamp")
        if tst[imprint[1][2] : imprint[1][3]] != hashlib.new(algorithm, message).digest():
            raise ValueError("the time-stamp is for other content: the manifest was changed after stamping")
        gen = tst[tst_items[4][2] : tst_items[4][3]].decode("ascii")
        when = datetime.strptime(gen.split(".")[0].rstrip("Z"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        holder = next((x for x in signed if x[0] == 0xA0), None)  # [0] IMPLICIT certificates
        certs = []
        if holder is not None:
            for _, cs, _, ce in _children(response, holder[2], holder[3]):
                certs.append(x509.load_der_x509_certificate(response[cs:ce]))
        signer_infos = next(x for x in reversed(signed) if x[0] == 0x31)
        info = _children(response, signer_infos[2], signer_infos[3])[0]
        parts = _children(response, info[2], info[3])
        digest_alg = _HASHES.get(_alg(response, parts[2][2], parts[2][3]))
        attrs = next((p for p in parts if p[0] == 0xA0), None)
        if attrs is None or digest_alg is None:
            raise ValueError("the token's signature has no signed attributes")
        digest = None
        for _, _, a_s, a_e in _children(response, attrs[2], attrs[3]):
            attr = _children(response, a_s, a_e)
            if _oid(response[attr[0][2] : attr[0][3]]) == _MESSAGE_DIGEST:
                (_, _, ds, de) = _children(response, attr[1][2], attr[1][3])[0]
                digest = response[ds:de]
        if digest != hashlib.new(digest_alg, tst).digest():
            raise ValueError("the token's signed digest is not that of its time-stamp info")
        signed_attrs = b"\x31" + response[attrs[1] + 1 : attrs[3]]  # [0] IMPLICIT -> SET OF, as signed
        signature = next(response[s:e] for tag, _, s, e in reversed(parts) if tag == 0x04)
    except (IndexError, StopIteration, UnicodeDecodeError) as exc:
        raise ValueError(f"not an RFC 3161 time-stamp response ({exc})") from None
    hash_alg: hashes.HashAlgorithm = {
        "sha256": hashes.SHA256(),
        "sha384": hashes.SHA384(),
        "sha512": hashes.SHA512(),
        "sha1": hashes.SHA1(),
    }[digest_alg]
    for cert in certs:
        public = cert.public_key()
        try:
            if isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, signed_attrs, padding.PKCS1v15(), hash_alg)
            elif isinstance(public, ec.EllipticCurvePublicKey):
                public.verify(signature, signed_attrs, ec.ECDSA(hash_alg))
            else:
                continue
        except InvalidSignature:
            continue
        if trusted is not None and not _is_trusted(cert, trusted):
            raise ValueError(f"signed by {cert.subject.rfc4514_string()}, which is not the trusted TSA")
        fingerprint = hashlib.sha256(cert.public_bytes(_der())).hexdigest()
        return TimeStamp(when, cert.subject.rfc4514_string(), fingerprint)
    raise ValueError("the time-stamp's signature does not verify with the TSA certificate it carries")


def _der() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def _is_trusted(cert: Any, trusted: list[bytes]) -> bool:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    if cert.public_bytes(_der()) in trusted:
        return True
    for der in trusted:
        try:
            cert.verify_directly_issued_by(x509.load_der_x509_certificate(der))
            return True
        except (ValueError, TypeError, InvalidSignature):  # not its issuer
            continue
    return False


def load_certificates(path: Path) -> list[bytes]:
    """PEM or DER certificates of a trusted TSA (or its CA), as DER."""
    from cryptography import x509

    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return [c.public_bytes(_der()) for c in x509.load_pem_x509_certificates(data)]
        return [x509.load_der_x509_certificate(data).public_bytes(_der())]
    except ValueError as exc:
        raise Unusable(f"{path}: not a certificate: {exc}") from None


# ---- bundles --------------------------------------------------------------------------------------


@dataclass
class BundleReport:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: RowReport | None = None


def check_bundle(path: Path, trusted_tsa: list[bytes] | None = None) -> BundleReport:
    """Every check a bundle allows, offline: each file against the manifest, the keys, every row's
    signature, `seq` against the gaps the manifest recorded, and the time-stamp."""
    out = BundleReport()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise Unusable(f"{path}: not a readable evidence bundle (zip): {exc}") from None
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            raise Unusable(f"{path}: no {MANIFEST}: not a minewatch evidence bundle")
        manifest_bytes = archive.read(MANIFEST)
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError as exc:
            raise Unusable(f"{path}: {MANIFEST} is not JSON: {exc}") from None
        if manifest.get("format") != BUNDLE_FORMAT:
            raise Unusable(f"{path}: {MANIFEST} is not a {BUNDLE_FORMAT} manifest")
        listed = {f["path"]: f for f in manifest.get("files", [])}
        present = set()
        for name, entry in sorted(listed.items()):
            if name not in names:
                out.problems.append(
                    Problem("file_missing", f"{name}: listed in the manifest, not in the bundle")
                )
                continue
            present.add(name)
            digest = hashlib.sha256()
            with archive.open(name) as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != entry.get("sha256"):
                out.problems.append(
                    Problem(
                        "file_changed", f"{name}: its SHA-256 does not match the manifest: it was changed"
                    )
                )
        for name in sorted(names - set(listed) - {MANIFEST, TIMESTAMP}):
            if not name.endswith("/"):
                out.problems.append(
                    Problem("file_unlisted", f"{name}: in the bundle but not in the manifest")
                )
        _check_stamp(
            out,
            manifest,
            manifest_bytes,
            archive.read(TIMESTAMP) if TIMESTAMP in names else None,
            trusted_tsa,
        )
        keys_name, rows_name = manifest.get("keys", "keys.json"), manifest.get("readings", "readings.csv")
        if keys_name not in present or rows_name not in present:
            out.problems.append(Problem("file_missing", f"{keys_name} or {rows_name}: nothing to verify"))
            return out
        try:
            keys, key_problems = parse_keys(json.loads(archive.read(keys_name)), keys_name)
        except ValueError as exc:
            out.problems.append(Problem("key_mismatch", f"{keys_name}: {exc}"))
            return out
        out.problems += key_problems
        recorded = {k["kid"]: k.get("fingerprint") for k in manifest.get("key_fingerprints", [])}
        for kid, key in sorted(keys.items()):
            if kid in recorded and recorded[kid] != key.fingerprint:
                out.problems.append(
                    Problem("key_mismatch", f"{keys_name}: key {kid} is not the key the manifest names")
                )
            out.notes.append(
                f"key {kid} of {key.site}/{key.node}: {key.status}"
                f"{' since ' + format_ts(key.since) if key.since else ''}, SHA-256 {key.fingerprint}"
            )
        try:
            with archive.open(rows_name) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                rows = check_rows(read_rows(text, rows_name), keys, where=f"{rows_name} ")
        except (Unusable, UnicodeDecodeError) as exc:
            out.problems.append(Problem("bad_row", str(exc)))
            return out
    out.rows = rows
    out.problems += rows.problems
    for ident, n in sorted(rows.unsigned.items()):
        out.problems.append(Problem(UNSIGNED, f"{rows_name}: {n} rows of {ident} carry no signature"))
    _check_seq(out, manifest, rows, rows_name)
    return out


def _check_stamp(
    out: BundleReport, manifest: dict[str, Any], data: bytes, token: bytes | None, trusted: list[bytes] | None
) -> None:
    if token is None:
        if manifest.get("tsa"):
            out.problems.append(
                Problem(
                    "timestamp_missing", f"{MANIFEST} names TSA {manifest['tsa']} but {TIMESTAMP} is absent"
                )
            )
        else:
            out.notes.append("not time-stamped: nothing proves when the bundle was made")
        return
    try:
        stamp = check_timestamp(token, data, trusted)
    except ValueError as exc:
        out.problems.append(Problem("timestamp_invalid", f"{TIMESTAMP}: {exc}"))
        return
    out.notes.append(
        f"time-stamped {format_ts(stamp.time)} by {stamp.tsa_subject} "
        f"(certificate SHA-256 {stamp.tsa_fingerprint})"
    )


def _check_seq(out: BundleReport, manifest: dict[str, Any], rows: RowReport, rows_name: str) -> None:
    """Every `seq` jump the manifest did not record: forward, rows were deleted; back or repeated,
    a row was inserted (the manifest records the node's real gaps and restarts)."""
    recorded = manifest.get("seq", {})
    for ident, track in sorted(rows.nodes.items()):
        known = {tuple(j) for j in recorded.get(ident, {}).get("jumps", [])}
        for after, before in track.jumps:
            if (after, before) in known:
                what = f"{before - after - 1} readings never stored" if before > after else "it restarted"
                out.notes.append(f"{ident}: seq {after} to {before}: {what}")
            elif before > after:
                out.problems.append(
                    Problem(
                        "seq_gap",
                        f"{rows_name}: {ident} jumps from seq {after} to {before}: "
                        f"{before - after - 1} rows deleted since the bundle was made",
                    )
                )
            else:
                out.problems.append(
                    Problem("seq_repeat", f"{rows_name}: {ident} goes from seq {after} back to {before}")
                )
        expected = recorded.get(ident, {}).get("rows")
        if expected is not None and expected != track.rows:
            out.problems.append(
                Problem(
                    "row_count",
                    f"{rows_name}: {ident} has {track.rows} rows; the manifest recorded {expected}",
                )
            )
    for ident in sorted(set(recorded) - set(rows.nodes)):
        out.problems.append(
            Problem("row_count", f"{rows_name}: no rows of {ident}; the manifest recorded some")
        )


# ---- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_offline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, help="an evidence bundle (zip)")
    parser.add_argument("--tsa-cert", type=Path, help="the TSA's (or its CA's) certificate to trust")
    parser.add_argument("--keys", type=Path, help="with --input: keys.json or a keys/ directory")
    parser.add_argument("--input", type=Path, help="with --keys: a CSV or JSON Lines export")
    args = parser.parse_args(argv)
    try:
        if args.bundle is not None:
            trusted = load_certificates(args.tsa_cert) if args.tsa_cert else None
            report = check_bundle(args.bundle, trusted)
            for note in report.notes:
                print(f"note: {note}")
            for problem in report.problems:
                print(problem)
            if report.rows is not None:
                print(report.rows.summary())
            print(
                "bundle verified: no problem found"
                if not report.problems
                else f"bundle NOT verified: {len(report.problems)} problem(s)"
            )
            return 1 if report.problems else 0
        if args.keys is None or args.input is None:
            parser.error("give --bundle FILE, or --keys and --input")
        keys, problems = load_keys(args.keys)
        rows = check_rows(read_rows_file(args.input), keys)
        for problem in [*problems, *rows.problems]:
            print(problem)
        for ident, n in sorted(rows.unsigned.items()):
            print(f"{UNSIGNED}: {n} rows of {ident} carry no signature")
        print(rows.summary())
        return 1 if problems else rows.exit_status()
    except Unusable as exc:
        print(f"verify_offline: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
