"""minewatch node firmware: sample, average, calibrate, buffer, publish."""

from __future__ import annotations

from contract import __version__

__all__ = ["__version__"]
