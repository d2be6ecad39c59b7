"""What every rule kind shares: durations, the keys every `[[alerts.rules]]` table takes, the registry,
and the behaviour the engine asks of a kind, with the defaults most kinds keep.

A kind is one file in this folder: its options model (a subclass of `RuleBase` with a one-value `type`
Literal), decorated with `@register_rule`, and the methods below that it overrides. The engine only
calls these methods, so a new kind never adds a branch to it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.i18n import Texts
from contract.metrics import unit as metric_unit
from contract.wire import ID_PATTERN, ReadingPayload
from gateway.alerts.machine import Evaluation, MachineState
from gateway.alerts.reasons import percent, reason
from gateway.alerts.windows import Series

if TYPE_CHECKING:
    from gateway.alerts.events import AlertEvent
    from gateway.alerts.plan import Plan

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w|y)?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
SeriesOf = Callable[[str, str, str], Series | None]  # (site, node, metric)


@functools.lru_cache(maxsize=256)  # rules ask for their windows' seconds on every reading
def duration_s(text: str) -> float:
    """Seconds in `"90s"`, `"15m"`, `"1h"`, `"24h"`, `"7d"`, `"1y"` or `"0"`; ValueError otherwise."""
    match = _DURATION_RE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write a positive number with s, m, h, d, w or y ('15m', '24h')"
        )
    number, unit = float(match.group(1)), match.group(2)
    if unit is None and number != 0:
        raise ValueError(f"{text!r} has no unit: write '{text}s', '{text}m' or '{text}h'")
    return number * _UNIT_S[unit or "s"]


def duration(value: Any) -> str:
    """A validated duration as written, for a field validator."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{value!r} is a number: write a duration as text, like '15m' or '24h'")
    if not isinstance(value, str):
        raise ValueError("a duration is text, like '15m' or '24h'")
    duration_s(value)  # raises with the reason ("-5m" fails the pattern: negative)
    return value.strip()


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
RuleName = Annotated[str, Field(pattern=ID_PATTERN)]


class RuleBase(Model):
    type: str
    name: RuleName
    severity: Severity = "warning"
    sites: list[str] | None = None
    nodes: list[str] | None = None
    clear_after: str = "10m"
    remind_every: str = "6h"
    standard: str | None = Field(
        default=None, description="How messages name the limit's source: 'MNS 4585:2016'."
    )
    title: dict[str, str] | None = Field(
        default=None,
        description="The rule's name as people read it, per language: {en = 'Dust at the school', "
        "mn = '...'}; without one (or in another language) messages name it by what it watches.",
    )

    naming_keys: ClassVar[dict[str, str]] = {}
    """A rule's own keys that name it as its events' parameters do (`{"threshold": "category"}`:
    NowCast's), besides those every rule may have (metric, average, standard, title, reference)."""
    has_category: ClassVar[bool] = False
    """Events carry the AQI category the rule last saw (NowCast)."""
    steps_on_clock: ClassVar[bool] = False
    """`on_clock` is asked about every node on every tick (offline)."""

    _check_durations = field_validator("clear_after", "remind_every", mode="before")(lambda v: duration(v))

    @field_validator("title")
    @classmethod
    def _titled_in_known_languages(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        for language, text in value.items():
            Texts.known_language(language)
            if not text.strip():
                raise ValueError(f"title.{language} is empty: write the rule's name, or leave it out")
        return {language: text.strip() for language, text in value.items()}

    @property
    def clear_after_s(self) -> float:
        return duration_s(self.clear_after)

    @property
    def remind_every_s(self) -> float:
        return duration_s(self.remind_every)

    def naming(self) -> dict[str, Any]:
        """The rule as its events name it to a person (gateway.alerts.messages.rule_name), for where
        no event of it is at hand (`ack --list`'s rules not evaluated)."""
        own = self.model_dump(mode="json")
        keys = {k: k for k in ("metric", "average", "standard", "title", "reference")} | self.naming_keys
        params = {param: own[key] for param, key in keys.items() if own.get(key) is not None}
        return {"msg_id": f"alert.{self.type}.raised", "msg_params": params, "rule": self.name}

    def applies(self, site: str, node: str) -> bool:
        return (self.sites is None or site in self.sites) and (self.nodes is None or node in self.nodes)

    # -- what the engine asks of a kind ---------------------------------------------------------

    @property
    def history_s(self) -> float:
        """How much reading history this rule's windows need (a restart reloads it)."""
        return 0.0

    @property
    def windowed_metric(self) -> str | None:
        """The metric this rule keeps a window of, if any."""
        return None

    @property
    def higher_is_worse(self) -> bool:
        """Whether a peak is the highest value (or, for 'below' rules, the lowest)."""
        return True

    def labels(self) -> tuple[str, str]:
        """(metric, average) as events carry them."""
        return "status", "instant"

    def value_unit(self, metric: str) -> str:
        """The unit of this rule's values, limit and peak: the metric table's by default; a rule that
        measures how long something has lasted says "min"."""
        return metric_unit(metric)

    def plan(self, site: str, node: str, plan: Plan) -> None:
        """Add this rule to the plan of readings from (site, node), if they step it."""

    def evaluate(self, series_of: SeriesOf, site: str, node: str, t_ms: int) -> Evaluation:
        """Does the condition hold at `t_ms`, from the windows (OTHER, WINDOW and INSTANT rules)?"""
        raise NotImplementedError(self.type)

    def observe(self, reading: ReadingPayload) -> bool | None:
        """READING rules: is the condition in this reading (None: it says nothing about it)?"""
        raise NotImplementedError(self.type)

    def lasting(self, m: MachineState, holds: bool, t_ms: int) -> Evaluation:
        """READING rules: the evaluation, given whether the condition holds and since when."""
        raise NotImplementedError(self.type)

    def on_clock(self, quiet_s: float, said: str | None) -> Evaluation:
        """`steps_on_clock` rules: the evaluation for a node quiet for `quiet_s` that last said of
        itself `said` ("offline", "stopped"; None when it said nothing or is back online)."""
        raise NotImplementedError(self.type)

    def is_notice(self, detail: str) -> bool:
        """Whether an alert raised for `detail` (its evaluation's reason) is a notice, not an alarm:
        told once at severity info and never reminded (a node's planned stop)."""
        return False

    def message(self, e: AlertEvent) -> tuple[str, dict[str, Any]]:
        """The id of this event's message in contract/i18n/en.toml, and the parameters the kind adds
        to the event's own (gateway/alerts/messages.py renders them): values, never words."""
        raise NotImplementedError(self.type)


class Averaged(Model):
    average: str = "instant"
    min_completeness: float = Field(default=0.75, gt=0, le=1)

    @field_validator("average", mode="before")
    @classmethod
    def _average(cls, value: Any) -> str:
        if value == "instant":
            return "instant"
        text = duration(value)
        if duration_s(text) <= 0:
            raise ValueError("an average needs a positive duration, or 'instant'")
        return text

    @property
    def average_s(self) -> float:
        """0 for an instantaneous value."""
        return 0.0 if self.average == "instant" else duration_s(self.average)


def value_at(
    series: Series, t_ms: int, average_s: float, min_completeness: float
) -> tuple[float | None, str]:
    if average_s <= 0:
        value = series.value_at(t_ms)
        return value, "" if value is not None else NO_VALUE
    window = series.mean(t_ms, int(average_s * 1000), min_completeness)
    if window.value is None:
        return None, incomplete(window.completeness, min_completeness)
    return window.value, ""


NO_VALUE = reason("no_value")


def incomplete(completeness: float, needed: float) -> str:
    """Why a window's mean does not count (`ack --list` shows it, gateway/alerts/reasons.py)."""
    return reason("window_incomplete", complete=percent(completeness), needed=percent(needed))


RULES: dict[str, type[RuleBase]] = {}
"""Rule `type` -> its options model. Filled by `@register_rule` as `rules/__init__.py` imports each
module of the package."""


_R = TypeVar("_R", bound=RuleBase)


def register_rule(cls: type[_R]) -> type[_R]:
    """Class decorator: make a rule kind selectable by the one value of its `type` Literal."""
    literal_args: tuple[object, ...] = getattr(cls.model_fields["type"].annotation, "__args__", ())
    if len(literal_args) != 1:
        raise TypeError(f"{cls.__name__}.type must be a Literal with one value")
    name = str(literal_args[0])
    if name in RULES:
        raise TypeError(f"rule type {name!r} registered twice")
    RULES[name] = cls
    return cls
