"""The gateway's strict parse of a reading message: bytes and topic in, a ReadingPayload or a reason out.

The models are the contract's (contract/wire.py); the parse lives here because only the gateway
parses readings, and jiter, its parser, is a gateway dependency a node never needs.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import jiter

from contract.wire import (
    DEFAULT_CLOCK_TOLERANCE_S,
    EARLIEST_TS,
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    PayloadError,
    ReadingPayload,
    TopicKind,
    format_ts,
    parse_topic,
)


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen = dict(pairs)  # in C; the loop below runs only for a payload that has a duplicate
    if len(seen) != len(pairs):
        keys: set[str] = set()
        for key, _ in pairs:
            if key in keys:
                raise PayloadError("duplicate_key", f"key {key!r} appears twice")
            keys.add(key)
    return seen


def _refuse_constant(name: str) -> Any:
    raise PayloadError("not_finite", f"{name} is not a number JSON allows")


# The stdlib parser, built once (`json.loads` with hooks builds a new decoder on every call): it
# only explains a payload jiter refused, so that NaN and duplicate keys keep their own reasons.
_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse_constant)


def _decode(payload: bytes) -> Any:
    """The payload's JSON, refusing duplicate keys and NaN/Infinity.

    jiter (pydantic's parser, in Rust) refuses both itself and parses a PMS5003 reading in half the
    time the stdlib parser with a duplicate-key hook takes (docs/operations.md, "Ingest benchmark").
    Its errors do not say which rule a payload broke, so a refused payload is parsed again by the
    stdlib parser to find the reason; that costs only the rare bad message."""
    try:
        return jiter.from_json(payload, allow_inf_nan=False, catch_duplicate_keys=True)
    except ValueError as exc:
        refusal = str(exc)
    try:
        _DECODER.decode(payload.decode("utf-8"))
    except PayloadError:
        raise
    except (ValueError, RecursionError) as exc:
        raise PayloadError("not_json", str(exc)[:200]) from None
    # What only jiter refuses: a lone surrogate escape such as "\ud800", which no UTF-8 writer
    # can encode, and nesting deeper than 200
    raise PayloadError("not_json", refusal[:200])


def parse_reading(
    topic_text: str,
    payload: bytes,
    prefix: str = "minewatch",
    *,
    now: datetime | None = None,
    clock_tolerance_s: float = DEFAULT_CLOCK_TOLERANCE_S,
) -> ReadingPayload:
    """Validate one MQTT message against the contract, or raise PayloadError with a reason key.

    `ts` is never before 2000-01-01 and, when `now` is given (the gateway passes its clock), at most
    `clock_tolerance_s` after it. A node with a wrong clock would otherwise write points where no one
    looks or, worse, over another day's data. Without `now` (re-checking an export, tools) there is
    no upper bound."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        site, node, kind = parse_topic(prefix, topic_text)
    except ValueError as exc:
        raise PayloadError("bad_topic", str(exc)) from None
    if kind is not TopicKind.READING:
        raise PayloadError("bad_topic", f"{topic_text!r} is not a reading topic")
    try:
        if not payload.isascii():  # ASCII is UTF-8, and the test is a scan without a copy
            payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("not_utf8", str(exc)) from None
    doc = _decode(payload)
    if not isinstance(doc, dict):
        raise PayloadError("not_object", f"top level is {type(doc).__name__}")
    if doc.get("schema") != SCHEMA_VERSION or isinstance(doc.get("schema"), bool):
        raise PayloadError("bad_schema_version", f"schema {doc.get('schema')!r} is not 1")
    try:
        reading = ReadingPayload.model_validate(doc)
    except ValueError as exc:
        # A number too large for a float (1e400) parses as infinity, which the model refuses
        # (allow_inf_nan=False) as it refuses NaN: the same reason as the NaN and Infinity literals.
        errors = getattr(exc, "errors", None)
        finite = callable(errors) and errors()[0].get("type") == "finite_number"
        raise PayloadError("not_finite" if finite else "invalid", _first_error(exc)) from None
    _share_fields_set(reading)
    if reading.ts < EARLIEST_TS:
        raise PayloadError("ts_too_old", f"ts {format_ts(reading.ts)} is before 2000")
    if now is not None and reading.ts > now + timedelta(seconds=clock_tolerance_s):
        raise PayloadError(
            "ts_in_future",
            f"ts {format_ts(reading.ts)} is more than {clock_tolerance_s:g} s ahead of the gateway",
        )
    if (reading.site, reading.node) != (site, node):
        raise PayloadError(
            "topic_mismatch",
            f"payload says {reading.site}/{reading.node}, topic says {site}/{node}",
        )
    return reading


_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


def _share_fields_set(reading: ReadingPayload) -> None:
    """Give the reading the one set of field names every reading of its shape has.

    pydantic keeps, per instance, the set of the fields the input named: 728 bytes for a signed
    reading, a fifth of one in memory while its batch waits to be written (0.7 MB a batch of
    1,000; docs/operations.md, "Ingest benchmark"). A ReadingPayload is frozen, so the set is never
    changed in place (`model_copy` copies it before adding to it), and one set per shape can be
    shared: there are at most eight (`flags`, `kid` and `sig` may be absent)."""
    fields = reading.__pydantic_fields_set__
    shared = _FIELDS_SETS.setdefault(frozenset(fields), fields)
    if shared is not fields:
        object.__setattr__(reading, "__pydantic_fields_set__", shared)


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
    return str(exc)
