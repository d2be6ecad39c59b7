"""Rule kinds, one file each. Importing the package registers every kind module in it (see
base.register_rule), and the union of their `[[alerts.rules]]` tables is built from that."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field

from gateway.alerts.rules.base import RULES, RuleBase, duration_s
from gateway.alerts.rules.difference import IDAHO_TIERS, DifferenceRule, Tier, allowed_increase
from gateway.alerts.rules.nowcast import NowcastRule
from gateway.alerts.rules.offline import OfflineRule
from gateway.alerts.rules.sensor_fault import SensorFaultRule
from gateway.alerts.rules.threshold import ThresholdRule

NOT_KINDS = frozenset({"base"})

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in NOT_KINDS and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

AnyRule = RuleBase
if TYPE_CHECKING:
    Rule = RuleBase
else:
    Rule = Annotated[Union[tuple(RULES.values())], Field(discriminator="type")]  # noqa: UP007
RULE_TYPES: tuple[str, ...] = tuple(RULES)

__all__ = [
    "IDAHO_TIERS",
    "RULES",
    "RULE_TYPES",
    "AnyRule",
    "DifferenceRule",
    "NowcastRule",
    "OfflineRule",
    "Rule",
    "RuleBase",
    "SensorFaultRule",
    "ThresholdRule",
    "Tier",
    "allowed_increase",
    "duration_s",
]
