"""Why a rule is not evaluated at a node (`ack --list`, `alerts-status.json`, the log), as a message
id under `[alert.reason]` in contract/i18n/ and its parameters, rendered in the reader's language.

A rule returns the reason as one short string, `"<key> name=value ..."` (values are numbers, metric
names and node ids: no spaces), because the engine compares it on every reading to see whether it
changed, and the machine state keeps it as it is. A reason stored before there were keys (English
words) renders as it was stored."""

from __future__ import annotations

from contract.i18n import Texts

PREFIX = "alert.reason."


def reason(key: str, **params: object) -> str:
    """The reason as rules return it and machines keep it: `reason("no_metric", metric="pm2_5")`."""
    return " ".join([key, *(f"{name}={value}" for name, value in params.items())])


def percent(fraction: float) -> str:
    """A completeness as the reasons write it: whole percent ("40"), as `:.0%` rounds."""
    return f"{fraction * 100:.0f}"


def parse(text: str) -> tuple[str, dict[str, str]]:
    """(key, parameters) of a reason; ("", {}) for one in words (stored before there were keys)."""
    key, *pairs = text.split(" ")
    if not key.isidentifier() or not all("=" in p for p in pairs):
        return "", {}
    return key, dict(p.split("=", 1) for p in pairs)


def words(text: str, t: Texts, site: str = "") -> str:
    """A reason in `t`'s language: a metric by its short name, a node by its name at `site`."""
    key, params = parse(text)
    if not key or not t.has(PREFIX + key):
        return text
    values: dict[str, str] = dict(params)
    if "metric" in params:
        values["metric"] = t.short(params["metric"])
    if "node" in params:
        values["node"] = t.node_name(site, params["node"])
    return t(PREFIX + key, **values)
