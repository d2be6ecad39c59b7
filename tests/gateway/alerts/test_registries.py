"""Channels and rule kinds are found by looking in their folders: a new file is all a registry needs,
and nothing picks a class with an isinstance ladder that a new file would have to join."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import pytest

import gateway.alerts.rules
import gateway.channels
from gateway.alerts.config import RULE_TYPES
from gateway.alerts.rules import NOT_KINDS, RULES
from gateway.channels import CHANNEL_TYPES, CHANNELS, NOT_CHANNELS
from tests.helpers import ROOT


def _modules(package: object, skip: frozenset[str]) -> list[str]:
    path = getattr(package, "__path__")  # noqa: B009  # a package's path, for pkgutil
    return [m.name for m in pkgutil.iter_modules(path) if m.name not in skip and not m.name.startswith("_")]


@pytest.mark.parametrize("module", _modules(gateway.channels, NOT_CHANNELS))
def test_every_file_in_gateway_channels_registers_a_channel(module: str) -> None:
    defined_in = {options.__module__ for options, _ in CHANNELS.values()}
    assert f"gateway.channels.{module}" in defined_in


def test_the_channel_types_are_the_registered_ones() -> None:
    assert set(CHANNEL_TYPES) == {"mqtt", "webhook", "email", "apprise"}


@pytest.mark.parametrize("module", _modules(gateway.alerts.rules, NOT_KINDS))
def test_every_file_in_gateway_alerts_rules_registers_a_rule_kind(module: str) -> None:
    assert f"gateway.alerts.rules.{module}" in {kind.__module__ for kind in RULES.values()}


def test_the_rule_types_are_the_registered_ones() -> None:
    assert set(RULE_TYPES) == {"threshold", "nowcast", "difference", "offline", "sensor_fault"}


def _isinstance_over(folder: Path, names: set[str]) -> list[str]:
    pattern = re.compile(r"isinstance\([^)]*\b(" + "|".join(sorted(names)) + r")\b")
    return [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted(folder.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]


def test_no_isinstance_dispatch_over_channel_options() -> None:
    names = {options.__name__ for options, _ in CHANNELS.values()} | {"ChannelOptions"}
    found = [
        *_isinstance_over(ROOT / "gateway/alerts", names),
        *_isinstance_over(ROOT / "gateway/channels", names),
    ]
    assert found == []


def test_no_isinstance_dispatch_over_rule_kinds() -> None:
    names = {kind.__name__ for kind in RULES.values()} | {"RuleBase"}
    found = [
        *_isinstance_over(ROOT / "gateway/alerts", names),
        *_isinstance_over(ROOT / "gateway/channels", names),
    ]
    assert found == []


def test_config_and_presets_import_each_other_at_the_top_no_more() -> None:
    """presets builds rules from the kinds' files, so config can import it without a cycle."""
    assert "gateway.alerts.config" not in (ROOT / "gateway/alerts/presets.py").read_text(encoding="utf-8")
