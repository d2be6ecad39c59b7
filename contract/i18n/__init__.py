"""The words people read, from `<language>.toml` beside this file, falling back to English per key.

One file per language for every program (the dashboard, alert messages, the report, `check`), so a
translator and a reviewer work in one place. Numbers, units and ranges are not words: they come
from the metric table (contract/metrics.py).

Times and places are written here too, once for every reader: a time in the site's zone with the
zone shown (`Texts.time`), a site or node by its friendly name in the reader's language
(`Texts.site_name`, `Texts.node_name`). Data, the JSON API, exports and MQTT stay UTC and ids."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contract.errors import ConfigError
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


@functools.cache
def _words(language: str) -> Mapping[str, str]:
    """A language's words over English's, read and parsed once a process: the files are package
    data, and a `Texts` is made per request and per message (a parse is about 10 ms a file)."""
    return MappingProxyType({**_load("en"), **_load(language)})


Names = Mapping[str, Mapping[str, str]]
"""Friendly names: `"<site>"` or `"<site>/<node>"` -> {language: name} (gateway.toml `[[site.names]]`)."""


class Texts:
    def __init__(self, language: str = "en", zone: str = "UTC", names: Names | None = None) -> None:
        """`zone`: an IANA name (validated where the config is read); `names`: friendly names."""
        self.language = language
        self.zone = ZoneInfo(zone)
        self.zone_name = zone
        self._names: Names = names or {}
        self._texts = _words(language)

    def speaking(self, language: str) -> Texts:
        """The same zone and names in another language (a recipient who reads another one)."""
        if language == self.language:
            return self
        return Texts(language, self.zone_name, self._names)

    def local(self, ts: datetime) -> datetime:
        """`ts` (aware; a naive one is taken as UTC, as the database returns them) in the site's zone."""
        return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(self.zone)

    def zone_of(self, ts: datetime) -> str:
        """The zone as a resident reads it, whatever the language: "UTC+08", "UTC+05:30", "UTC"."""
        offset = self.local(ts).utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        if minutes == 0:
            return self("time.zone", offset="")
        sign, minutes = ("+" if minutes > 0 else "-"), abs(minutes)
        text = f"{sign}{minutes // 60:02d}" + (f":{minutes % 60:02d}" if minutes % 60 else "")
        return self("time.zone", offset=text)

    def time(self, ts: datetime | None, *, dated: bool = True, seconds: bool = False) -> str:
        """The one way every person-facing time is written: local, with the zone shown,
        "2026-12-06 14:10 UTC+08", or "14:10 UTC+08" when the day goes without saying."""
        if ts is None:
            return "—"
        at = self.local(ts)
        clock = f"{at:%H:%M:%S}" if seconds else f"{at:%H:%M}"
        zone = self.zone_of(ts)
        if not dated:
            return self("time.clock", time=clock, zone=zone)
        return self("time.at", date=f"{at:%Y-%m-%d}", time=clock, zone=zone)

    def date(self, ts: datetime) -> str:
        """The local date of `ts`."""
        return f"{self.local(ts):%Y-%m-%d}"

    def _name(self, key: str, fallback: str) -> str:
        """The friendly name of `key` in this language; else in English; else in any other language
        it has (alphabetically, so it is the same one every time); else `fallback`, the id. A
        partner who configured only English names still gives a Mongolian reader words, not ids."""
        given = self._names.get(key, {})
        for language in (self.language, "en", *sorted(given)):
            if given.get(language):
                return given[language]
        return fallback

    def site_name(self, site: str) -> str:
        """A site's friendly name (`_name`): in this language, English, another, or its id."""
        return self._name(site, site)

    def node_name(self, site: str, node: str) -> str:
        """A node's friendly name (`_name`): in this language, English, another, or its id."""
        return self._name(f"{site}/{node}", node)

    def place(self, site: str, node: str) -> str:
        """Site and node for a heading: "Tsagaan bag — haul road"."""
        return self("place.node", site=self.site_name(site), node=self.node_name(site, node))

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

    @staticmethod
    def known_language(value: str) -> str:
        """`value` if there is a file for it; the error a config key's validator gives otherwise."""
        if not Texts.exists(value):
            raise ValueError(f"no translation {value}.toml; have: {', '.join(Texts.languages())}")
        return value

    @staticmethod
    def known_zone(value: str) -> str:
        """`value` if it is an IANA time zone; the error a config key's validator gives otherwise."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like 'Asia/Ulaanbaatar'"
            ) from None
        return value

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
