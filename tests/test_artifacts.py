"""The suite's last line says where this run's screenshots are, and stays quiet without any."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers import artifacts_root, screenshots_note


def test_the_note_counts_this_runs_screenshots_only(tmp_path: Path) -> None:
    since = time.time()
    (tmp_path / "phone").mkdir()
    old = tmp_path / "phone" / "en-overview.png"
    old.write_bytes(b"png")
    os.utime(old, (since - 3600, since - 3600))  # a previous run's
    assert screenshots_note(tmp_path, since) is None
    for name in ("en-login.png", "mn-login.png"):
        (tmp_path / "phone" / name).write_bytes(b"png")
    (tmp_path / "phone" / "notes.txt").write_text("not a screenshot")
    note = screenshots_note(tmp_path, since)
    assert note is not None and note.startswith("screenshots: 2 from this run in ") and str(tmp_path) in note
    assert screenshots_note(tmp_path / "missing", since) is None


def test_the_folder_is_minewatch_artifacts_or_test_artifacts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINEWATCH_ARTIFACTS", "/tmp/ci-shots")
    assert artifacts_root() == Path("/tmp/ci-shots")
    monkeypatch.delenv("MINEWATCH_ARTIFACTS")
    assert artifacts_root().name == "test-artifacts" and (artifacts_root().parent / "Makefile").exists()
