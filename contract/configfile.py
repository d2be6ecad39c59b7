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

from contract.errors import ConfigError, Issue
from contract.i18n import Texts
from contract.logrepeat import RepeatFilter
from contract.wire import ID_PATTERN

__all__ = [
    "ConfigError",
    "Issue",
    "describe",
    "invalid",
    "load_model",
    "read_secret",
    "read_toml",
    "worded",
    "words_of",
]

M = TypeVar("M", bound=BaseModel)

WORDED = ("i2c_address", "i2c_address_here", "missing")
"""pydantic error types (ours, raised with `PydanticCustomError`, and its own) worded by
`[config]` in contract/i18n, the rest in pydantic's English: `config.<type>` takes the error's
`ctx` as its parameters."""


_PLAIN = {
    "int_parsing": "not_whole",
    "int_from_float": "not_whole",
    "float_parsing": "not_number",
    "bool_parsing": "not_bool",
    "greater_than": "above",
    "greater_than_equal": "at_least",
    "less_than": "below",
    "less_than_equal": "at_most",
    "string_too_long": "too_long",
    "string_too_short": "too_short",
    "literal_error": "one_of",
    "enum": "one_of",
    "string_type": "not_text",
}
"""pydantic's own error types a config file meets most, worded by `[config]` (`value` is what
was written, the rest the error's `ctx`); an id is said as an id, not as its pattern."""


def _plain(kind: str, ctx: dict[str, Any], value: Any) -> tuple[str, dict[str, Any]] | None:
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == ID_PATTERN:
            return "not_id", {"value": repr(value)}
        return "pattern", {"value": repr(value), "pattern": ctx.get("pattern")}
    if kind not in _PLAIN:
        return None
    limit = next((ctx[k] for k in ("gt", "ge", "lt", "le", "max_length", "min_length") if k in ctx), "")
    if isinstance(limit, float) and limit.is_integer():
        limit = int(limit)  # "90 or less", as the reader wrote the key's range, not "90.0"
    return _PLAIN[kind], {"value": repr(value), "limit": limit, "expected": ctx.get("expected", "")}


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def issues_of(path: Path | str, exc: ValidationError, hide: tuple[str, ...] = ()) -> tuple[Issue, ...]:
    """What is wrong, one `Issue` per error, in words of our own for the common mistakes. Union
    branch names that pydantic inserts for tagged unions (e.g. `simulated-pm`) are dropped from
    the location."""
    found = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p not in hide)
        ctx = dict(err.get("ctx") or {})
        key: str | None = None
        params: dict[str, Any] = {}
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            key, params = "unknown_key", {"doc": "docs/configuration.md"}
        elif err["type"] == "union_tag_invalid":  # pydantic: "Input tag 'x' found using 'type' does not..."
            name = str(ctx.get("discriminator", "type")).strip("'")
            known = str(ctx.get("expected_tags", "")).replace("'", "")
            tag = str(ctx.get("tag"))
            close = difflib.get_close_matches(tag, known.split(", "), n=1)
            loc, key = (*loc, name), "unknown_type"
            params = {
                "tag": repr(tag),
                "field": name,
                "known": known,
                "close": repr(close[0]) if close else "",
            }
        elif err["type"] == "union_tag_not_found":
            name = str(ctx.get("discriminator", "type")).strip("'")
            loc, key, params = (*loc, name), "no_type", {"field": name}
        elif err["type"] in WORDED:
            key, params = str(err["type"]), ctx
        elif (plain := _plain(str(err["type"]), ctx, err.get("input"))) is not None:
            key, params = plain
        found.append(Issue(str(path), _loc(loc), key, params, "" if key else err["msg"]))
    return tuple(found)


def words_of(key: str, params: dict[str, Any], t: Texts | None = None) -> str:
    """One `[config]` message in `t`'s language (default English); a list parameter (the addresses
    a part answers on) joined with the language's "or"."""
    t = t or Texts("en")
    joined = {k: t("config.or").join(map(str, v)) if isinstance(v, list) else v for k, v in params.items()}
    return t(f"config.{key}", **joined)


def worded(issues: tuple[Issue, ...], t: Texts | None = None) -> str:
    """`node.toml: sensors[2].port: Field required` lines, one per issue, in `t`'s language
    (default English): our words from `[config]`, pydantic's own for the rest."""
    t = t or Texts("en")
    lines = []
    for issue in issues:
        if issue.key is None:
            msg = issue.text
        elif issue.key == "unknown_type":
            p = issue.params
            guess = t("config.did_you_mean", name=p["close"]) if p["close"] else ""
            msg = t("config.unknown_type", tag=p["tag"], field=p["field"], guess=guess, known=p["known"])
        else:
            msg = words_of(issue.key, issue.params, t)
        lines.append(f"{issue.path}: {issue.where or t('config.top_level')}: {msg}")
    return "\n".join(lines)


def describe(path: Path | str, exc: ValidationError, hide: tuple[str, ...] = ()) -> str:
    """`node.toml: sensors[2].port: Field required` lines, one per error, in English."""
    return worded(issues_of(path, exc, hide))


def invalid(path: Path | str, exc: ValidationError, hide: tuple[str, ...] = ()) -> ConfigError:
    """The ConfigError for a config that does not validate: English, and its issues for a command
    that words them in its reader's language (`worded`)."""
    issues = issues_of(path, exc, hide)
    return ConfigError(worded(issues), issues)


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
        raise invalid(path, exc, hide) from exc


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
