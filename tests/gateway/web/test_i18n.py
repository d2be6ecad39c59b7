"""The interface text lives in contract/i18n/: every key the templates and code use exists in
English, and every translation keeps the English placeholders (a missing one would crash a page)."""

from __future__ import annotations

import re
import string
import tomllib
from pathlib import Path

from contract import i18n
from contract.flags import Flag
from contract.i18n import Texts
from contract.metrics import METRICS, Metric
from gateway import aqi
from gateway.maintenance import KINDS as visit_kinds
from gateway.observations.records import DECIDED, PLACES
from gateway.observations.records import KINDS as observation_kinds
from gateway.standards import STANDARDS
from gateway.web.levels import TURBIDITY_BANDS
from tests.helpers import ROOT

I18N = Path(i18n.__file__).parent
WEB = ROOT / "gateway" / "web"


def _flat(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(doc: dict[str, object], prefix: str) -> None:
        for k, v in doc.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out[prefix + k] = str(v)

    walk(tomllib.loads(path.read_text(encoding="utf-8")), "")
    return out


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_the_pages_use_is_in_english() -> None:
    en = _flat(I18N / "en.toml")
    used: set[str] = set()
    for path in [*(WEB / "templates").glob("*.html"), *WEB.glob("*.py")]:
        used |= set(re.findall(r"""\bt(?:exts)?\(\s*['"]([a-z_]+\.[a-z0-9_.-]+)['"]""", path.read_text()))
    used |= {f"metric.{m.value}" for m in Metric} | {f"metric_short.{m.value}" for m in Metric}
    # units come from the metric table; only those made of words are translated
    used |= {s.unit_key for s in METRICS.values() if s.unit_key}
    used |= {f"flag.{f.value}" for f in Flag} | {f"aqi.{c.key}" for c in aqi.CATEGORIES}
    used |= {f"turbidity.{lv.key}" for _, lv in TURBIDITY_BANDS}
    used |= {f"aqi_advice.{c.key}" for c in aqi.CATEGORIES} | {f"aqi_known.{b}" for b in ("hour", "reading")}
    used |= {f"standard_name.{key}" for key in STANDARDS}
    used |= {f"alerts.{state}" for state in ("raised", "reminder", "cleared")}
    used |= {f"alert.severity.{s}" for s in ("info", "warning", "critical")}  # the episodes' (/alerts)
    used |= {f"observe.kind_{k}" for k in observation_kinds} | {f"report.field.kind_{k}" for k in visit_kinds}
    used |= {f"monitor.place_{p}" for p in PLACES} | {f"monitor.decision_{d}" for d in DECIDED}
    assert len(used) > 60
    assert sorted(used - set(en)) == []


def test_translations_keep_the_placeholders() -> None:
    en = _flat(I18N / "en.toml")
    for path in I18N.glob("*.toml"):
        for key, text in _flat(path).items():
            assert key in en, f"{path.name}: {key} is not an English key"
            assert _fields(text) == _fields(en[key]), f"{path.name}: {key} placeholders differ"


def test_a_missing_key_shows_itself_instead_of_breaking_the_page() -> None:
    t = Texts("en")
    assert t("fresh.minutes", n=5) == "5 min ago"
    assert t("no.such.key") == "no.such.key"
