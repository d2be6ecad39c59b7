"""Built-in calibrations, shipped as ordinary calibration files in `calibration/presets/` so that
`minewatch-calibrate show NAME` and a regulator read exactly what the node applies.

A node config names one by its id instead of a path (`calibration = ["epa-us-2021"]`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from calibration.files import Calibration, load

PRESET_DIR = Path(__file__).resolve().parent / "presets"


def names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def path(name: str) -> Path | None:
    """The preset's file, or None if `name` is not a preset."""
    candidate = PRESET_DIR / f"{name}.toml"
    return candidate if name in names() else None


def resolve(ref: str | Path, base: Path | None = None) -> Path:
    """A preset name or a path (relative to `base`) -> the calibration file to read."""
    preset = path(str(ref))
    if preset is not None:
        return preset
    p = Path(ref)
    return p if p.is_absolute() or base is None else base / p


@functools.cache  # shipped files never change while we run; the node applies one per window
def load_preset(name: str) -> Calibration:
    found = path(name)
    if found is None:
        raise KeyError(f"no preset {name!r}; presets: {', '.join(names())}")
    return load(found)
