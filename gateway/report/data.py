"""Everything the regulators' report shows, queried through the reader, each table with its query.

Each section keeps the exact queries that produced it (times written out, nothing hidden), so the
report can print them and a regulator can paste them into the `influx` shell and get the same
numbers. Daily periods follow the reader protocol (gateway.stores.reader): readings with
start < time <= end, buckets (t, t + 24h]. Nothing here renders; see gateway.report.render.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from contract.metrics import Metric
from gateway import dataset
from gateway.report import calfiles, coverage, field, indicators, levels, offline, provenance
from gateway.report.model import About, ReportData
from gateway.report.querylog import QueryLog
from gateway.standards import STANDARDS
from gateway.stores.reader import Reader


def collect(
    reader: Reader,
    *,
    site: str,
    start: datetime,
    end: datetime,
    generated: datetime,
    standards: list[str],
    metrics: list[Metric] | None = None,
    nodes: list[str] | None = None,
    interval_s: int | None = None,
    calibrations_dir: Path | None = None,
    about: About | None = None,
) -> ReportData:
    """Query everything the report shows. `metrics` defaults to those stored among PM2.5, PM10 and
    turbidity (the ones the report has limits or a purpose for); name others to include them.

    `generated` is the clock's time: a period that runs past it ends there, since a report covers
    what has happened (a day not over yet is not a gap in the data)."""
    requested_end = end if end > generated else None
    end = min(end, max(generated, start + timedelta(milliseconds=1)))
    log = QueryLog(reader, site, start, end, nodes or [], interval_s)
    present = reader.measurements()
    if "reading_1d" in present and "reading_1h" in present:
        log.use_rollups()  # whole days from the roll-ups the gateway keeps (gateway/rollup.py)
    has_status, has_alerts = "node_status" in present, "alert" in present
    stored = dataset.metrics_stored(reader) if "reading" in present else []
    if metrics is None:
        metrics = [m for m in stored if m in (Metric.PM2_5, Metric.PM10, Metric.TURBIDITY)]
    chosen = [STANDARDS[k] for k in standards]
    node_sections = coverage.node_sections(log, has_status) if "reading" in present else []
    episodes = provenance.episode_peaks(log, provenance.episodes(log)) if has_alerts else []
    metric_sections = (
        levels.metric_sections(log, metrics, chosen, node_sections, episodes) if node_sections else []
    )
    cals, uncalibrated = provenance.calibrations(log, metrics) if node_sections else ([], {})
    cal_files, cal_problems = calfiles.describe({c.cal for c in cals}, calibrations_dir)
    firmware = provenance.firmware(log) if has_status else []
    signatures = (
        provenance.signatures(log) if "reading" in present and "signed" in reader.fields("reading") else None
    )
    # before `queries` is copied below, so the field records' queries are printed with their tables
    field_visits = field.visits(log) if "maintenance" in present else []
    observations = field.observations(log) if "observation" in present else []
    about = about or About()
    return ReportData(
        site=site,
        start=start,
        end=end,
        generated=generated,
        standards=chosen,
        nodes=node_sections,
        metrics=metric_sections,
        episodes=episodes,
        calibrations=cals,
        uncalibrated=uncalibrated,
        firmware=firmware,
        signatures=signatures,
        has_status=has_status,
        has_alerts=has_alerts,
        calibration_files=cal_files,
        calibration_problems=cal_problems,
        queries=dict(log.queries),
        offline=offline.periods(log, node_sections, episodes),
        requested_end=requested_end,
        indicators=indicators.indicators(metric_sections, chosen, start, end),
        about=about,
        node_info=[n for n in about.nodes if n.site == site and (not nodes or n.node in nodes)],
        keys=[k for k in about.keys if k.site == site and (not nodes or k.node in nodes)],
        field_visits=field_visits,
        observations=observations,
    )
