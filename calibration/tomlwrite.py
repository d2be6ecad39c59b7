"""Writing calibration documents as TOML. The standard library reads TOML but does not write it, and
our documents are small and at most two tables deep, so a few lines do; `fit` and `standards` read
back what they write before keeping it."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("TOML cannot hold NaN or infinity here")
        return repr(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dumps(data: dict[str, Any]) -> str:
    """Scalars first, then one table per section (and its sub-tables); None values are left out."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        sub: list[tuple[str, dict[str, Any]]] = []
        lines.append("")
        lines.append(f"[{name}]")
        for key, value in table.items():
            if value is None:
                continue
            if isinstance(value, dict):
                sub.append((f"{name}.{key}", value))
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        for sub_name, sub_table in sub:
            lines.append("")
            lines.append(f"[{sub_name}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in sub_table.items() if v is not None)
    return "\n".join(lines) + "\n"
