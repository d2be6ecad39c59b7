"""Forwarding readings to public community maps (docs/configuration.md, `[[community_maps]]`).

Kept empty so that reading the config (gateway/config.py imports `config` here) never loads the
HTTP client; `forwarder` is imported by `run` only when a node is listed."""
