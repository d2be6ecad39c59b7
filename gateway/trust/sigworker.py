"""The signature worker: a process of its own that checks Ed25519 signatures for the gateway, so
that the arithmetic (most of a signed reading's cost) runs on another core than ingest's.

It speaks frames on stdin and stdout (gateway/trust/checker.py writes them): a request is a
big-endian u32 count, then per check the 32-byte public key, the 64-byte signature, a u32 length
and the signed bytes; the answer is one byte per check, 1 when it passes. It imports libsodium
and nothing of the gateway, so it costs about 12 MB, and it ends when its stdin closes (the
gateway stopped, or was killed).
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

COUNT = struct.Struct("!I")
HEAD = struct.Struct("!32s64sI")


def _exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer frames until `requests` ends."""
    from nacl.bindings import crypto_sign_open  # here: the gateway imports this module for COUNT/HEAD
    from nacl.exceptions import BadSignatureError

    while (head := _exactly(requests, COUNT.size)) is not None:
        (count,) = COUNT.unpack(head)
        out = bytearray()
        for _ in range(count):
            item = _exactly(requests, HEAD.size)
            if item is None:
                return
            public, sig, length = HEAD.unpack(item)
            message = _exactly(requests, length)
            if message is None:
                return
            try:
                crypto_sign_open(sig + message, public)
                out.append(1)
            except BadSignatureError:
                out.append(0)
        answers.write(out)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
