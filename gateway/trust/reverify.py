"""Re-verifying stored readings from rows alone (an export, or InfluxDB query results).

A row holds every field the signature covers (docs/protocol.md, InfluxDB schema), so the reading can
be rebuilt value by value and its canonical form signed bytes recomputed. The outcome per row uses
the gateway's reasons, so a third party and the gateway say the same thing about the same reading.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from contract.wire import PayloadError, ReadingPayload
from gateway.trust.registry import KeyRegistry
from gateway.trust.verifier import RequireSignatures, Verifier

OK = "verified"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RowError(ValueError):
    """A row that cannot be turned back into a reading (missing or malformed column)."""


def parse_time(value: Any) -> datetime:
    """RFC 3339 text, or an epoch number whose unit is told by its size (s, ms, µs or ns)."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        number = int(text)  # integer arithmetic: a float of epoch ms can lose the last millisecond
        for limit, per_us in ((10**17, 1000), (10**14, 1)):
            if abs(number) >= limit:
                return _EPOCH + timedelta(microseconds=number // per_us)
        if abs(number) >= 10**11:
            return _EPOCH + timedelta(milliseconds=number)
        return _EPOCH + timedelta(seconds=number)
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RowError(f"time {text!r} is neither RFC 3339 nor an epoch number") from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _tags(row: Mapping[str, Any]) -> dict[str, Any]:
    """`influx -format csv` puts a grouped query's tags in one `tags` column: `node=a,site=b`."""
    out = dict(row)
    tags = row.get("tags")
    if isinstance(tags, str) and "=" in tags:
        for pair in tags.split(","):
            key, _, value = pair.partition("=")
            out.setdefault(key, value)
            if _empty(out[key]):
                out[key] = value
    return out


def row_to_reading(row: Mapping[str, Any]) -> ReadingPayload:
    row = _tags(row)
    try:
        when = row.get("time", row.get("ts"))
        if _empty(when):
            raise RowError("no time column")
        metrics: dict[str, Any] = {}
        for column, n in row.items():
            if not column.endswith("_n") or _empty(n):
                continue
            name = column[:-2]
            entry: dict[str, Any] = {
                "value": None if _empty(row.get(name)) else float(row[name]),
                "n": int(float(n)),
            }
            if not _empty(row.get(f"{name}_raw")):
                entry["raw"] = float(row[f"{name}_raw"])
            if not _empty(row.get(f"{name}_cal")):
                entry["cal"] = str(row[f"{name}_cal"])
            metrics[name] = entry
        flags = row.get("flags")
        doc = {
            "schema": 1,
            "site": row.get("site"),
            "node": row.get("node"),
            "seq": int(float(row["seq"])),
            "ts": parse_time(when),
            "period_s": int(float(row["period_s"])) if not _empty(row.get("period_s")) else None,
            "metrics": metrics,
            "flags": [] if _empty(flags) else str(flags).split(","),
            "kid": None if _empty(row.get("kid")) else row["kid"],
            "sig": None if _empty(row.get("sig")) else row["sig"],
        }
        return ReadingPayload.model_validate(doc)
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        if isinstance(exc, RowError):
            raise
        raise RowError(f"not a stored reading: {exc}".splitlines()[0][:200]) from exc


@dataclass
class Report:
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.outcomes.values())

    @property
    def all_verified(self) -> bool:
        return self.rows > 0 and self.outcomes[OK] == self.rows


def reverify(rows: Iterable[Mapping[str, Any]], registry: KeyRegistry, *, max_listed: int = 50) -> Report:
    """Check every row; unsigned rows count as failures (`unsigned`): a regulator asks for proof."""
    verifier = Verifier(registry, RequireSignatures.ALWAYS)
    report = Report()
    for number, row in enumerate(rows, start=1):
        try:
            reading = row_to_reading(row)
            verifier(reading)
            outcome, detail = OK, ""
        except RowError as exc:
            outcome, detail = "bad_row", str(exc)
        except PayloadError as exc:
            outcome, detail = exc.reason, exc.detail
        report.outcomes[outcome] += 1
        if outcome != OK and len(report.failures) < max_listed:
            where = f"{row.get('site', '?')}/{row.get('node', '?')} seq {row.get('seq', '?')}"
            report.failures.append(f"row {number} ({where}): {outcome}: {detail}")
    return report
