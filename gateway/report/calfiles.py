"""What each calibration id in the data stands for: the shipped presets and, when the operator
hands them over (`report --calibrations DIR`), the fitted calibration files with their fit statistics.

The database keeps only the id; the file keeps the model, the co-location and the statistics. An id
found in neither is listed as such, so a regulator knows which file to ask for.
"""

from __future__ import annotations

from pathlib import Path

from calibration import presets
from calibration.files import Calibration, load
from contract.configfile import ConfigError
from gateway.report.model import CalibrationFile


def describe(ids: set[str], directory: Path | None) -> tuple[dict[str, CalibrationFile], list[str]]:
    """The files behind `ids`, and a note per file in `directory` that could not be read."""
    found: dict[str, CalibrationFile] = {}
    problems: list[str] = []
    for name in presets.names():
        cal = presets.load_preset(name)
        if cal.id in ids:
            found[cal.id] = _info(cal, "preset")
    for path in sorted(directory.glob("*.toml")) if directory else []:
        try:
            cal = load(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if cal.id in ids:
            found[cal.id] = _info(cal, path.name)
    return found, problems


def _info(cal: Calibration, where: str) -> CalibrationFile:
    p = cal.provenance
    parts = [p.source or "", p.reference and f"reference: {p.reference}", p.site and f"at {p.site}"]
    if p.colocated_from and p.colocated_to:
        parts.append(f"co-located {p.colocated_from:%Y-%m-%d} to {p.colocated_to:%Y-%m-%d}")
    valid = f"from {cal.valid_from:%Y-%m-%d}" + (f" to {cal.valid_to:%Y-%m-%d}" if cal.valid_to else "")
    return CalibrationFile(
        id=cal.id,
        where=where,
        description=cal.description or "",
        method=p.method,
        source="; ".join(x for x in parts if x),
        valid=valid,
        n=p.after.n if p.after else p.n,
        r2_after=p.after.r2 if p.after else None,
        rmse_after=p.after.rmse if p.after else None,
        publication=p.source or "",
        reference=p.reference or "",
        at_site=p.site or "",
        colocated=(f"{p.colocated_from:%Y-%m-%d}", f"{p.colocated_to:%Y-%m-%d}")
        if p.colocated_from and p.colocated_to
        else None,
        valid_from=f"{cal.valid_from:%Y-%m-%d}",
        valid_to=f"{cal.valid_to:%Y-%m-%d}" if cal.valid_to else "",
    )
