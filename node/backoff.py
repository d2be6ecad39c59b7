"""Jittered exponential backoff for reconnecting to the broker.

Every kit on a site loses the gateway at the same moment (the gateway's power or uplink), so every
kit would otherwise come back on the same schedule and hit the broker together. "Equal jitter": the
n-th wait is drawn uniformly from [cap/2, cap], with cap = min(max_s, min_s * 2**n).
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(
        self, min_s: float = 1.0, max_s: float = 60.0, rand: Callable[[], float] = random.random
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"backoff needs 0 < min_s <= max_s, got {min_s} and {max_s}")
        self._min_s, self._max_s, self._rand = min_s, max_s, rand
        self.attempts = 0

    def next(self) -> float:
        """The wait before the next attempt; each call counts one more failed attempt."""
        cap = min(self._max_s, self._min_s * 2.0 ** min(self.attempts, 32))
        self.attempts += 1
        return cap / 2 + self._rand() * cap / 2

    def reset(self) -> None:
        """After a successful connection the next outage starts from the shortest wait again."""
        self.attempts = 0
