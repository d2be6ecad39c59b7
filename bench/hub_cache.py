"""The regional hub bench's readings, made and signed once and kept on disk (bench/hub.py).

A week of 100 sites x 10 nodes is 10,080,000 signed readings: built as pydantic models and kept in
memory it took the bench 382 s a 600,000 and about 29 GB for the week. Here each site is a
generator of its readings in the order its forwarder would send them (minute by minute, every node
of the minute), written as the hub will receive them — one `ForwardBatch` JSON of 500 readings per
record — and, beside it, the same rows in `COPY` text form for the baseline. Keys are derived from
the site and node names, so a cache made once is reused by every later run (of the week or of a
prefix of it: the first k batches of every site are the first k x 50 minutes). It is made a few
hours of every site at a time, so a cache stopped early is still a prefix of the week for all.

Files in the cache directory, one pair per site:

    <site>.batches   records of [u32 length][ForwardBatch JSON], batch 1, 2, ...
    <site>.copy      COPY text rows (site, node, seq, ts, verdict, kid, metrics, payload)
    <site>.idx       JSON: the byte offset in each file after each batch

The canonical form is written here by hand, for speed; `check_sample` rebuilds it with
contract.signing for the first readings of a site and refuses a cache that differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.hub import ForwardBatch
from contract.signing import Signer, canonical_bytes

T0 = datetime(2026, 6, 1, tzinfo=UTC)
BATCH = 500
_LEN = struct.Struct("<I")


def site_name(i: int) -> str:
    return f"s{i:03d}"


def node_name(j: int) -> str:
    return f"n{j:02d}"


def signer_for(*names: str) -> Signer:
    """A key derived from its names: the same on every run, so a cache stays valid."""
    return Signer.from_seed(hashlib.sha256("/".join(("minewatch-bench-hub", *names)).encode()).digest())


@dataclass(frozen=True)
class Meta:
    sites: int
    nodes: int
    minutes: int
    batch: int = BATCH

    @property
    def batches_per_site(self) -> int:
        return -(-self.nodes * self.minutes // self.batch)


def _ts(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _readings(site: str, nodes: int, minutes: range) -> Iterator[tuple[str, str, int, str, bytes]]:
    """(node, kid, seq, ts, canonical bytes) in the forwarder's order: minute by minute."""
    signers = [(node_name(j), signer_for(site, node_name(j))) for j in range(nodes)]
    kids = [(node, signer.kid) for node, signer in signers]
    for minute in minutes:
        seq, ts = minute + 1, _ts(minute)
        a, b = 10.0 + seq % 37, 20.0 + seq % 41
        for node, kid in kids:
            canon = (
                f'{{"flags":[],"kid":"{kid}","metrics":{{"pm10":{{"n":60,"raw":{b + 2.0!r},"value":{b!r}}},'
                f'"pm2_5":{{"n":60,"raw":{a + 2.0!r},"value":{a!r}}}}},"node":"{node}","period_s":60,'
                f'"schema":1,"seq":{seq},"site":"{site}","ts":"{ts}"}}'
            )
            yield node, kid, seq, ts, canon.encode()


def site_batches(site: str, nodes: int, minutes: range) -> Iterator[tuple[bytes, bytes]]:
    """Each batch of a site's `minutes` as (ForwardBatch JSON, COPY text rows), signed as it is
    made; `minutes` starts on a batch boundary (batch k holds minutes of batch k only)."""
    import base64

    signers = {node_name(j): signer_for(site, node_name(j)) for j in range(nodes)}
    wires: list[bytes] = []
    rows: list[bytes] = []
    number = minutes.start * nodes // BATCH
    for node, kid, seq, ts, canon in _readings(site, nodes, minutes):
        sig = base64.b64encode(signers[node].private.sign(canon))
        signed = canon[:-1] + b',"sig":"' + sig + b'"}'  # the wire form: the hub parses any key order
        wires.append(signed)
        a, b = 10.0 + seq % 37, 20.0 + seq % 41
        metrics = f'{{"pm2_5": {a!r}, "pm10": {b!r}}}'.encode()
        rows.append(b"\t".join((site.encode(), node.encode(), str(seq).encode(), ts.encode(),
                                b"verified", kid.encode(), metrics, signed)) + b"\n")  # fmt: skip
        if len(wires) == BATCH:
            number += 1
            yield _batch(site, number, wires), b"".join(rows)
            wires, rows = [], []
    if wires:
        yield _batch(site, number + 1, wires), b"".join(rows)


def _batch(site: str, number: int, wires: list[bytes]) -> bytes:
    return b'{"v":1,"site":"%s","batch":%d,"readings":[%s]}' % (site.encode(), number, b",".join(wires))


def check_sample(site: str, nodes: int) -> None:
    """The hand-written canonical form is contract.signing's, and the batch parses and verifies."""
    from contract.signing import verify_signature

    body, _ = next(site_batches(site, nodes, range(-(-BATCH // nodes))))
    batch = ForwardBatch.model_validate_json(body)
    for reading in batch.readings[:nodes]:
        signer = signer_for(site, reading.node)
        ours = next(c for n, _, s, _, c in _readings(site, nodes, range(1)) if n == reading.node)
        if canonical_bytes(reading) != ours or not verify_signature(signer.private.public_key(), reading):
            raise SystemExit(f"bench/hub_cache.py: the canonical form of {site}/{reading.node} differs")


def batches_made(directory: Path, site: str) -> int:
    idx = directory / f"{site}.idx"
    return len(json.loads(idx.read_text())) if idx.exists() else 0


def extend_site(directory: Path, site: str, nodes: int, until_minute: int) -> str:
    """Append the site's batches up to `until_minute` to its files (after what is there)."""
    offsets: list[list[int]] = json.loads((directory / f"{site}.idx").read_text()) if (
        directory / f"{site}.idx").exists() else []  # fmt: skip
    start = len(offsets) * BATCH // nodes
    if start >= until_minute:
        return site
    ends = offsets[-1] if offsets else [0, 0]
    with (
        (directory / f"{site}.batches").open("ab") as fb,
        (directory / f"{site}.copy").open("ab") as fc,
    ):
        fb.truncate(ends[0])  # whatever a killed run left after its last indexed batch
        fc.truncate(ends[1])
        fb.seek(ends[0])
        fc.seek(ends[1])
        for body, rows in site_batches(site, nodes, range(start, until_minute)):
            fb.write(_LEN.pack(len(body)))
            fb.write(body)
            fc.write(rows)
            offsets.append([fb.tell(), fc.tell()])
        fb.flush()
        fc.flush()
    tmp = directory / f"{site}.idx.tmp"
    tmp.write_text(json.dumps(offsets))
    os.replace(tmp, directory / f"{site}.idx")
    return site


def _extend(args: tuple[Path, str, int, int]) -> str:
    return extend_site(*args)


def ensure(directory: Path, meta: Meta, workers: int = 2, step_minutes: int = 500) -> None:
    """Make the cache for `meta` (niced, `workers` processes), every site `step_minutes` at a
    time, so that a cache stopped early holds the same prefix of time for every site."""
    directory.mkdir(parents=True, exist_ok=True)
    if BATCH % meta.nodes:
        raise SystemExit(f"--nodes must divide {BATCH}: a batch holds whole minutes")
    check_sample(site_name(0), meta.nodes)
    from multiprocessing import Pool

    with Pool(workers, initializer=os.nice, initargs=(19,)) as pool:
        for until in [*range(step_minutes, meta.minutes, step_minutes), meta.minutes]:
            jobs = [(directory, site_name(i), meta.nodes, until) for i in range(meta.sites)]
            for _ in pool.imap_unordered(_extend, jobs):
                pass
            print(f"  cache: {meta.sites} sites up to minute {until}", flush=True)


def minutes_made(directory: Path, sites: int, nodes: int) -> int:
    """The minutes every one of the first `sites` sites has in the cache."""
    return min(batches_made(directory, site_name(i)) for i in range(sites)) * BATCH // nodes


def read_batches(directory: Path, site: str, count: int) -> Iterator[bytes]:
    """The first `count` batches of a site, read as they are needed."""
    with (directory / f"{site}.batches").open("rb") as fh:
        for _ in range(count):
            head = fh.read(_LEN.size)
            if not head:
                return
            yield fh.read(_LEN.unpack(head)[0])


def copy_bytes(directory: Path, site: str, count: int) -> int:
    """How many bytes of the site's COPY file hold its first `count` batches."""
    offsets = json.loads((directory / f"{site}.idx").read_text())
    return int(offsets[min(count, len(offsets)) - 1][1])


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="make the hub bench's cache (niced)")
    ap.add_argument("directory", type=Path)
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--hours", type=float, default=168.0)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    ensure(a.directory, Meta(a.sites, a.nodes, int(a.hours * 60)), a.workers)
