"""Every CSV we write goes through here, so no cell is run as a formula when someone opens the file
in a spreadsheet (CSV injection, OWASP "CSV Injection").

A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is written with a single
quote in front (`=HYPERLINK(...)` becomes `'=HYPERLINK(...)`), which spreadsheets show as text. A
cell that is a plain decimal number (`-5.2`, `+3`, `1e-05`) is a number, not a formula, and is
written as it is. So that `restore` gives back exactly what was stored, a text that already starts
with quotes before one of those characters gets one more (`'=x` is written `''=x`).

`minewatch-calibrate apply` writes CSV too, and calibration/ imports only the contract: so it is here.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class _Out(Protocol):
    def write(self, text: str, /) -> Any: ...


def _is_formula(text: str) -> bool:
    return text.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(text)


def _needs_quote(text: str) -> bool:
    return _is_formula(text.lstrip("'"))


def neutralise(value: Any) -> Any:
    """The cell as written: a text a spreadsheet would take for a formula gets a leading `'`;
    numbers, and text that is a plain number, are left alone."""
    if isinstance(value, str) and _needs_quote(value):
        return "'" + value
    return value


def restore(text: str) -> str:
    """The stored text of a cell `neutralise` wrote (for reading our own CSV back: `verify`)."""
    if text.startswith("'") and _needs_quote(text[1:]):
        return text[1:]
    return text


class Writer:
    """`csv.writer` whose every cell goes through `neutralise`; the only CSV writer we use."""

    def __init__(self, out: _Out, lineterminator: str = "\n") -> None:
        self._writer = csv.writer(out, lineterminator=lineterminator)
        # csv quotes a field holding a character of the line terminator, so with "\n" a lone CR
        # would go out bare and a reader would end the row there: such a row is quoted whole
        self._quoted = csv.writer(out, lineterminator=lineterminator, quoting=csv.QUOTE_ALL)

    def writerow(self, row: Iterable[Any]) -> None:
        cells = [neutralise(cell) for cell in row]
        if any(isinstance(cell, str) and "\r" in cell for cell in cells):
            self._quoted.writerow(cells)
        else:
            self._writer.writerow(cells)

    def write_cells(self, cells: list[str], texts: Sequence[int]) -> None:
        """A row already in text (a database's own CSV) whose only text columns are those at
        `texts`, the rest numbers, times and booleans: only those are looked at, and a row with
        nothing to neutralise goes straight to csv, which keeps an export of millions of rows at
        the database's speed. Written exactly as `writerow` would."""
        for i in texts:
            cell = cells[i]
            if cell.startswith(FORMULA_PREFIXES) or cell.startswith("'") or "\r" in cell:
                self.writerow(cells)
                return
        self._writer.writerow(cells)
