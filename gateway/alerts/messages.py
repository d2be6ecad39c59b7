"""Alert sentences, rendered at the edge: an event carries a message id and its parameters, and each
reader (a channel, a page) turns them into words from its language's file (contract/i18n/).

The parameters are raw values (numbers, metric names, RFC 3339 times, category keys), never words,
so a stored event renders the same in any language ten years on; the English rendering is also
stored, as `message`, for readers that know no ids (and for events stored before there were ids).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from contract.figures import Comparison, decimals_of, figure, limit_text
from contract.i18n import Texts
from contract.metrics import spec
from contract.metrics import unit as metric_unit
from contract.wire import format_ts
from gateway.alerts.events import AlertEvent
from gateway.standards import STANDARDS

EN = Texts("en")
COMMON = (
    "node",
    "site",
    "metric",
    "average",
    "state",
    "late",
    "started",
    "value",
    "limit",
    "peak",
    "acked_by",
)
"""The event's own parameters every message gets; a rule kind adds its own (`RuleBase.message`)."""


def params_of(e: AlertEvent) -> dict[str, Any]:
    """The parameters every message of this event has, before the rule kind adds its own."""
    return {
        "node": e.node,
        "site": e.site,
        "metric": e.metric,
        "average": e.average,
        "state": e.state,
        "late": e.late,
        "started": format_ts(e.started),
        "ended": format_ts(e.ended) if e.ended is not None else None,
        "value": e.value,
        "limit": e.limit,
        "peak": e.peak,
        "acked_by": e.acked_by,
    }


def _amount(
    t: Texts, value: float | None, metric: str, limit: float | None = None, comparison: Comparison = "above"
) -> str:
    """A value with its metric's decimals, and more when it is compared with `limit` and fewer
    would hide which side of it the value is on (contract/figures.py): the report and the pages
    write the same value the same way."""
    if value is None:
        return t("alert.no_value")
    decimals = decimals_of(metric)
    number = limit_text(value, decimals) if limit is None else figure(value, decimals, limit, comparison)
    # The unit as the pages write it (`Texts.unit`): the metric table's symbol, or the reader's
    # words for a unit made of words (particle counts), which the symbol would leave in English.
    symbol = t.unit(metric) if spec(metric) else metric_unit(metric)
    return t("alert.value", number=number, unit=symbol).strip()


def _what(t: Texts, metric: str, average: str) -> str:
    if average in ("instant", "nowcast"):
        return t(f"alert.what.{average}", metric=t.short(metric))
    unit = average[-1]
    period = t(f"alert.period.{unit}") if t.has(f"alert.period.{unit}") else unit
    return t("alert.what.mean", metric=t.short(metric), n=average.rstrip("smhdwy"), period=period)


def _instant(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _since(t: Texts, started: str, dated: bool) -> str:
    """A parameter's RFC 3339 UTC time as the reader reads it: local, with the zone (`Texts.time`)."""
    return t.time(_instant(started), dated=dated)


KNOWN_STANDARDS = (*STANDARDS, "us-epa-aqi")
"""The standards a message names in the reader's language: the presets' (gateway/standards.py) and
the US EPA AQI the NowCast rules cite."""


def _by_name() -> dict[str, str]:
    """Every name a rule may give a known standard (its key, its English name in a sentence or on
    the pages: what presets write and events store, "US EPA NAAQS"), casefolded, to its key."""
    names: dict[str, str] = {}
    for key in KNOWN_STANDARDS:
        for name in (key, EN(f"alert.standard.{key}"), EN(f"standard_name.{key}")):
            names[name.casefold()] = key
    return names


_STANDARD_KEYS = _by_name()


def standard_key(standard: str) -> str | None:
    """The key of a standard a rule (or a stored event) names, if it is one we translate."""
    return _STANDARD_KEYS.get(standard.strip().casefold())


def _source(t: Texts, standard: object) -> str:
    """The limit's source inside a sentence: a known standard by the reader's name for it; a rule's
    own words ("site action level") as written; none: the plain limit."""
    if not standard:
        return t("alert.source.none")
    key = standard_key(str(standard))
    if key is None:
        return t("alert.source.standard", standard=standard)
    return t("alert.source.known", standard=t(f"alert.standard.{key}"))


def standard_name(t: Texts, standard: str) -> str:
    """A standard's full name in the reader's language (`[standard_name]`, as the pages write it),
    or as the rule wrote it when it is not one we know."""
    key = standard_key(standard)
    return t(f"standard_name.{key}") if key is not None else standard


def _words(t: Texts, p: Mapping[str, Any], msg_id: str = "") -> dict[str, Any]:
    """Every placeholder a message may use, from the parameters."""
    metric = str(p["metric"])
    value = p.get("value")
    limit = p.get("limit")
    comparison: Comparison = "below" if msg_id.endswith(".below") else "above"
    category, standard = p.get("category"), p.get("standard")
    threshold = p.get("threshold")
    is_level = category is not None and t.has(f"alert.category.{category}") and value is not None
    return {
        **p,
        "where": t("alert.where", node=t.node_name(p["site"], p["node"]), site=t.site_name(p["site"])),
        "since": _since(t, str(p["started"]), bool(p.get("late")) or p.get("state") != "raised"),
        # when the exceedance ended (the first reading back within), as the report and the API say
        "until": _since(t, str(p["ended"]), True) if p.get("ended") else "—",
        "what": _what(t, metric, str(p["average"])),
        "value": _amount(t, value, metric, limit, comparison),
        "limit": _amount(t, limit, metric),
        "peak": _amount(t, p.get("peak"), metric, limit, comparison),
        "source": _source(t, standard),
        "threshold": t(f"alert.category.{threshold}") if threshold else "",
        "level": (
            t("alert.nowcast.level", category=t(f"alert.category.{category}"), aqi=p.get("aqi"))
            if is_level
            else t("alert.nowcast.level_unknown")
        ),
        "ago": t.ago(float(value) * 60) if value is not None else "",  # offline: value is minutes
        # a difference rule's upstream node, by its name as the node itself is
        "reference": t.node_name(str(p["site"]), str(p["reference"])) if p.get("reference") else "",
        "sensor": (
            t("alert.sensor_fault.any_sensor")
            if metric == "any"
            else t("alert.sensor_fault.one_sensor", metric=t.short(metric))
        ),
    }


def render(msg_id: str, params: Mapping[str, Any], t: Texts) -> str:
    """The one line a monitor reads, on a phone, in an email subject or a Telegram message."""
    words = _words(t, params, msg_id)
    text = t(msg_id, **words)
    state = params.get("state")
    if state == "reminder":
        text = t(
            "alert.reminder_no_peak" if params["metric"] == "status" else "alert.reminder",
            **{**words, "text": text},
        )
    elif state == "cleared" and not msg_id.startswith("alert.stop."):  # a return says so itself
        text = t("alert.cleared", text=text)
    elif state == "acknowledged":
        text = t("alert.acknowledged", by=params.get("acked_by"), text=text)
    if params.get("late"):
        text = t("alert.late", text=text)
    layers = ["alert.late"] if params.get("late") else []
    if state == "reminder":
        layers.append("alert.reminder_no_peak" if params["metric"] == "status" else "alert.reminder")
    elif state == "acknowledged" or (state == "cleared" and not msg_id.startswith("alert.stop.")):
        layers.append(f"alert.{state}")
    if _opens_with_data(t, [*layers, msg_id]):
        return text  # a name, an id or an address is written as it is: "haul-road is offline"
    return text[:1].upper() + text[1:]


DATA = frozenset(
    (
        "where",
        "node",
        "site",
        "by",
        "acked_by",
        "reference",
        "value",
        "limit",
        "peak",
        "since",
        "until",
        "ago",
    )
)
"""Placeholders that hold data (a name, an id, an address, a number, a time): never re-cased."""
_OPENING = re.compile(r"^\{(\w+)\}")


def _opens_with_data(t: Texts, keys: Sequence[str]) -> bool:
    """Whether a sentence made of the messages `keys` (outermost first, each inner one filling the
    outer's `{text}`) begins with a value rather than a word of the language file. Only a word is
    capitalised at the start of a sentence: "oyuna хүлээн авсан" keeps the name as it was typed."""
    for key in keys:
        opening = _OPENING.match(t(key))  # the template itself: `t` without values leaves it as is
        if opening is None:
            return False
        if opening.group(1) != "text":
            return opening.group(1) in DATA
    return False


def text_of(doc: Mapping[str, Any], t: Texts) -> str:
    """An event's sentence from its JSON or its stored row: rendered from `msg_id` and `msg_params`
    (a dict, or the JSON text InfluxDB keeps) when it has them, else its stored `message`."""
    msg_id, params = doc.get("msg_id"), doc.get("msg_params")
    if isinstance(params, str):
        params = json.loads(params)
    if not msg_id or not isinstance(params, dict):
        return str(doc.get("message") or "")
    return render(str(msg_id), params, t)


def params_of_row(params: object) -> dict[str, Any]:
    """Message parameters from an event's JSON (a dict) or its stored row (the JSON text InfluxDB
    keeps); {} when there are none or they do not parse."""
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            return {}
    return dict(params) if isinstance(params, dict) else {}


def _params(doc: Mapping[str, Any]) -> dict[str, Any]:
    return params_of_row(doc.get("msg_params"))


def is_planned_stop(doc: Mapping[str, Any]) -> bool:
    """A node's planned stop (or its return): a notice told once, with no reminders."""
    return str(doc.get("msg_id") or "").startswith("alert.stop.")


def rule_name(doc: Mapping[str, Any], t: Texts) -> str:
    """The rule of an event as a person reads it, in `t`'s language: the rule's own `title` in that
    language when its config gives one (kept in the event's parameters); else what it watches, from
    the message's parameters: "PM2.5 24-hour mean, US EPA", "PM2.5 NowCast: Unhealthy or worse",
    "offline". The rule's id stays where machines read (`rule` in the JSON, the alert id, the CLI);
    an event stored before message ids is named by its id."""
    params = _params(doc)
    title = params.get("title")
    if isinstance(title, dict) and title.get(t.language):
        return str(title[t.language])
    msg_id = str(doc.get("msg_id") or "")
    kind = msg_id.split(".")[1] if msg_id.count(".") >= 2 else ""
    metric = str(params.get("metric") or doc.get("metric") or "")
    what = _what(t, metric, str(params.get("average") or doc.get("average") or "instant"))
    if kind == "threshold":
        standard = params.get("standard")
        if not standard:
            return what
        key = standard_key(str(standard))
        named = t(f"alert.rule_standard.{key}") if key is not None else str(standard)
        return t("alert.rule_name.standard", what=what, standard=named)
    if kind == "nowcast" and t.has(f"alert.category.{params.get('threshold')}"):
        return t("alert.rule_name.nowcast", what=what, category=t(f"alert.category.{params['threshold']}"))
    if kind == "difference" and params.get("reference"):
        site = str(params.get("site") or doc.get("site") or "")
        return t(
            "alert.rule_name.difference", what=what, reference=t.node_name(site, str(params["reference"]))
        )
    if kind == "sensor_fault" and spec(metric) is not None:  # one sensor's, not any sensor's
        return t("alert.rule_name.sensor_fault_one", metric=t.short(metric))
    if kind in ("offline", "stop", "sensor_fault"):
        return t(f"alert.rule_name.{kind}")
    return str(doc.get("rule") or "")


def _state_word(doc: Mapping[str, Any], t: Texts) -> str:
    """The event's state in a subject; a planned stop is a notice, and its return ends it."""
    state = str(doc.get("state") or "")
    if is_planned_stop(doc) and t.has(f"alert.stop.state.{state}"):
        return t(f"alert.stop.state.{state}")
    return t(f"alert.state.{state}") if t.has(f"alert.state.{state}") else state


def subject(doc: Mapping[str, Any], t: Texts) -> str:
    """An email's subject, a push notification's title, a feed entry's title: the rule by its name
    in the reader's language (`rule_name`), never by its id."""
    severity = doc.get("severity", "")
    return t(
        "alert.subject",
        severity=t(f"alert.severity.{severity}")
        if t.has(f"alert.severity.{severity}")
        else str(severity).upper(),
        state=_state_word(doc, t),
        rule=rule_name(doc, t),
        node=t.node_name(str(doc.get("site")), str(doc.get("node"))) if doc.get("site") else doc.get("node"),
    )


def _when(t: Texts, stamp: object) -> str:
    """An event's `ts` (RFC 3339 UTC in the JSON) as the reader reads it; as it is when it is not one."""
    try:
        return t.time(_instant(str(stamp)))
    except ValueError:
        return str(stamp)


def digest(
    docs: Sequence[Mapping[str, Any]],
    why: str,
    t: Texts,
    ack_urls: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """(subject, text) of events held back by quiet hours or a rate limit, sent as one; each event
    with its details (`details`), its link from `ack_urls` (by alert id) when there is one."""
    key = f"alert.held.{why.replace(' ', '_')}"
    held = t(key) if t.has(key) else why
    urls = ack_urls or {}
    lines: list[str] = []
    for d in docs:
        lines.append(t("alert.digest_line", ts=_when(t, d.get("ts")), text=text_of(d, t)))
        lines.extend("    " + x for x in details(d, t, urls.get(str(d.get("id")))))
    text = "\n".join([t("alert.digest_text", n=len(docs), why=held), *lines])
    return t("alert.digest_subject", n=len(docs), why=held), text


ACTIONABLE = ("raised", "reminder")
"""The states of an alert someone can still acknowledge (unless it already was)."""


def is_actionable(doc: Mapping[str, Any]) -> bool:
    return doc.get("state") in ACTIONABLE and not doc.get("acked_by") and bool(doc.get("id"))


def _measure(t: Texts, doc: Mapping[str, Any], value: Any, *, is_limit: bool = False) -> str:
    """A value with the unit the event states: minutes for how long something lasted, else the
    metric's decimals and unit, compared with the limit, as the sentences write them."""
    if value is None:
        return t("alert.no_value")
    if doc.get("unit") == "min":
        return t("ack.minutes", n=f"{float(value):.0f}")
    limit = None if is_limit or doc.get("limit") is None else float(doc["limit"])
    comparison: Comparison = "below" if str(doc.get("msg_id") or "").endswith(".below") else "above"
    return _amount(t, float(value), str(doc.get("metric") or ""), limit, comparison)


def details(
    doc: Mapping[str, Any], t: Texts, ack_url: str | None = None, *, how_to_ack: bool = True
) -> list[str]:
    """What a monitor needs to act on an event, under its sentence, one line each: the alert id,
    the value with its unit against the limit and its source (the rule's standard, else the rule),
    the place, since when, and one way to acknowledge it (the link when there is one; else the CLI
    and the MQTT topic; not with `how_to_ack` False: the acknowledgement page is that way). An event
    acknowledged says by whom instead."""
    site, node = str(doc.get("site")), str(doc.get("node"))
    where = t("alert.where", node=t.node_name(site, node), site=t.site_name(site))
    standard = doc.get("standard")
    source = (
        t("alert.detail.standard", standard=standard_name(t, str(standard)))
        if standard
        else t("alert.detail.rule", rule=rule_name(doc, t))
    )
    lines = [
        t("alert.detail.id", id=doc.get("id")),
        t(
            "alert.detail.value",
            value=_measure(t, doc, doc.get("value")),
            limit=_measure(t, doc, doc.get("limit"), is_limit=True),
            source=source,
        ),
        t("alert.detail.place", where=where),
    ]
    if doc.get("started"):
        lines.append(t("alert.detail.since", since=_since(t, str(doc["started"]), True)))
    if doc.get("state") == "cleared" and doc.get("ended"):
        lines.append(t("alert.detail.ended", until=_since(t, str(doc["ended"]), True)))
    if is_actionable(doc) and how_to_ack:
        if ack_url:
            # a planned stop has no reminders to stop: it is only marked as seen
            key = "alert.detail.ack_link_notice" if is_planned_stop(doc) else "alert.detail.ack_link"
            lines.append(t(key, url=ack_url))
        else:
            name = t("alert.detail.your_name")
            command = f"minewatch-gateway ack {doc.get('id')} --by {name}"
            lines.append(t("alert.detail.ack_cli", command=command))
            if doc.get("ack_topic"):
                payload = json.dumps({"id": doc.get("id"), "by": name}, ensure_ascii=False)
                lines.append(t("alert.detail.ack_mqtt", payload=payload, topic=doc["ack_topic"]))
    elif doc.get("acked_by"):
        lines.append(t("alert.detail.acked", by=doc["acked_by"]))
    return lines


def full_text(doc: Mapping[str, Any], t: Texts, ack_url: str | None = None) -> str:
    """A single event's message: the sentence, then its details (`details`)."""
    return "\n".join([text_of(doc, t), "", *details(doc, t, ack_url)])
