"""Loading a TOML config into a pydantic model, with errors that name the file and the key.

Shared by the node, the gateway and calibration files. Nothing here opens a port or a socket:
validation must pass before anything connects.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import pkgutil
import stat
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contract.logrepeat import RepeatFilter

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
        ctx = err.get("ctx") or {}
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            msg = "unknown key (misspelt? see docs/configuration.md)"
        elif err["type"] == "union_tag_invalid":  # pydantic: "Input tag 'x' found using 'type' does not..."
            key = str(ctx.get("discriminator", "type")).strip("'")
            known = str(ctx.get("expected_tags", "")).replace("'", "")
            tag = str(ctx.get("tag"))
            close = difflib.get_close_matches(tag, known.split(", "), n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            loc, msg = (*loc, key), f"{tag!r} is not a {key} we know{guess}; use one of: {known}"
        elif err["type"] == "union_tag_not_found":
            key = str(ctx.get("discriminator", "type")).strip("'")
            loc, msg = (*loc, key), f"missing: every table here says which kind it is with `{key} = ...`"
        where = _loc(loc) or "(top level)"
        lines.append(f"{path}: {where}: {msg}")
    return "\n".join(lines)


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> ConfigError:
    return ConfigError(
        f"{path}: not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}); "
        "save the file as UTF-8 (TOML must be UTF-8)"
    )


def read_toml(path: Path | str) -> dict[str, Any]:
    """The TOML document in `path`; ConfigError naming the file when it cannot be read, is not
    UTF-8 (TOML files must be) or is not TOML."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:  # a ValueError, not an OSError: a Latin-1 or binary file
        raise _not_utf8(path, exc) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def load_model(path: Path | str, model: type[M], hide: tuple[str, ...] = ()) -> M:
    path = Path(path)
    data = read_toml(path)
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
    except UnicodeDecodeError as exc:
        raise _not_utf8(file, exc) from None


def setup_logging(verbose: bool = False) -> None:
    """Plain, greppable lines on stderr (journald under systemd); a line repeated in a loop is
    collapsed into one a minute with its count (contract/logrepeat.py)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def build_cli(prog: str, doc: str, version: str, package: ModuleType) -> argparse.ArgumentParser:
    """A parser whose subcommands are the modules of `package` (each defines `add(sub)`)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"{prog} {version}")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package.__name__}.{info.name}").add(sub)
    return parser


def run_cli(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    *,
    expected: tuple[type[BaseException], ...],
    runtime: tuple[type[BaseException], ...],
) -> int:
    """Run the chosen subcommand: `expected` errors (bad config or input) exit 2 with the message,
    `runtime` errors exit 1."""
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    try:
        code: int = args.func(args)
    except expected as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    except runtime as exc:
        logging.getLogger(parser.prog).error("%s", exc)
        return 1
    return code
