"""Frames from tests/data/frames/*.hex: one frame per line, hex bytes, `#` comments."""

from __future__ import annotations

from pathlib import Path

FRAMES_DIR = Path(__file__).resolve().parent.parent / "data" / "frames"


def load(name: str) -> list[bytes]:
    lines = (FRAMES_DIR / f"{name}.hex").read_text().splitlines()
    return [bytes.fromhex(line) for line in lines if line.strip() and not line.startswith("#")]


def corrupt(frame: bytes, at: int = -1) -> bytes:
    """The same frame with one checksum byte changed (the last byte by default)."""
    index = at % len(frame)
    return frame[:index] + bytes([(frame[index] + 1) % 256]) + frame[index + 1 :]
