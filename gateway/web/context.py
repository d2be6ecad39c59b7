"""What every request handler needs, handed in once when the app is made (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from contract.i18n import Texts
from gateway.config import WebConfig
from gateway.observations.store import ObservationStore
from gateway.stores.reader import Reader
from gateway.web.levels import LimitLine, limit_lines
from gateway.web.status import StatusBoard


@dataclass(frozen=True)
class Context:
    web: WebConfig
    reader: Reader
    board: StatusBoard
    clock: Callable[[], datetime]
    texts: Texts
    observations: ObservationStore | None = None  # residents' observations; None: not kept here

    def limits(self, metric: str) -> list[LimitLine]:
        return limit_lines(self.web.standards, metric)
