"""The bottom of minewatch: what the node, the gateway, the drivers and calibration all agree on.

The wire models, the status payload, quality flags, the metric table, config-file helpers,
sd_notify, the canonical form and signing, the clock protocol, the words people read, and the
version. It imports nothing of ours (docs/architecture.md), so either program can load it alone.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("minewatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
