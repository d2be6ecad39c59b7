"""What signing costs: per reading, the node building its payload with and without a signature, and
the gateway validating a message with and without verifying it against the key registry, side by
side in one run (median of several rounds), plus the payload size each way.

    .venv/bin/python -m bench.signing [--readings 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.signing import Signer, public_b64
from contract.wire import ReadingPayload
from gateway.trust.registry import KeyRecord, KeyRegistry, save
from gateway.trust.verifier import Verifier
from gateway.validate import parse_reading

TOPIC = "minewatch/v1/tsagaan/haul-road/reading"
T0 = datetime(2026, 11, 22, tzinfo=UTC)


def _reading(seq: int) -> ReadingPayload:
    return ReadingPayload.model_validate(
        {
            "schema": 1,
            "site": "tsagaan",
            "node": "haul-road",
            "seq": seq,
            "ts": T0 + timedelta(minutes=seq),
            "period_s": 60,
            "metrics": {
                "pm1_0": {"value": 7.1, "raw": 8.0, "n": 60, "cal": "pms5003-a12@2026-10-01"},
                "pm2_5": {"value": 10.9, "raw": 12.0, "n": 60, "cal": "pms5003-a12@2026-10-01"},
                "pm10": {"value": 17.4, "raw": 19.2, "n": 60, "cal": "pms5003-a12@2026-10-01"},
            },
            "flags": [],
        }
    )


def _per_item_us(fn: Callable[[int], object], n: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        times.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n, rounds = args.readings, args.rounds
    signer = Signer.from_seed(bytes(range(32)))
    readings = [_reading(i + 1) for i in range(n)]
    plain = [r.to_wire() for r in readings]
    signed = [signer.sign(r).to_wire() for r in readings]
    with tempfile.TemporaryDirectory() as tmp:
        record = KeyRecord(
            kid=signer.kid,
            site="tsagaan",
            node="haul-road",
            public_key=public_b64(signer.private.public_key()),
            created=T0,
        )
        save(Path(tmp), record)
        verifier = Verifier(KeyRegistry(Path(tmp)))
        node_plain = _per_item_us(lambda i: readings[i].to_wire(), n, rounds)
        node_signed = _per_item_us(lambda i: signer.sign(readings[i]).to_wire(), n, rounds)
        gw_plain = _per_item_us(lambda i: parse_reading(TOPIC, plain[i]), n, rounds)
        gw_signed = _per_item_us(lambda i: verifier(parse_reading(TOPIC, signed[i])), n, rounds)
    print(f"{n} readings x {rounds} rounds, median µs per reading (3 PM metrics, calibrated)")
    print(f"{'':34}{'unsigned':>10}{'signed':>10}{'ratio':>8}")
    print(f"{'node: build payload':34}{node_plain:10.1f}{node_signed:10.1f}{node_signed / node_plain:8.2f}")
    print(f"{'gateway: validate (+ verify)':34}{gw_plain:10.1f}{gw_signed:10.1f}{gw_signed / gw_plain:8.2f}")
    size_plain, size_signed = len(plain[0]), len(signed[0])
    print(f"{'payload bytes':34}{size_plain:10d}{size_signed:10d}{size_signed / size_plain:8.2f}")
    print(f"gateway ceiling with verification: {1e6 / gw_signed:,.0f} readings/s on one core")


if __name__ == "__main__":
    main()
