"""The evidence bundle: one zip a regulator carries away and checks alone (docs/regulators.md).

It holds the readings exactly as `export` writes them with their columns description, the nodes'
public keys with their validity, the calibration files in force, the alert events, the field
records (maintenance visits, accepted observations with their decisions and photos), the report
(HTML and PDF, made by the `report` command itself), the one-file checker `verify_offline.py`, and
`manifest.json`: the SHA-256 of every file, and per node the row count and the `seq` jumps that
were already in the data (gaps, restarts), so a row deleted or inserted later shows as a jump the
manifest does not know. With a TSA
the manifest is time-stamped (RFC 3161, `manifest.json.tsr`), which fixes all of it in time: the
TSA signs the manifest's hash, the manifest holds every file's hash.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from calibration import presets
from calibration.files import load as load_calibration
from contract import __version__, verify_offline
from contract.configfile import ConfigError
from gateway import export, maintenance
from gateway.observations import records
from gateway.stores.reader import Reader
from gateway.timerange import format_time, from_ms
from gateway.trust.registry import KeyRecord

ALERT_FIELDS = ["state", "value", "limit", "average", "severity", "late", "message", "msg_id", "msg_params"]
README = """minewatch evidence bundle

Check it, offline, with Python 3.11+ and the `cryptography` package only:

    python verify_offline.py --bundle THIS-FILE.zip [--tsa-cert tsa.pem]

(or `minewatch-gateway verify --bundle THIS-FILE.zip`). Use a copy of verify_offline.py from the
minewatch source you trust rather than the one inside the bundle when the bundle itself is disputed.
Every verdict is explained in docs/trust.md, "What each verdict means".
"""


@dataclass(frozen=True)
class BundleRequest:
    export: export.ExportRequest
    out: Path
    keys: list[KeyRecord]
    calibrations_dir: Path | None
    generated: datetime
    tsa: str | None = None
    photos: Path | None = None  # the gateway's photos of observations (named by their SHA-256)


@dataclass(frozen=True)
class Written:
    files: int
    rows: int
    stamp: verify_offline.TimeStamp | None


Report = Callable[[Path, Path], None]
"""Writes the report's HTML and PDF to the two paths (the `report` command, as it is)."""
Stamp = Callable[[str, bytes], tuple[bytes, verify_offline.TimeStamp]]


def _calibration_files(ids: set[str], directory: Path | None) -> tuple[dict[str, Path], list[str]]:
    """The file behind each calibration id in the readings; ids found nowhere are named."""
    found: dict[str, Path] = {}
    for name in presets.names():
        path = presets.path(name)
        if path is not None and presets.load_preset(name).id in ids:
            found[presets.load_preset(name).id] = path
    for path in sorted(directory.glob("*.toml")) if directory else []:
        try:
            cal = load_calibration(path)
        except ConfigError:
            continue  # the report names files it cannot read; here only the ones in force count
        if cal.id in ids:
            found[cal.id] = path
    return found, sorted(ids - set(found))


def _field_records(reader: Reader, req: BundleRequest, work: Path) -> None:
    """What people on the ground recorded in the period: `maintenance.jsonl` (the visits made in it
    or marking readings in it) and
    `observations.jsonl` (the observations monitors accepted, each with every decision on it),
    with the photos of those in `photos/<sha256>.jpg`, each hashed in the manifest like every file."""
    ex = req.export
    with (work / "maintenance.jsonl").open("w", encoding="utf-8") as fh:
        for v in maintenance.of_period(reader, ex.site, ex.start, ex.end, ex.nodes):
            fh.write(json.dumps(v.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
    seen = records.listed(reader, "accepted", ex.start, ex.end, site=ex.site, nodes=ex.nodes)
    decided = records.decisions_of(reader, [o.id for o in seen]) if seen else {}
    with (work / "observations.jsonl").open("w", encoding="utf-8") as fh:
        for o in seen:
            doc = {**o.to_json(), "decisions": [d.to_json() for d in decided.get(o.id, [])]}
            fh.write(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n")
            for sha in o.photos_sha256:  # the first and the rest
                photo = None if req.photos is None else req.photos / f"{sha}.jpg"
                if photo is not None and photo.exists():
                    (work / "photos").mkdir(exist_ok=True)
                    shutil.copyfile(photo, work / "photos" / photo.name)


def write(reader: Reader, req: BundleRequest, work: Path, report: Report, stamp: Stamp | None) -> Written:
    """Build every file in `work` (an empty directory), then the zip at `req.out`."""
    ex = req.export
    readings = work / "readings.csv"
    queries: list[str] = []
    with readings.open("w", encoding="utf-8", newline="") as out:
        count = export.write(reader, ex, out, "csv", trace=queries.append)
    side = export.sidecar(ex, "csv", count, req.generated, queries[0] if queries else "")
    (work / "readings.csv.columns.json").write_text(json.dumps(side, indent=2, ensure_ascii=False) + "\n")
    keys = [k.public_doc() for k in req.keys]
    (work / "keys.json").write_text(json.dumps(keys, indent=2, ensure_ascii=False) + "\n")

    cal_ids: set[str] = set()

    def noting_calibrations(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            cal_ids.update(str(v) for k, v in row.items() if k.endswith("_cal") and v)
            yield row

    # one streamed pass over the file as written: each node's seq (for the manifest), the cal ids
    seqs = verify_offline.check_rows(noting_calibrations(verify_offline.read_rows_file(readings)), {})
    cal_files, missing = _calibration_files(cal_ids, req.calibrations_dir)
    if cal_files:
        (work / "calibrations").mkdir()
    for path in sorted(set(cal_files.values())):
        shutil.copyfile(path, work / "calibrations" / path.name)
    alerts = reader.alert_rows(ex.site, ex.start, ex.end, ALERT_FIELDS)
    alerts = sorted(alerts, key=lambda a: (int(a["time"]), str(a.get("node")), str(a.get("rule"))))
    if ex.nodes:
        alerts = [a for a in alerts if a.get("node") in ex.nodes]
    with (work / "alerts.jsonl").open("w", encoding="utf-8") as fh:
        for a in alerts:
            doc = {**a, "time": format_time(from_ms(int(a["time"]))), "site": ex.site}
            fh.write(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n")
    _field_records(reader, req, work)
    report(work / "report.html", work / "report.pdf")
    shutil.copyfile(Path(verify_offline.__file__), work / "verify_offline.py")
    (work / "README.txt").write_text(README)

    files = sorted(p for p in work.rglob("*") if p.is_file())
    manifest = {
        "format": verify_offline.BUNDLE_FORMAT,
        "version": 1,
        "generator": f"minewatch {__version__}",
        "generated": format_time(req.generated),
        "site": ex.site,
        "nodes": ex.nodes or "all",
        "start": format_time(ex.start),
        "end": format_time(ex.end),
        "range_rule": "readings with start < time <= end",
        "readings": "readings.csv",
        "keys": "keys.json",
        "rows": count,
        "seq": {ident: track.record() for ident, track in sorted(seqs.nodes.items())},
        "key_fingerprints": [{"kid": k["kid"], "fingerprint": k["fingerprint"]} for k in keys],
        "calibrations": {cid: f"calibrations/{p.name}" for cid, p in sorted(cal_files.items())},
        "calibrations_not_found": missing,
        "tsa": req.tsa,
        "files": [
            {
                "path": p.relative_to(work).as_posix(),
                "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                "bytes": p.stat().st_size,
            }
            for p in files
        ],
    }
    manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    token, stamped = (None, None)
    if req.tsa is not None and stamp is not None:
        token, stamped = stamp(req.tsa, manifest_bytes)
    tmp = req.out.with_name(req.out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(verify_offline.MANIFEST, manifest_bytes)
        if token is not None:
            zf.writestr(verify_offline.TIMESTAMP, token)
        for p in files:
            zf.write(p, p.relative_to(work).as_posix())
    tmp.replace(req.out)
    return Written(len(files) + 1 + (token is not None), count, stamped)
