"""A small real file system for the node's full-disk tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def small_card(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs of the test's own, standing in for the SD card; unmounted whatever the test does.

    Mounting needs root, as CI has; anywhere else the test fails and says so rather than pass untried."""
    card = tmp_path / "card"
    card.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(card)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        why = done.stderr.strip()
        pytest.fail(f"cannot mount a tmpfs on {card} ({why}): run the tests as root, as CI does")
    try:
        yield card
    finally:
        # A file still open (a test that failed half-way) keeps it busy: detach it all the same.
        if subprocess.run(["umount", str(card)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(card)], check=True)
