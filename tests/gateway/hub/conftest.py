"""What the hub's store tests share: a prepared HubStore over the test's own database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.stores.postgres_hub import HubStore


@pytest.fixture
def hub(pg: str) -> Iterator[HubStore]:
    store = HubStore(pg)
    store.prepare()
    yield store
    store.close()
