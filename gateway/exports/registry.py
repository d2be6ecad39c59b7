"""The exchange formats by name: each module of this package registers one with `@register`.

A format turns our reading rows (gateway.export.reading_rows: one row per reading, every metric
in it) into its own rows (one per reading and metric, as AQDx, AQCSV and OpenAQ want), and
names the published columns it writes, in their published order."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar

from contract.i18n import Texts
from contract.metrics import Metric
from gateway.exports.config import ExportNode, ExportsConfig


@dataclass(frozen=True, slots=True)
class NodePlace:
    lat: float | None = None
    lon: float | None = None
    agency: ExportNode | None = None  # `[[exports.nodes]]`, when listed


@dataclass(frozen=True, slots=True)
class Context:
    """What a format needs beside the rows, checked before anything is read (`check`)."""

    config: Path
    exports: ExportsConfig
    places: dict[tuple[str, str], NodePlace]  # (site, node)
    consented: frozenset[tuple[str, str, str]] = field(default_factory=frozenset)  # (service, site, node)
    attribution: str = ""
    dataset_id: str = ""  # AQDx: <data_steward_name>_<site>_<YYYYMMDD of the start>
    texts: Texts = field(default_factory=Texts)  # the command's messages (contract/i18n, [exchange_cli])

    @property
    def tz(self) -> timezone:
        sign = -1 if self.exports.utc_offset.startswith("-") else 1
        hours, minutes = (int(p) for p in self.exports.utc_offset[1:].split(":"))
        return timezone(sign * timedelta(hours=hours, minutes=minutes))

    def place(self, site: str, node: str) -> NodePlace:
        return self.places.get((site, node), NodePlace())


class ExportFormat(Protocol):
    name: str
    title: str  # the format's published name, for messages and the sidecar
    columns: tuple[str, ...]  # the published column names, in the published order
    metrics: tuple[Metric, ...]  # what the format has codes for

    def check(self, ctx: Context, site: str, nodes: list[str]) -> None:
        """Raise QueryArgumentError naming the config key a format needs and the config lacks."""

    def rows(
        self, reading: dict[str, Any], metric: Metric, duration_s: int, ctx: Context
    ) -> Iterator[list[Any]]:
        """The format's rows (cells in `columns` order) for one metric of one reading row."""


FORMATS: dict[str, ExportFormat] = {}
F = TypeVar("F", bound=ExportFormat)


def register(cls: type[F]) -> type[F]:
    """Class decorator: one instance of the format, under its `name`."""
    fmt = cls()
    FORMATS[fmt.name] = fmt
    return cls


NOT_FORMATS = frozenset({"config", "registry", "quality", "write", "cells"})
for _module in pkgutil.iter_modules(importlib.import_module("gateway.exports").__path__):
    if _module.name not in NOT_FORMATS and not _module.name.startswith("_"):
        importlib.import_module(f"gateway.exports.{_module.name}")
