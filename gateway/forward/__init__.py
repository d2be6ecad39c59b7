"""Forwarding a site's stored readings to a regional hub (docs/region.md)."""
