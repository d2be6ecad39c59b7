"""Copying the observations and decisions a gateway kept in SQLite (before they moved to InfluxDB)
into InfluxDB, without losing or doubling any: each observation not yet there is written, then each
of its decisions not yet there; the SQLite file is only read. Run by `observations migrate`, and
once by the dashboard when it starts (MARKER_FILE records that it was done), so a gateway upgraded
without reading the notes still shows its old observations."""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.observations import records
from gateway.observations.records import FieldRecords
from gateway.observations.store import ObservationStore
from gateway.stores.base import StoreError

log = logging.getLogger(__name__)
MARKER_FILE = "observations-migrated.json"
"""In the data directory: what the migration at start copied, and when; absent, it runs."""


@dataclass(frozen=True, slots=True)
class Migrated:
    kept: int  # observations in the SQLite file
    observations: int  # written now
    decisions: int  # written now


def migrate(old: ObservationStore, field: FieldRecords) -> Migrated:
    kept = old.legacy()
    if not kept:
        return Migrated(0, 0, 0)
    have = records.decisions_of(field.reader, [o.id for o, _ in kept])
    written = decisions = 0
    for obs, decided in kept:
        written += field.add(obs, None)
        stored = {(d.decision, d.at) for d in have.get(obs.id, [])}
        lines = [d.to_line() for d in decided if (d.decision, d.at) not in stored]
        field.store.write(lines)
        decisions += len(lines)
    return Migrated(len(kept), written, decisions)


def migrate_once(old: ObservationStore, field: FieldRecords, data_dir: Path) -> Migrated | None:
    """At start: migrate unless the marker says it was done; any failure (InfluxDB down) is logged
    and the next start tries again. None when nothing ran."""
    marker = data_dir / MARKER_FILE
    if marker.exists():
        return None
    try:
        done = migrate(old, field)
        doc = {
            "at": datetime.now(UTC).isoformat(),
            "observations": done.observations,
            "decisions": done.decisions,
        }
        marker.write_text(json.dumps(doc) + "\n")
    except (StoreError, OSError, sqlite3.Error) as exc:  # InfluxDB down, a file: the next start retries
        log.warning(
            "observations kept in SQLite not copied to InfluxDB yet (%s); tried again at next start", exc
        )
        return None
    if done.kept:
        log.info(
            "copied %d observations and %d decisions kept in SQLite into InfluxDB (%d were there already)",
            done.observations,
            done.decisions,
            done.kept - done.observations,
        )
    return done
