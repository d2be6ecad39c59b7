"""minewatch node firmware: sample, average, calibrate, buffer, publish."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("minewatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
