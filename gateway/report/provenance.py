"""Exceedances from the `alert` measurement, and provenance: calibrations in force, firmware
versions, signature counts. Each reads what is stored and nothing else; absent measurements are
handled by the caller."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from contract.metrics import Metric
from gateway.report.model import Calibration, Episode
from gateway.report.querylog import QueryLog
from gateway.standards import STANDARDS
from gateway.stores.reader import Span
from gateway.timerange import from_ms


def episodes(log: QueryLog) -> list[Episode]:
    fields = ["state", "value", "limit", "average", "severity", "late"]
    rows = log.reader.alert_rows(log.site, log.start, log.end, fields, trace=log.trace("alerts"))
    rows.sort(key=lambda r: (r["node"], r["rule"], r["metric"], r["time"]))
    out: list[Episode] = []
    open_: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (str(row["node"]), str(row["rule"]), str(row["metric"]))
        if log.node_filter and key[0] not in log.node_filter:
            continue
        at = from_ms(int(row["time"]))
        value = None if row.get("value") is None else float(row["value"])
        episode = open_.get(key)
        if episode is None or row.get("state") == "raised":
            if episode is not None:  # raised twice without a clear: close the first at the second
                out.append(_episode(key, episode, at))
            episode = {"start": at if row.get("state") == "raised" else None, "peak": value, "row": row}
            open_[key] = episode
        elif value is not None and row.get("state") != "cleared":
            episode["peak"] = value if episode["peak"] is None else max(episode["peak"], value)
        if row.get("state") == "cleared":
            out.append(_episode(key, episode, at))
            del open_[key]
    out += [_episode(key, episode, None) for key, episode in open_.items()]
    return sorted(out, key=lambda e: (e.start or log.start, e.node, e.rule))


def calibrations(
    log: QueryLog, metrics: list[Metric]
) -> tuple[list[Calibration], dict[tuple[str, str], int]]:
    cals: list[Calibration] = []
    uncalibrated: dict[tuple[str, str], int] = {}
    for metric in metrics:
        col = f"{metric.value}_cal"
        trace = log.trace("calibrations")
        ids = list(log.reader.aggregate(log.span, col, ["distinct"], trace=trace))
        totals = {
            str(r["node"]): int(r["count"])
            for r in log.reader.aggregate(log.span, metric.value + "_n", ["count"], trace=trace)
        }
        calibrated: dict[str, int] = defaultdict(int)
        for row in ids:
            node, cal = str(row["node"]), str(row["distinct"])
            one = Span(log.site, [node], log.start, log.end)
            first, last, count = (
                list(log.reader.aggregate(one, col, [fn], per_node=False, equals=cal, trace=trace))
                for fn in ("first", "last", "count")
            )
            n = int(count[0]["count"])
            cals.append(
                Calibration(
                    node,
                    metric.value,
                    cal,
                    from_ms(int(first[0]["time"])),
                    from_ms(int(last[0]["time"])),
                    n,
                )
            )
            calibrated[node] += n
        for node, total in totals.items():
            uncalibrated[(node, metric.value)] = total - calibrated[node]
    return cals, uncalibrated


def firmware(log: QueryLog) -> list[tuple[str, str, datetime]]:
    seen: dict[tuple[str, str], datetime] = {}
    for node, version, at in log.reader.firmware(log.site, log.end, trace=log.trace("firmware")):
        key = (node, version)
        if (not log.node_filter or node in log.node_filter) and key not in seen:
            seen[key] = at
    return [(node, version, at) for (node, version), at in seen.items()]


def signatures(log: QueryLog) -> dict[str, tuple[int, int]]:
    trace = log.trace("signatures")
    totals = list(log.reader.aggregate(log.span, "seq", ["count"], trace=trace))
    signed = list(log.reader.aggregate(log.span, "seq", ["count"], signed=True, trace=trace))
    s = {str(r["node"]): int(r["count"]) for r in signed}
    return {str(r["node"]): (s.get(str(r["node"]), 0), int(r["count"])) for r in totals}


def _episode(key: tuple[str, str, str], episode: dict[str, Any], end: datetime | None) -> Episode:
    row = episode["row"]
    return Episode(
        node=key[0],
        rule=key[1],
        metric=key[2],
        start=episode["start"],
        end=end,
        peak=episode["peak"],
        limit=None if row.get("limit") is None else float(row["limit"]),
        average=str(row.get("average") or ""),
        severity=str(row.get("severity") or ""),
        late=bool(row.get("late")),
        standard=next((s.title for k, s in STANDARDS.items() if key[1].startswith(k)), ""),
    )
