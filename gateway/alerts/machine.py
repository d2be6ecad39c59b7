"""One alert's life for one (rule, node): idle -> raised -> reminders -> cleared, on event time.

Pure: the machine gets a time and an evaluation and says which transitions happened; the engine turns
them into events and the store persists the state. Hysteresis (`clear_ok` is stricter than
"not exceeding") and `clear_after` keep it from flapping around the limit.

A reading behind the machine (older than the newest it has judged: a node whose clock ran fast and
was corrected, data arriving out of order) is still judged: it may raise, and it counts for the peak
and against the all-clear's wait, but it never clears or reminds; the readings in order do that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

Status = Literal["exceeds", "ok", "unknown"]
Transition = Literal["raised", "reminder", "cleared"]


class Evaluation(NamedTuple):  # a tuple, not a frozen dataclass: one per rule per reading
    status: Status  # "unknown": not evaluated (incomplete window, missing reference, ...)
    value: float | None = None
    limit: float | None = None
    clear_ok: bool = True  # on the clear side of the hysteresis band
    reason: str = ""  # why unknown, or a detail for the message
    category: str | None = None


@dataclass
class MachineState:
    rule: str
    site: str
    node: str
    alert_id: str | None = None  # set while an alert is active
    started_ms: int = 0
    last_notice_ms: int = 0
    clear_since_ms: int | None = None
    last_t_ms: int = 0
    peak: float | None = None
    value: float | None = None
    limit: float | None = None
    late: bool = False
    acked_by: str | None = None
    evaluable: bool = True
    reason: str = ""
    since_ms: int | None = None  # rule-specific: when a sensor fault began
    cleared_t_ms: int = 0  # reading time of the last all-clear: what is behind it raises nothing
    detail: str = ""  # what the active alert was raised for, from its evaluation ("stopped": planned)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.site, self.node)

    @property
    def is_active(self) -> bool:
        return self.alert_id is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def advance(
    m: MachineState,
    t_ms: int,
    ev: Evaluation,
    *,
    clear_after_ms: int,
    remind_ms: int,
    is_late: bool,
    worse: bool | None = None,
) -> list[Transition]:
    """Move the machine to time `t_ms` with this evaluation. `worse(a, b)` direction: True when a
    higher value is worse (the usual), False for "below" rules."""
    higher_is_worse = True if worse is None else worse
    if t_ms < m.last_t_ms:
        return _behind(m, t_ms, ev, is_late=is_late, higher_is_worse=higher_is_worse)
    m.last_t_ms = t_ms
    m.evaluable = ev.status != "unknown"
    m.reason = ev.reason if ev.status == "unknown" else ""
    if ev.status == "unknown":
        return []
    m.value, m.limit = ev.value, ev.limit
    if not m.is_active:
        if ev.status != "exceeds":
            return []
        _raise(m, t_ms, ev, is_late)
        return ["raised"]
    _peak(m, ev, higher_is_worse)
    if ev.status == "exceeds" or not ev.clear_ok:
        m.clear_since_ms = None
    else:
        if m.clear_since_ms is None:
            m.clear_since_ms = t_ms
        if t_ms - m.clear_since_ms >= clear_after_ms:
            m.cleared_t_ms = t_ms
            return ["cleared"]
        return []
    if m.late and not is_late:
        m.late = False  # the backlog has caught up while it still exceeds: live from now on
    if remind_ms > 0 and not is_late and m.acked_by is None and t_ms - m.last_notice_ms >= remind_ms:
        m.last_notice_ms = t_ms
        return ["reminder"]
    return []


def _behind(
    m: MachineState, t_ms: int, ev: Evaluation, *, is_late: bool, higher_is_worse: bool
) -> list[Transition]:
    """A reading older than the newest the machine has judged. Skipping it blinded the machine until
    reading time caught up with one reading stamped minutes ahead (issue 22), so it is judged: an
    exceedance raises (late when it arrived late, as replayed data is), unless an alert already told
    of that time (it is not after the last all-clear); in an alert it counts for the peak and, if
    it is inside the all-clear's wait, restarts it. The state the newest reading left (value,
    whether evaluated and why) stays, and clearing and reminding wait for the readings in order."""
    if ev.status == "unknown":
        return []
    if not m.is_active:
        if ev.status != "exceeds" or t_ms <= m.cleared_t_ms:
            return []
        m.value, m.limit = ev.value, ev.limit
        _raise(m, t_ms, ev, is_late)
        return ["raised"]
    _peak(m, ev, higher_is_worse)
    if (
        (ev.status == "exceeds" or not ev.clear_ok)
        and m.clear_since_ms is not None
        and t_ms >= m.clear_since_ms
    ):
        m.clear_since_ms = None  # the wait starts again at the next reading on the clear side
    return []


def _raise(m: MachineState, t_ms: int, ev: Evaluation, is_late: bool) -> None:
    m.started_ms = m.last_notice_ms = t_ms
    m.peak, m.late, m.acked_by, m.clear_since_ms = ev.value, is_late, None, None
    m.detail = ev.reason
    m.alert_id = "pending"  # the engine names it


def _peak(m: MachineState, ev: Evaluation, higher_is_worse: bool) -> None:
    if ev.value is not None and (
        m.peak is None or (ev.value > m.peak if higher_is_worse else ev.value < m.peak)
    ):
        m.peak = ev.value


def reset(m: MachineState) -> None:
    """After the all-clear: back to idle, keeping what the next evaluation needs."""
    m.alert_id, m.peak, m.clear_since_ms, m.acked_by, m.late = None, None, None, None, False
    m.detail = ""
