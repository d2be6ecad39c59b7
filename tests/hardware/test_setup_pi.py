"""hardware/setup-pi.sh runs for real: a dry run on this machine, and the full run twice on a copy of
a Raspberry Pi OS /boot and /etc (the second run must find nothing to change)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.helpers import ROOT

SCRIPT = ROOT / "hardware" / "setup-pi.sh"
CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=3a0e-02 rootfstype=ext4 fsck.repair=yes rootwait\n"
)


def setup_pi(*args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINEWATCH_SETUP_ROOT": str(root) if root else "/"}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def fake_pi(tmp_path: Path) -> Path:
    boot = tmp_path / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("# Pi OS defaults\ndtparam=audio=on\n[cm4]\notg_mode=1\n")
    (boot / "cmdline.txt").write_text(CMDLINE)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "modules").write_text("# /etc/modules\n")
    return boot


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_dry_run_on_this_machine_lists_every_step_and_changes_nothing() -> None:
    before = Path("/etc/modules").read_text() if Path("/etc/modules").exists() else None
    result = setup_pi("--dry-run", "--user", "nobody")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for step in (
        "enable_uart=1",
        "dtparam=i2c_arm=on",
        "serial console",
        "i2c-dev",
        "serial-getty",
        "dialout",
    ):
        assert step in out
    assert "would be made" in out or "nothing to change" in out
    after = Path("/etc/modules").read_text() if Path("/etc/modules").exists() else None
    assert before == after


def test_the_full_run_edits_boot_files_once_and_is_idempotent(tmp_path: Path) -> None:
    boot = fake_pi(tmp_path)
    untouched = snapshot(tmp_path)
    dry = setup_pi("--dry-run", "--with-1wire", root=tmp_path)
    assert dry.returncode == 0 and "would    add enable_uart=1" in dry.stdout
    assert snapshot(tmp_path) == untouched
    first = setup_pi("--with-1wire", root=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "reboot now" in first.stdout
    config = (boot / "config.txt").read_text().splitlines()
    assert config == [
        "# Pi OS defaults",
        "dtparam=audio=on",
        "[cm4]",
        "otg_mode=1",
        "[all]",  # the lines are for every model, not only a CM4
        "enable_uart=1",
        "dtparam=i2c_arm=on",
        "dtoverlay=w1-gpio",
    ]
    assert (boot / "cmdline.txt").read_text() == CMDLINE.replace("console=serial0,115200 ", "")
    assert (tmp_path / "etc" / "modules").read_text().splitlines()[-1] == "i2c-dev"
    done = snapshot(tmp_path)
    second = setup_pi("--with-1wire", root=tmp_path)
    assert second.returncode == 0
    assert "nothing to change" in second.stdout and "done" not in second.stdout
    assert snapshot(tmp_path) == done


def test_outside_raspberry_pi_os_it_refuses_to_change_anything(tmp_path: Path) -> None:
    result = setup_pi(root=tmp_path)
    assert result.returncode == 1
    assert "is this Raspberry Pi OS?" in result.stderr
    assert list(tmp_path.iterdir()) == []
