"""A node's reading interval inferred from its readings' times and seq (gateway/dataset.py): what
`export` uses for rows without `period_s`, and the forwarder's estimate for unsigned rows an
earlier version stored without it (docs/protocol.md, `period_unknown`)."""

from __future__ import annotations

import pytest

from gateway.dataset import DEFAULT_INTERVAL_S, inferred_interval_s


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        ([(0, 1), (60_000, 2), (120_000, 3)], 60),
        ([(0, 1), (180_000, 4), (240_000, 5)], 60),  # two readings missing: Δseq says so
        ([(0, 10), (10_000, 11), (20_000, 12), (3_600_000, 13)], 10),  # a long gap is one step of many
        ([(0, 1)], DEFAULT_INTERVAL_S),  # one reading: nothing to infer from
        ([(0, 5), (60_000, 5)], DEFAULT_INTERVAL_S),  # the same seq again (a node restarted)
        ([(0, 1), (400, 2)], 1),  # never below a second
    ],
)
def test_a_nodes_interval_is_inferred_from_times_and_seq(clock: list[tuple[int, int]], expected: int) -> None:
    assert inferred_interval_s(clock) == expected
