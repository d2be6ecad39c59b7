"""CSV injection: a text cell is never written as a spreadsheet formula, a number always as itself,
and what was stored can be read back exactly."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import csvcell
from tests.helpers import ROOT


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-", "'-"),
        ("'=1", "''=1"),  # so that restore gives '=1 back
        ("-5.2", "-5.2"),  # a number as text: a number, not a formula
        ("+3", "+3"),
        ("-1e-05", "-1e-05"),
        ("'-5", "'-5"),
        ("pms-a@2026-10-01", "pms-a@2026-10-01"),
        ("'abc", "'abc"),
        ("", ""),
        (-5.2, -5.2),
        (-3, -3),
        (None, None),
    ],
)
def test_a_formula_gets_a_quote_and_a_number_stays(cell: Any, written: Any) -> None:
    assert csvcell.neutralise(cell) == written
    if isinstance(cell, str):
        assert csvcell.restore(written) == cell


@given(st.text(st.sampled_from("=+-@\t\r'a1.eE ")) | st.text())
def test_what_is_written_is_never_a_formula_and_reads_back_as_stored(text: str) -> None:
    written = csvcell.neutralise(text)
    assert not written.startswith(csvcell.FORMULA_PREFIXES) or re.fullmatch(r"[+-][0-9.eE+-]*", written)
    assert csvcell.restore(written) == text
    buf = io.StringIO()
    csvcell.Writer(buf).writerow([text, -5.2, 7])
    (row,) = csv.reader(io.StringIO(buf.getvalue(), newline=""))
    assert row == [written, "-5.2", "7"]


def test_every_csv_we_write_goes_through_the_one_writer() -> None:
    """A csv.writer anywhere else would write formulas as they are."""
    offenders = []
    for package in ("contract", "calibration", "hardware", "node", "gateway"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if re.search(r"\bcsv\.(writer|DictWriter)\b|from csv import", text) and path.name != "csvcell.py":
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@given(st.lists(st.text(st.sampled_from("=+-@\t\r\n'a1.,\" ")) | st.text(), min_size=1, max_size=4))
def test_write_cells_writes_what_writerow_writes(texts: list[str]) -> None:
    """The export's fast path: text cells checked by position, the rest written as they are."""
    cells = ["2026-11-01T00:01:00Z", *texts, "-5.2", "60"]
    fast, slow = io.StringIO(), io.StringIO()
    csvcell.Writer(fast).write_cells(list(cells), range(1, 1 + len(texts)))
    csvcell.Writer(slow).writerow(cells)
    assert fast.getvalue() == slow.getvalue()
