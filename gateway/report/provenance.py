"""Exceedances from the `alert` measurement, and provenance: calibrations in force, firmware
versions, signature counts. Each reads what is stored and nothing else; absent measurements are
handled by the caller."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from contract.metrics import Metric
from gateway.report.model import Calibration, Episode
from gateway.report.querylog import QueryLog
from gateway.standards import STANDARDS
from gateway.stores.reader import Span, Total
from gateway.stores.rollups import MIXED
from gateway.timerange import from_ms

HOUR = timedelta(hours=1)


def episodes(log: QueryLog) -> list[Episode]:
    """One row per alert, from its events. The figures are the alert's own: `started`, `ended`
    (the first evaluation back within the limit, stored with the all-clear) and `peak` (the worst
    value the engine saw, stored with every event), so the table says what the messages said.
    Events stored before those fields existed fall back to the raise's time, the all-clear's time
    and the highest value an event carried."""
    fields = ["state", "value", "limit", "average", "severity", "late", "peak", "started", "ended", "msg_id"]
    fields.append("msg_params")  # with msg_id, what names the rule to a person (Episode.named)
    rows = log.reader.alert_rows(log.site, log.start, log.end, fields, trace=log.trace("alerts"))
    rows.sort(key=lambda r: (r["node"], r["rule"], r["metric"], r["time"]))
    out: list[Episode] = []
    open_: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (str(row["node"]), str(row["rule"]), str(row["metric"]))
        if log.node_filter and key[0] not in log.node_filter:
            continue
        at = from_ms(int(row["time"]))
        episode = open_.get(key)
        if episode is None or row.get("state") == "raised":
            if episode is not None:  # raised twice without a clear: close the first at the second
                out.append(_episode(key, episode, None, at))
            raised = at if row.get("state") == "raised" else None
            episode = {"start": _ts(row.get("started")) or raised, "peak": None, "stored_peak": None}
            open_[key] = episode
        episode["row"] = row
        value = None if row.get("value") is None else float(row["value"])
        if value is not None and row.get("state") != "cleared":
            episode["peak"] = value if episode["peak"] is None else max(episode["peak"], value)
        if row.get("peak") is not None:
            episode["stored_peak"] = float(row["peak"])
        if row.get("state") == "cleared":
            out.append(_episode(key, episode, _ts(row.get("ended")) or at, at))
            del open_[key]
    out += [_episode(key, episode, None, None) for key, episode in open_.items()]
    return sorted(out, key=lambda e: (e.start or log.start, e.node, e.rule))


def episode_peaks(log: QueryLog, episodes: list[Episode]) -> list[Episode]:
    """Each exceedance with the highest reading the database holds for it (from its start to its
    end, or the period's edge), to stand beside the alert's own peak: for an instant rule the two
    are the same number; for a mean they differ, and both are shown."""
    out = []
    for e in episodes:
        if e.metric not in {m.value for m in Metric}:
            out.append(e)
            continue
        lo, hi = max(e.start or log.start, log.start), min(e.end or log.end, log.end)
        one = Span(log.site, [e.node], lo - timedelta(milliseconds=1), hi)
        rows = list(log.reader.aggregate(one, e.metric, ["max"], per_node=False, trace=log.trace("alerts")))
        top = rows[0]["max"] if rows and rows[0].get("max") is not None else None
        out.append(replace(e, highest_reading=None if top is None else float(top)))
    return out


def _ts(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def calibrations(
    log: QueryLog, metrics: list[Metric]
) -> tuple[list[Calibration], dict[tuple[str, str], int]]:
    """Each calibration id in force per node and metric, its first and last use and its readings,
    and the readings without one. Over the rolled days from the hours' facts (an hour carries its
    one id, or MIXED when it had several: those hours are read raw); elsewhere from raw readings."""
    rolled, raw = log.facts()
    trace = log.trace("calibrations")
    cals: list[Calibration] = []
    uncalibrated: dict[tuple[str, str], int] = {}
    for metric in metrics:
        col = f"{metric.value}_cal"
        used: dict[tuple[str, str], tuple[int, int, int]] = {}  # (node, id) -> first, last, count
        totals: dict[str, int] = defaultdict(int)

        spans = list(raw)
        if rolled is not None:
            selects: list[tuple[Total, str]] = [("sum", f"{metric.value}_n_count")]
            for r in log.reader.rollup_totals(rolled, "1h", selects, trace=trace):
                totals[str(r["node"])] += int(r.get(f"sum_{metric.value}_n_count") or 0)
            ids = list(log.reader.rollup_totals(rolled, "1h", [("distinct", col)], trace=trace))
            for row in ids:
                node, cal = str(row["node"]), str(row[f"distinct_{col}"])
                one = Span(log.site, [node], rolled.start, rolled.end)
                if cal == MIXED:
                    for hour in log.reader.rollups(one, "1h", [col], equals=(col, MIXED), trace=trace):
                        spans.append(Span(log.site, [node], hour["start"], hour["start"] + HOUR))
                    continue
                selects = [("min", f"{col}_first"), ("max", f"{col}_last"), ("sum", f"{col}_count")]
                for r in log.reader.rollup_totals(
                    one, "1h", selects, per_node=False, equals=(col, cal), trace=trace
                ):
                    _use(
                        used,
                        node,
                        cal,
                        int(r[f"min_{col}_first"]),
                        int(r[f"max_{col}_last"]),
                        int(r[f"sum_{col}_count"]),
                    )
        for span in spans:
            mixed_hour = rolled is not None and span not in raw  # its readings are in `totals` already
            if not mixed_hour:
                for r in log.reader.aggregate(span, metric.value + "_n", ["count"], trace=trace):
                    totals[str(r["node"])] += int(r["count"])
            for row in list(log.reader.aggregate(span, col, ["distinct"], trace=trace)):
                node, cal = str(row["node"]), str(row["distinct"])
                one = Span(log.site, [node], span.start, span.end)
                first, last, count = (
                    list(log.reader.aggregate(one, col, [fn], per_node=False, equals=cal, trace=trace))
                    for fn in ("first", "last", "count")
                )
                _use(used, node, cal, int(first[0]["time"]), int(last[0]["time"]), int(count[0]["count"]))
        calibrated: dict[str, int] = defaultdict(int)
        for (node, cal), (first_ms, last_ms, n) in sorted(used.items()):
            cals.append(Calibration(node, metric.value, cal, from_ms(first_ms), from_ms(last_ms), n))
            calibrated[node] += n
        for node, total in totals.items():
            uncalibrated[(node, metric.value)] = total - calibrated[node]
    return cals, uncalibrated


def _use(
    used: dict[tuple[str, str], tuple[int, int, int]], node: str, cal: str, first: int, last: int, n: int
) -> None:
    held = used.get((node, cal))
    used[(node, cal)] = (
        (first, last, n) if held is None else (min(held[0], first), max(held[1], last), held[2] + n)
    )


def firmware(log: QueryLog) -> list[tuple[str, str, datetime]]:
    seen: dict[tuple[str, str], datetime] = {}
    for node, version, at in log.reader.firmware(log.site, log.end, trace=log.trace("firmware")):
        key = (node, version)
        if (not log.node_filter or node in log.node_filter) and key not in seen:
            seen[key] = at
    return [(node, version, at) for (node, version), at in seen.items()]


def signatures(log: QueryLog) -> dict[str, tuple[int, int]]:
    """node -> (signed readings, readings): summed from the hours' facts over the rolled days."""
    rolled, raw = log.facts()
    trace = log.trace("signatures")
    signed: dict[str, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    if rolled is not None:
        selects: list[tuple[Total, str]] = [("sum", "readings"), ("sum", "signed_count")]
        for r in log.reader.rollup_totals(rolled, "1h", selects, trace=trace):
            totals[str(r["node"])] += int(r.get("sum_readings") or 0)
            signed[str(r["node"])] += int(r.get("sum_signed_count") or 0)
    for span in raw:
        for r in log.reader.aggregate(span, "seq", ["count"], trace=trace):
            totals[str(r["node"])] += int(r["count"])
        for r in log.reader.aggregate(span, "seq", ["count"], signed=True, trace=trace):
            signed[str(r["node"])] += int(r["count"])
    return {node: (signed.get(node, 0), total) for node, total in totals.items()}


_NAMING = ("msg_id", "msg_params", "metric", "average", "site")
"""What of an alert row names its rule to a person (gateway.alerts.messages.rule_name)."""


def _episode(
    key: tuple[str, str, str], episode: dict[str, Any], end: datetime | None, cleared: datetime | None
) -> Episode:
    row = episode["row"]
    peak = episode["stored_peak"] if episode["stored_peak"] is not None else episode["peak"]
    return Episode(
        node=key[0],
        rule=key[1],
        metric=key[2],
        start=episode["start"],
        end=end,
        cleared=cleared,
        peak=peak,
        limit=None if row.get("limit") is None else float(row["limit"]),
        average=str(row.get("average") or ""),
        severity=str(row.get("severity") or ""),
        late=bool(row.get("late")),
        kind=_kind(row, key[2]),
        standard=next((s for k, s in STANDARDS.items() if key[1].startswith(k)), None),
        named={**{k: row.get(k) for k in _NAMING}, "rule": key[1]},
    )


def _kind(row: dict[str, Any], metric: str) -> str:
    """The rule kind, from the message id (`alert.<kind>.<state>`); events stored before ids name
    only their metric, "status" for offline and "any" for a fault on all metrics."""
    msg_id = str(row.get("msg_id") or "")
    if msg_id.startswith("alert.") and msg_id.count(".") >= 2:
        return msg_id.split(".")[1]
    return {"status": "offline", "any": "sensor_fault"}.get(metric, "threshold")
