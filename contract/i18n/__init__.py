"""The words people read, from `<language>.toml` beside this file, falling back to English per key.

One file per language for every program (the dashboard, alert messages, the report, `check`), so a
translator and a reviewer work in one place. Numbers, units and ranges are not words: they come
from the metric table (contract/metrics.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from contract.configfile import ConfigError
from contract.metrics import spec

_DIR = Path(__file__).parent


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def _load(language: str) -> dict[str, str]:
    path = _DIR / f"{language}.toml"
    try:
        return _flatten(tomllib.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in _DIR.glob("*.toml")))
        raise ConfigError(f"web.language: no translation {path.name} (have: {known})") from None


class Texts:
    def __init__(self, language: str = "en") -> None:
        self.language = language
        self._texts = {**_load("en"), **_load(language)}

    def __call__(self, key: str, **values: Any) -> str:
        """The text for `key` with `{placeholders}` filled; the key itself when it is missing, so a
        forgotten translation shows up on the page instead of breaking it."""
        text = self._texts.get(key, key)
        return text.format(**values) if values else text

    @staticmethod
    def languages() -> list[str]:
        """The languages there is a file for."""
        return sorted(p.stem for p in _DIR.glob("*.toml"))

    @staticmethod
    def exists(language: str) -> bool:
        return language in Texts.languages()

    def has(self, key: str) -> bool:
        return key in self._texts

    def ago(self, seconds: float) -> str:
        """How long ago, counted one way wherever a person reads it (a page's card, the offline
        alert): "just now", "5 min ago", "47 h ago" (up to two days), "3 days ago"."""
        if seconds < 60:
            return self("fresh.just_now")
        if seconds < 3600:
            return self("fresh.minutes", n=int(seconds // 60))
        if seconds < 86400 * 2:
            return self("fresh.hours", n=int(seconds // 3600))
        return self("fresh.days", n=int(seconds // 86400))

    def unit(self, metric: str) -> str:
        """A metric's unit as this language writes it: the table's symbol, or the translation of a
        unit made of words (particle counts)."""
        row = spec(metric)
        if row is None:
            return ""
        return self(row.unit_key) if row.unit_key else row.unit

    def label(self, metric: str) -> str:
        """A metric's long label (pages); the name itself for one outside the contract."""
        row = spec(metric)
        return self(row.label_key) if row else metric

    def short(self, metric: str) -> str:
        """A metric's short label (alert sentences, report tables)."""
        row = spec(metric)
        return self(row.short_key) if row else metric

    def number(self, metric: str, value: float) -> str:
        """A value with the metric's own number of decimals."""
        row = spec(metric)
        return row.format(value) if row else f"{value:.1f}"
