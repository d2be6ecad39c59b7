"""The alert engine: readings in, alert events out; one state machine per (rule, node).

Single-threaded by design (the gateway's main thread calls every method), and driven by two clocks:
reading time for everything a reading says (means, raise and clear times), and the injected `clock`
for what only the present knows (has a node gone quiet? is this reading late?). Tests drive both.

Idempotent: samples are keyed on (node, metric, ts), so a reading the broker redelivers or a node
replays changes nothing and steps no machine. A reading older than the machine's last step is
judged too (gateway/alerts/machine.py, `advance`): it may raise, never clear or remind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from contract.clock import Clock
from contract.wire import ReadingPayload
from gateway.alerts.events import AlertEvent, alert_id
from gateway.alerts.machine import Evaluation, MachineState, Transition, advance, reset
from gateway.alerts.messages import EN, params_of, render
from gateway.alerts.plan import INSTANT, NOWCAST, READING, WINDOW, Key, Plan
from gateway.alerts.reasons import words
from gateway.alerts.rules import AnyRule
from gateway.alerts.rules.base import incomplete
from gateway.alerts.rules.nowcast import NO_NOWCAST, nowcast_category
from gateway.alerts.windows import Series, WindowMean

log = logging.getLogger(__name__)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class Engine:
    def __init__(self, rules: list[AnyRule], *, clock: Clock, late_after_s: float = 900.0) -> None:
        self.rules = rules
        self._clock = clock
        self._late_after_ms = int(late_after_s * 1000)
        self.machines: dict[Key, MachineState] = {}
        self._series: dict[tuple[str, str, str], Series] = {}
        self._arrivals: dict[tuple[str, str], int] = {}  # clock ms of the last reading
        # What a node last said of itself when it was not `online`: "offline" (its last will) or
        # "stopped" (a planned stop). Only its next `online` status takes it back: a reading that
        # arrives after the status (the last partial one, a backlog) must not clear it falsely.
        self._down: dict[tuple[str, str], str] = {}
        self._dirty: set[Key] = set()
        self._keep_ms = int(max([3600.0, *(rule.history_s for rule in rules)]) * 1000)
        # Windows are kept only for the metrics a rule averages or reads back. A PMS5003 node sends
        # a dozen metrics; a window of each (a day of one-minute readings is about 110 KB) made the
        # engine's memory grow with metrics no rule looks at, and its time too.
        self._windowed = tuple(dict.fromkeys(m for r in rules if (m := r.windowed_metric) is not None))
        # ...and per node only for the metrics of the rules that apply to it, each as long as its
        # own longest window (an hour at least): a thousand nodes at 0.24 MB each was mostly
        # windows some nodes' rules never read, or read only an hour of.
        self._keep_for: dict[str, int] = {}
        for r in rules:
            if (m := r.windowed_metric) is not None:
                self._keep_for[m] = max(self._keep_for.get(m, 3_600_000), int(r.history_s * 1000))
        self._timed = [r for r in rules if r.steps_on_clock]
        self.by_id: dict[str, MachineState] = {}
        self._categories: dict[Key, str] = {}
        # Per rule, what `advance` needs; per (site, node), which rules a reading from it steps.
        # Both are fixed by the rules, so they are worked out once rather than on every reading.
        self._consts = {r.name: _constants(r) for r in rules}
        self._plans: dict[tuple[str, str], Plan] = {}
        # While windows are filled from history (`begin_fill`): the readings that wait, with the
        # clock time each came at, and per node their (time, seq).
        self._pending: list[tuple[ReadingPayload, int]] | None = None
        self._held: dict[tuple[str, str], set[tuple[int, Any]]] | None = None

    # -- state in and out ---------------------------------------------------------------------

    @property
    def history_s(self) -> float:
        """How much reading history the windows need: what a restart reloads from InfluxDB."""
        return self._keep_ms / 1000

    def restore(self, machines: Iterable[MachineState]) -> None:
        known = {r.name for r in self.rules}
        for m in machines:
            if m.rule in known:
                self.machines[m.key] = m
                if m.alert_id:
                    self.by_id[m.alert_id] = m

    @property
    def windowed_metrics(self) -> tuple[str, ...]:
        """The metrics some rule keeps a window of: all a restart needs to reload of a reading."""
        return self._windowed

    def preload(self, site: str, node: str, metric: str | None, ts_ms: int, value: float | None) -> None:
        """Fill a window from stored history (a restart); steps no machine, raises nothing. With
        `metric` None, only note that the node sent a reading then."""
        if metric is not None:
            plan = self._plans.get((site, node)) or self._plan(site, node)
            if metric in plan.windowed:
                series = plan.series.get(metric)
                if series is None:
                    series = plan.add_series(metric, self._series_for(site, node, metric))
                series.add(ts_ms, value)
        # Offline timing resumes from the last stored reading, not from the restart.
        self._arrivals[(site, node)] = max(self._arrivals.get((site, node), 0), ts_ms)

    def preload_node(
        self, site: str, node: str, last_ms: int, windows: dict[str, tuple[list[int], list[float | None]]]
    ) -> None:
        """`preload` for one node's stored readings at once, oldest first: (times, values) per
        metric, and the time of its last reading."""
        plan = self._plans.get((site, node)) or self._plan(site, node)
        for metric, (ts, values) in windows.items():
            if metric in plan.windowed:
                series = plan.series.get(metric)
                if series is None:
                    series = plan.add_series(metric, self._series_for(site, node, metric))
                series.extend(ts, values)
        self._arrivals[(site, node)] = max(self._arrivals.get((site, node), 0), last_ms)

    # -- a first start: windows filled from history while readings come --------------------

    def begin_fill(self) -> None:
        """From now until `end_fill`, readings count as arrived (the offline rules see them) but
        wait for their windows: `fill` hands in each node's, built from stored history elsewhere
        (gateway/alerts/service.py, on a thread), and `end_fill` then judges the waiting readings
        in the order they came, each with the clock time it came at. So every rule sees what it
        would have seen had the whole history been reloaded before the first reading, only later."""
        self._pending, self._held = [], {}

    @property
    def is_filling(self) -> bool:
        return self._pending is not None

    @property
    def pending_count(self) -> int:
        """Readings waiting for the fill to end."""
        return len(self._pending or ())

    def blank_series(self, metric: str) -> Series:
        """An empty window of `metric`, as long as this engine keeps it (nothing is registered)."""
        return Series(self._keep_for.get(metric, self._keep_ms))

    def fill(
        self,
        site: str,
        node: str,
        last_ms: int,
        windows: dict[str, Series],
        times: Sequence[int] = (),
        seqs: Sequence[Any] = (),
    ) -> None:
        """One node's windows from its stored readings (`times` and `seqs`: those readings, which
        `windows` were built from), during a fill. A reading that waits (it came during the fill)
        and was stored before the history was read is in both: it is taken out of the windows, as
        it was not there when the fill began, and goes in again when it is judged. One that shares
        its time with an older reading of another seq stays: then it finds that reading, as it
        would have (gateway/alerts/windows.py replaces the value and judges nothing)."""
        held = self._held.get((site, node)) if self._held is not None else None
        if held:
            times_held = {t for t, _ in held}
            found: dict[int, list[Any]] = {}
            for t, seq in zip(times, seqs, strict=True):
                if t in times_held:
                    found.setdefault(t, []).append(seq)
            changed: set[int] = set()
            for t, stored in found.items():
                if all((t, q) in held for q in stored):
                    for series in windows.values():
                        if series.discard(t):
                            changed.add(id(series))
            for series in windows.values():
                if id(series) in changed:
                    series.infer_period()
        for metric, series in windows.items():
            self.adopt(site, node, metric, series)
        self._arrivals[(site, node)] = max(self._arrivals.get((site, node), 0), last_ms)

    def end_fill(self) -> list[AlertEvent]:
        """The windows are full: judge the readings that waited, in order. The events they make."""
        pending, self._pending, self._held = self._pending or [], None, None
        events: list[AlertEvent] = []
        for now_ms, group in groupby(pending, key=itemgetter(1)):
            events += self._readings([r for r, _ in group], now_ms, arrive=False)
        return events

    def finish_preload(self) -> None:
        for series in self._series.values():
            series.infer_period()

    @property
    def window_fingerprint(self) -> list[list[Any]]:
        """What the windows' shape depends on: a saved window is usable only under the same."""
        return [[m, self._keep_for[m]] for m in sorted(self._keep_for)]

    @property
    def arrivals(self) -> dict[tuple[str, str], int]:
        return dict(self._arrivals)

    def all_series(self) -> list[tuple[tuple[str, str, str], Series]]:
        return list(self._series.items())

    def adopt(self, site: str, node: str, metric: str, series: Series) -> None:
        """A window saved by an earlier run (gateway/alerts/snapshot.py), if this node still keeps it."""
        plan = self._plans.get((site, node)) or self._plan(site, node)
        if metric in plan.windowed:
            self._series[(site, node, metric)] = series
            plan.add_series(metric, series)

    def take_dirty(self) -> list[MachineState]:
        out = [self.machines[k] for k in self._dirty if k in self.machines]
        self._dirty.clear()
        return out

    def series(self, site: str, node: str, metric: str) -> Series | None:
        return self._series.get((site, node, metric))

    def _series_for(self, site: str, node: str, metric: str) -> Series:
        key = (site, node, metric)
        if key not in self._series:
            self._series[key] = Series(self._keep_for.get(metric, self._keep_ms))
        return self._series[key]

    def _machine(self, rule: AnyRule, site: str, node: str) -> MachineState:
        key = (rule.name, site, node)
        if key not in self.machines:
            self.machines[key] = MachineState(rule.name, site, node)
        return self.machines[key]

    # -- inputs -------------------------------------------------------------------------------

    def on_readings(self, readings: Iterable[ReadingPayload]) -> list[AlertEvent]:
        now_ms = _ms(self._clock())
        pending, held = self._pending, self._held
        if pending is None or held is None:
            return self._readings(readings, now_ms, arrive=True)
        # Filling (see `begin_fill`): the node has arrived now (the offline rules), its windows and
        # the rules on them wait for the history.
        events: list[AlertEvent] = []
        for r in readings:
            site, node = r.site, r.node
            plan = self._plans.get((site, node)) or self._plan(site, node)
            self._arrivals[(site, node)] = now_ms
            if (site, node) not in self._down:
                for rule in plan.on_arrival:
                    events += self._step(rule, site, node, now_ms, Evaluation("ok"), now_ms)
            pending.append((r, now_ms))
            held.setdefault((site, node), set()).add((_ms(r.ts), r.seq))
        return events

    def _readings(self, readings: Iterable[ReadingPayload], now_ms: int, *, arrive: bool) -> list[AlertEvent]:
        """Readings into their windows and the rules on them; with `arrive`, they arrived just now
        (else they did at `now_ms` and that is already noted: a fill's replay)."""
        events: list[AlertEvent] = []
        machines = self.machines
        for r in readings:
            site, node = r.site, r.node
            t_ms = _ms(r.ts)
            plan = self._plans.get((site, node)) or self._plan(site, node)
            metrics = r.metrics  # keyed by Metric, a StrEnum: lookups by the metric's name work too
            is_new = kept = False
            for name in plan.windowed:  # the two or three of the reading's dozen metrics
                mv = metrics.get(name)  # type: ignore[call-overload]  # Metric is a StrEnum
                if mv is None:
                    continue
                series = plan.series.get(name) or plan.add_series(name, self._series_for(site, node, name))
                kept = True
                is_new |= series.add(t_ms, mv.value, r.period_s)
            if not kept and plan.evaluated:
                # No window of these metrics is kept (sensor-fault rules read the reading itself):
                # a series of timestamps alone tells a repeat.
                is_new = (plan.seen or plan.add_seen(Series(self._keep_ms))).add(t_ms, None)
            if arrive:
                self._arrivals[(site, node)] = now_ms
                if (site, node) not in self._down:
                    for rule in plan.on_arrival:
                        events += self._step(rule, site, node, now_ms, Evaluation("ok"), now_ms)
            if not is_new:
                continue  # the same reading again: counted once, evaluated once
            # Each window several rules share (three standards' 24-hour PM2.5 means), once.
            values: list[Any] = []
            for group, metric, a, b in plan.groups:
                if metric not in metrics:
                    values.append(None)
                elif group is WINDOW:
                    series = plan.series[metric]
                    mean = series.mean_value(t_ms, a, b)
                    values.append((mean, "") if mean is not None else _window(series.mean(t_ms, a, b), b))
                else:
                    values.append(nowcast_category(plan.series[metric].hourly_means(t_ms, a)))
            for kind, rule, evaluate, needs, key, a, b, limit, above in plan.evaluated:
                if kind is READING:
                    events += self._judge(rule, r, t_ms, now_ms)
                    continue
                if needs not in metrics:
                    continue
                m = machines.get(key) or self._machine(rule, key[1], key[2])
                # A reading behind what this machine has judged is judged too, the long way
                # (`advance`): skipping it, one reading stamped minutes ahead by a fast clock hid
                # every exceedance at that node until reading time caught up (issue 22).
                if m.alert_id is None and t_ms >= m.last_t_ms:
                    # The common cases, an idle machine that stays idle, without building an
                    # Evaluation: what `_step` would do with them. a and b are the kind's constants
                    # (see `_plan`); a change of state or of the reason it is not evaluated takes
                    # the long way below.
                    if kind is WINDOW:
                        value, reason = values[a]
                        if value is None:
                            if not m.evaluable and m.reason == reason:
                                m.last_t_ms = t_ms
                                continue
                        elif m.evaluable and (value <= limit if above else value >= limit):
                            m.last_t_ms, m.value, m.limit = t_ms, value, limit
                            continue
                    elif kind is NOWCAST:
                        value, category, rank = values[a]
                        if value is None:
                            if not m.evaluable and m.reason == NO_NOWCAST:
                                m.last_t_ms = t_ms
                                continue
                        elif m.evaluable and rank < b:
                            m.last_t_ms, m.value, m.limit = t_ms, value, limit
                            self._categories[key] = category
                            continue
                    elif kind is INSTANT and m.evaluable:
                        value = plan.series[needs].value_at(t_ms)  # as the evaluator reads it
                        if value is not None and (value <= limit if above else value >= limit):
                            m.last_t_ms, m.value, m.limit = t_ms, value, limit
                            continue
                # The machine's own (site, node), which is not the reading's when a difference
                # rule's reference is at another site (on the hub).
                e = evaluate(rule, self.series, key[1], key[2], t_ms)
                events += self._step(rule, key[1], key[2], t_ms, e, now_ms)
        return events

    def _plan(self, site: str, node: str) -> Plan:
        plan = Plan()
        windowed: list[str] = []
        for rule in self.rules:
            steps = len(plan.evaluated)
            rule.plan(site, node, plan)
            if len(plan.evaluated) > steps and (m := rule.windowed_metric) is not None:
                windowed.append(m)  # a rule this node steps reads this metric's window
        plan.windowed = tuple(m for m in self._windowed if m in windowed)
        self._plans[(site, node)] = plan
        return plan

    def on_status(self, site: str, node: str, state: str) -> list[AlertEvent]:
        """A node's retained status: `{"state": "offline"}` is its last will, `{"state": "stopped"}`
        its own word on a planned stop, `online` its return. Other states say nothing here."""
        if state == "online":
            self._down.pop((site, node), None)
        elif state in ("offline", "stopped"):
            self._down[(site, node)] = state
        self._arrivals.setdefault((site, node), _ms(self._clock()))
        return self.tick()

    def tick(self) -> list[AlertEvent]:
        """Time-based rules, on the clock: called about once a second by the gateway."""
        now_ms = _ms(self._clock())
        events: list[AlertEvent] = []
        for rule in self._timed:
            for (site, node), seen_ms in list(self._arrivals.items()):
                if not rule.applies(site, node):
                    continue
                quiet_s = (now_ms - seen_ms) / 1000
                e = rule.on_clock(quiet_s, self._down.get((site, node)))
                events += self._step(rule, site, node, now_ms, e, now_ms)
        return events

    def ack(self, ident: str, by: str) -> AlertEvent | None:
        """Acknowledge an active alert: no more reminders; the all-clear still comes."""
        m = self.by_id.get(ident)
        if m is None or not m.is_active:
            return None
        rule = next((r for r in self.rules if r.name == m.rule), None)
        if rule is None or m.acked_by is not None:
            return None
        m.acked_by = by
        self._dirty.add(m.key)
        return self._event(rule, m, "acknowledged", _ms(self._clock()))

    # -- the machines -------------------------------------------------------------------------

    def _judge(self, rule: AnyRule, r: ReadingPayload, t_ms: int, now_ms: int) -> list[AlertEvent]:
        holds = rule.observe(r)
        if holds is None:
            return []
        m = self._machine(rule, r.site, r.node)
        if t_ms < m.last_t_ms:
            # Older than what this machine has seen: it must not move when the fault began. A fault
            # is timed from reading to reading in order, so one behind waits for those that follow.
            return []
        return self._step(rule, r.site, r.node, t_ms, rule.lasting(m, holds, t_ms), now_ms)

    def _step(
        self, rule: AnyRule, site: str, node: str, t_ms: int, e: Evaluation, now_ms: int
    ) -> list[AlertEvent]:
        m = self.machines.get((rule.name, site, node)) or self._machine(rule, site, node)
        is_behind = t_ms < m.last_t_ms  # older than what this machine has judged: see `advance`
        if m.alert_id is None and e.status != "exceeds":
            if is_behind:
                return []  # nothing to raise, and the newest reading's state stands
            # The common case, no alert and nothing to raise: what `advance` does, without the rest.
            m.last_t_ms = t_ms
            reason = e.reason if e.status == "unknown" else ""
            if e.status == "ok":
                m.value, m.limit = e.value, e.limit
                if e.category:
                    self._categories[m.key] = e.category
            if m.reason != reason or m.evaluable != (e.status == "ok"):
                self._dirty.add(m.key)  # `ack --list` shows why a rule is not evaluated
                m.reason = reason
                if m.evaluable == (e.status == "unknown"):
                    m.evaluable = not m.evaluable
                    if not m.evaluable:
                        log.info(
                            "%s at %s/%s not evaluated: %s", rule.name, site, node, words(reason, EN, site)
                        )
            return []
        # What a restart (and `ack --list`) must find as it was.
        was = (m.alert_id, m.evaluable, m.reason, m.clear_since_ms, m.last_notice_ms, m.peak, m.late)
        is_late = now_ms - t_ms > self._late_after_ms
        clear_after_ms, remind_ms, higher_is_worse = self._consts.get(rule.name) or _constants(rule)
        if m.is_active and rule.is_notice(m.detail):
            remind_ms = 0  # told once (a planned stop): nothing to remind of
        transitions = advance(
            m,
            t_ms,
            e,
            clear_after_ms=clear_after_ms,
            remind_ms=remind_ms,
            is_late=is_late,
            worse=higher_is_worse,
        )
        if e.category and (transitions or not is_behind):
            self._categories[m.key] = e.category
        now = (m.alert_id, m.evaluable, m.reason, m.clear_since_ms, m.last_notice_ms, m.peak, m.late)
        if was != now or transitions:
            self._dirty.add(m.key)
        if not m.evaluable and was[1]:
            log.info("%s at %s/%s not evaluated: %s", rule.name, site, node, words(m.reason, EN, site))
        return [self._transition(rule, m, t, t_ms, is_late) for t in transitions]

    def _transition(
        self, rule: AnyRule, m: MachineState, t: Transition, t_ms: int, is_late: bool
    ) -> AlertEvent:
        if t == "raised":
            m.alert_id = alert_id(m.site, m.node, rule.name, _dt(m.started_ms))
            self.by_id[m.alert_id] = m
            return self._event(rule, m, "raised", t_ms)
        if t == "cleared":
            event = self._event(rule, m, "cleared", t_ms, is_late=is_late)
            self.by_id.pop(m.alert_id or "", None)
            reset(m)
            return event
        return self._event(rule, m, "reminder", t_ms)

    def _event(
        self,
        rule: AnyRule,
        m: MachineState,
        state: str,
        at_ms: int,
        *,
        is_late: bool | None = None,
    ) -> AlertEvent:
        late = m.late if is_late is None else (m.late or is_late)
        ended = m.clear_since_ms if state == "cleared" else None
        metric, average = rule.labels()
        event = AlertEvent(
            id=m.alert_id or "",
            state=state,  # type: ignore[arg-type]
            site=m.site,
            node=m.node,
            rule=rule.name,
            rule_type=rule.type,
            metric=metric,
            severity="info" if rule.is_notice(m.detail) else rule.severity,
            at=_dt(at_ms),
            started=_dt(m.started_ms),
            ended=_dt(ended) if ended is not None else None,
            value=_round(m.value),
            limit=_round(m.limit),
            average=average,
            peak=_round(m.peak),
            late=late,
            message="",
            acked_by=m.acked_by,
            category=self._categories.get(m.key) if rule.has_category else None,
            msg_params={"reason": m.detail} if m.detail else {},
            unit=rule.value_unit(metric),
            standard=rule.standard,
        )
        msg_id, extra = rule.message(event)
        params = {**params_of(event), **event.msg_params, **extra}
        if rule.title:  # the operator's own words for the rule, kept with the event (`rule_name`)
            params["title"] = dict(rule.title)
        if rule.standard:  # the limit's source, for readers of the stored row (the feed's details)
            params.setdefault("standard", rule.standard)
        message = render(msg_id, params, EN)
        return event.with_state(event.state, message=message, msg_id=msg_id, msg_params=params)


def _window(mean: WindowMean, needed: float) -> tuple[float | None, str]:
    """A window's mean, or None and the reason a rule on it is not evaluated."""
    return (mean.value, "") if mean.value is not None else (None, incomplete(mean.completeness, needed))


def _constants(rule: AnyRule) -> tuple[int, int, bool]:
    """(clear_after ms, remind_every ms, is a higher value worse) for `advance`."""
    return int(rule.clear_after_s * 1000), int(rule.remind_every_s * 1000), rule.higher_is_worse


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
