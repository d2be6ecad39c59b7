"""Exports in formats agencies and platforms already read (AQDx, AQCSV, OpenAQ's upload CSV), one
file per format, found by name through `registry.FORMATS` (`minewatch-gateway export --format`).

Kept empty so that reading the config (gateway/config.py imports `config` here) loads no format."""
