"""The dashboard's words, from `<language>.toml` beside this file, falling back to English per key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from gateway.configfile import ConfigError

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

    def has(self, key: str) -> bool:
        return key in self._texts
