"""The Mongolian words (contract/i18n/mn.toml): every English key is there with the same
placeholders, and the file has no English word (tests/gateway/alerts/test_messages_mn.py renders
the engine's alerts in it)."""

from __future__ import annotations

import re
from pathlib import Path

from contract import i18n
from contract.i18n import Texts
from tests.gateway.web.test_i18n import _fields, _flat

I18N = Path(i18n.__file__).parent

# Latin-letter words a Mongolian text may keep: symbols and names that are the same in every
# language (units, PM2.5, AQI, NowCast, file formats, UTC), and the CSV's column names, which are
# data, not words.
KEPT = {
    "PM", "PM1", "PM2", "PM10", "NTU", "AQI", "NowCast", "CSV", "API", "JSON", "Atom", "OpenAPI", "UTC",
    "RFC", "µg", "µm", "°C", "hPa", "HTTPS",  # HTTPS: the secure address the form needs, as browsers write it
    "time", "site", "node", "seq", "flags", "kid",
    # names the report cites as they are written everywhere: the program, the coordinate system,
    # the signature and hash algorithms, the US EPA and its regulation (40 CFR 50, Appendix N)
    "minewatch", "WGS", "Ed25519", "SHA", "US", "EPA", "CFR", "N",
    # the Mongolian standard's designation, as printed on it (MNS 4585:2016)
    "MNS",

    # what a reader types as it is written: node.toml's keys ([mqtt] host, port, username), the
    # commands and the files `minewatch-node check` points to
    "MQTT", "mqtt", "host", "port", "username", "chmod", "sudo", "hardware", "README", "md",
    "setup", "pi", "sh", "dev", "i2c", "i2cdetect", "y", "dialout",
    # the document the download page points to for checking signatures (docs/trust.md)
    "docs", "trust",
    # the parts' own names: buses and pins
    "UART", "USB", "I2C", "SDA", "SCL", "TX", "RX",
    # the broker's encryption, its config key and the certificate authority, as written everywhere
    "TLS", "tls", "CA",
    # what `export --format aqdx|aqcsv|openaq` asks for as it is written: the formats' names,
    # gateway.toml's tables and keys ([exports], [[report.nodes]] lat, lon) and the options
    "AQDx", "AQCSV", "OpenAQ", "exports", "nodes", "report", "lat", "lon", "average", "format", "csv",
    "metrics", "TsagaanCommunity",
    # the report's names as they are written everywhere: the query language, the standard, the
    # book number, and the fit statistics' symbols (R², RMSE)
    "InfluxQL", "ISBN", "R", "RMSE",
    # the database the gateway writes to, by its name (`minewatch-gateway status`)
    "InfluxDB",
    # a config file's own values, as a reader types them (TOML's booleans)
    "true", "false",
}  # fmt: skip
_LATIN = re.compile(r"[µ°]?[A-Za-z][A-Za-z0-9_]*")


def english_words(text: str) -> list[str]:
    """Latin words outside KEPT, once the placeholders are taken out; `pm2_5_raw`-like ids are data."""
    words = _LATIN.findall(re.sub(r"\{[^}]*\}|µg/m³", " ", text))
    return [w for w in words if w not in KEPT and "_" not in w and not w.startswith("PM")]


def test_every_english_key_is_in_mongolian_with_the_same_placeholders() -> None:
    en, mn = _flat(I18N / "en.toml"), _flat(I18N / "mn.toml")
    assert sorted(set(en) - set(mn)) == []
    assert [k for k in en if _fields(en[k]) != _fields(mn[k])] == []
    assert Texts("mn").language == "mn" and "mn" in Texts.languages()


def test_no_english_word_in_the_mongolian_file() -> None:
    mn = _flat(I18N / "mn.toml")
    leaks = {key: english_words(text) for key, text in mn.items() if key != "lang" and english_words(text)}
    assert leaks == {}
