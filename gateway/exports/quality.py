"""Our quality flags as the codes AQDx and AQCSV define (the table in docs/regulators.md).

Both formats carry one validity code per value plus AQS qualifier codes (space-separated). A flag
marks the whole reading, so its code applies to every metric of it, except `high_humidity`, which
biases only optical particle sensors. Several flags: the worst validity wins and the qualifiers are
joined in flag order. A reading a maintenance visit marks (gateway/maintenance.py: the minutes a
window was out of the water, a sensor being moved) is kept, as suspect with the QA qualifier `3`
(field issue), after the flags' qualifiers. The AQS qualifier codes are those of EPA's qualifier
list as AQDx publishes it (aqdx-documentation `docs/assets/qualifiers.csv`); `CD` is AQDx's
supplemental "corrected data".
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.flags import Flag
from contract.metrics import Metric

PARTICLES = frozenset({Metric.PM1_0, Metric.PM2_5, Metric.PM10})

# AQDx validity_code (field dictionary, "Quality Control"): 1 valid, 3 estimated, 5 suspect, 9 invalid
VALID, ESTIMATED, SUSPECT, INVALID = 1, 3, 5, 9
# AQCSV qc (AirNow QC codes, as AQDx 2.0's `qccode` carried them): 0 valid, 1 estimated, 7 suspect,
# 8 invalid, 9 missing
AQCSV_QC = {VALID: 0, ESTIMATED: 1, SUSPECT: 7, INVALID: 8}
AQCSV_MISSING = 9


@dataclass(frozen=True, slots=True)
class FlagCode:
    validity: int  # AQDx validity_code; the AQCSV qc is AQCSV_QC[validity]
    qualifier: str  # AQS qualifier code
    particles_only: bool = False


FLAG_CODES: dict[Flag, FlagCode] = {
    Flag.WARMING_UP: FlagCode(SUSPECT, "LL"),  # "may be biased low": a warming sensor reads low
    Flag.SENSOR_FAULT: FlagCode(INVALID, "AN"),  # machine malfunction
    Flag.OUT_OF_RANGE: FlagCode(SUSPECT, "QX"),  # samples refused: does not meet QC criteria
    Flag.HIGH_HUMIDITY: FlagCode(SUSPECT, "LK", particles_only=True),  # "may be biased high"
    Flag.CLOCK_UNSYNCED: FlagCode(SUSPECT, "2"),  # operational deviation: the time may be wrong
    Flag.CAL_EXPIRED: FlagCode(SUSPECT, "QX"),
    Flag.CAL_FALLBACK: FlagCode(ESTIMATED, "LJ"),  # "reported value is an estimate"
}
MISSING_QUALIFIER = "AM"  # miscellaneous void: no value and no flag saying why
# A visit's mark, whatever its kind: AQS's qualifiers for maintenance (BA) and calibration (AT, BC)
# are null-data codes, which stand in for a value; a marked value is kept, so it takes the QA
# qualifier for a field issue, and the kinds are in the export's `maintenance` column and side file
MAINTENANCE_CODE = FlagCode(SUSPECT, "3")


@dataclass(frozen=True, slots=True)
class Quality:
    validity: int  # AQDx validity_code
    qc: int  # AQCSV qc
    qualifiers: tuple[str, ...]  # AQS qualifier codes, in flag order


def assess(metric: Metric, value: float | None, flags: list[Flag], marked: bool = False) -> Quality:
    """The codes for one metric's value of a reading carrying `flags`; `marked`: a maintenance
    visit's window holds the reading (the export row's `maintenance` column is not empty)."""
    validity = VALID
    qualifiers: list[str] = []
    codes = [FLAG_CODES[flag] for flag in flags] + ([MAINTENANCE_CODE] if marked else [])
    for code in codes:
        if code.particles_only and metric not in PARTICLES:
            continue
        validity = max(validity, code.validity)
        if code.qualifier not in qualifiers:
            qualifiers.append(code.qualifier)
    if value is None:
        if not qualifiers:
            qualifiers.append(MISSING_QUALIFIER)
        return Quality(INVALID, AQCSV_MISSING, tuple(qualifiers))
    return Quality(validity, AQCSV_QC[validity], tuple(qualifiers))


def parse_flags(text: str | None) -> list[Flag]:
    """The stored `flags` field (comma-joined) as flags; an unknown name is kept out, not guessed."""
    known = {f.value: f for f in Flag}
    return [known[name] for name in (text or "").split(",") if name in known]
