"""Loading a TOML config into a pydantic model, with errors that name the file and the key.

Shared by the node, the gateway and calibration files. Nothing here opens a port or a socket:
validation must pass before anything connects.
"""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A config that cannot be used. The message names the file and the key; the CLIs exit 2."""


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe(path: Path | str, exc: ValidationError, hide: tuple[str, ...] = ()) -> str:
    """`node.toml: sensors[2].port: Field required` lines, one per error. Union branch names that
    pydantic inserts for tagged unions (e.g. `simulated-pm`) are dropped from the location."""
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p not in hide)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (misspelt? see docs/configuration.md)"
        where = _loc(loc) or "(top level)"
        lines.append(f"{path}: {where}: {msg}")
    return "\n".join(lines)


def load_model(path: Path | str, model: type[M], hide: tuple[str, ...] = ()) -> M:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return model.model_validate(data, context={"config_path": path})
    except ValidationError as exc:
        raise ConfigError(describe(path, exc, hide)) from exc


def read_secret(file: Path | None, env: str) -> str | None:
    """A secret from the environment (wins) or from a file; warns when the file is world-readable."""
    if os.environ.get(env):
        return os.environ[env]
    if file is None:
        return None
    try:
        mode = file.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            print(
                f"warning: {file} is readable by other users; run: chmod 600 {file}",
                file=sys.stderr,
            )
        return file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read secret: {exc.strerror}") from exc
