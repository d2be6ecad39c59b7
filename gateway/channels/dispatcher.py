"""Routing, rate limits, quiet hours, retries and isolation for the alert channels.

Each channel has its own worker thread and bounded queue, so a channel that hangs on a dead SMTP
server delays only itself; the gateway's main thread only enqueues. Per channel: which severities
and rules it takes (`accepts`), a rate limit beyond which events are held and sent as one digest,
quiet hours during which non-critical events are held and sent as one digest when they end, and
retries with doubling backoff. A delivery that still fails is logged, counted and kept in the
store as failed; nothing is dropped silently. The worker's `process`/`flush_due` steps are public so
tests drive them with a simulated clock.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from contract.clock import Clock
from contract.i18n import Texts
from gateway.alerts import messages
from gateway.channels.base import Channel, ChannelError, ChannelOptions, Links, Notification, recipients_of

log = logging.getLogger(__name__)
Item = tuple[int, dict[str, Any]]  # (outbox row id, event JSON)


class Outbox(Protocol):
    def delivered(self, row_ids: list[int]) -> None: ...
    def gave_up(self, row_ids: list[int]) -> None: ...


@dataclass
class ChannelStats:
    sent: int = 0  # messages delivered (a digest counts once)
    events: int = 0  # events delivered, singly or in digests
    digests: int = 0
    failures: int = 0  # failed attempts
    given_up: int = 0  # events whose delivery was abandoned after all retries
    held: int = 0  # events waiting for a digest right now
    overflow: int = 0  # events not queued because the queue was full (kept in the store)
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def accepts(opts: ChannelOptions, event: dict[str, Any]) -> bool:
    if event.get("severity") not in opts.severities:
        return False
    return opts.rules is None or event.get("rule") in opts.rules


def in_quiet_hours(opts: ChannelOptions, now: datetime) -> bool:
    if not opts.quiet_hours:
        return False
    start_s, end_s = opts.quiet_hours.split("-")
    start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
    local = now.astimezone(ZoneInfo(opts.timezone)).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # across midnight, e.g. 22:00-07:00


UrlOf = Callable[[dict[str, Any]], "str | None"]


def _no_links(event: dict[str, Any]) -> str | None:
    return None


def _with_url(event: dict[str, Any], url: str | None) -> dict[str, Any]:
    return {**event, "ack_url": url} if url else event


def in_words(event: dict[str, Any], texts: Texts, url: str | None = None) -> dict[str, Any]:
    """The event's JSON as a machine gets it (the webhook's body, the alert topic's payload), with
    what a person reads added: `subject` and `text` (the sentence and its details, as an email
    has them) in the channel's `language`. Additive: `message` stays the stored English, every
    other field as it was, so a receiver written for the old body reads this one."""
    subject = messages.subject(event, texts)
    text = messages.full_text(event, texts, url)
    return {**_with_url(event, url), "language": texts.language, "subject": subject, "text": text}


def single(
    event: dict[str, Any], texts: Texts = messages.EN, url_of: UrlOf = _no_links, also: Iterable[str] = ()
) -> Notification:
    """One event, in the channel's language, with what a monitor needs to act (its id, value and
    limit, place, since when, how to acknowledge: `url_of` gives its link, if any); the body keeps
    the stored English `message`, and a link as `ack_url`, and adds the words (`in_words`).
    `also`: the languages some of its recipients read besides the channel's."""
    url = url_of(event) if messages.is_actionable(event) else None
    body = in_words(event, texts, url)
    return Notification(
        subject=body["subject"],
        text=body["text"],
        body=body,
        severity=str(event.get("severity")),
        events=[],
        translations={
            lang: (
                messages.subject(event, texts.speaking(lang)),
                messages.full_text(event, texts.speaking(lang), url),
            )
            for lang in also
        },
    )


def digest(
    events: list[dict[str, Any]],
    why: str,
    texts: Texts = messages.EN,
    url_of: UrlOf = _no_links,
    also: Iterable[str] = (),
) -> Notification:
    worst = max(events, key=lambda e: ("info", "warning", "critical").index(e.get("severity", "info")))
    urls = {str(e["id"]): u for e in events if messages.is_actionable(e) and (u := url_of(e))}
    subject, text = messages.digest(events, why, texts, urls)
    # each event as `single` has it: the alert topic publishes them one by one
    events = [in_words(e, texts, urls.get(str(e.get("id")))) for e in events]
    body = {
        "digest": True,
        "reason": why,
        "count": len(events),
        "events": events,
        "message": text,
        "language": texts.language,
        "subject": subject,
    }
    return Notification(
        subject=subject,
        text=text,
        body=body,
        severity=str(worst.get("severity")),
        events=list(events),
        is_digest=True,
        translations={lang: messages.digest(events, why, texts.speaking(lang), urls) for lang in also},
    )


@dataclass
class Worker:
    """One channel: its queue, its limits and the thread that delivers."""

    opts: ChannelOptions
    channel: Channel
    outbox: Outbox
    clock: Clock
    stop_event: threading.Event
    sleep: Callable[[float], None] | None = None
    stats: ChannelStats = field(default_factory=ChannelStats)
    site_texts: Texts | None = None  # the site's time zone and names (gateway.toml [site])
    links: Links | None = None  # acknowledgement links, when the gateway makes them

    def __post_init__(self) -> None:
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=self.opts.queue_size)
        self._sent_at: deque[float] = deque()
        self._held: list[Item] = []
        self._held_why = ""
        self._thread: threading.Thread | None = None
        self.label = self.opts.label
        self.texts = (self.site_texts or Texts()).speaking(self.opts.language)
        self.also = sorted(self.opts.other_languages() - {self.opts.language})

    def submit(self, item: Item) -> None:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.stats.overflow += 1
            log.error("alert channel %s: queue full; event kept in the store for the next start", self.label)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"alert-{self.label}", daemon=True)
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                item = self.queue.get(timeout=0.2)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self.process(item)
                self.flush_due()
            except Exception:  # a bug in one channel must not kill its worker for good
                log.exception("alert channel %s failed", self.label)
        # stopping: deliver what is queued, once, without waiting for limits (the store keeps the rest)
        while True:
            try:
                self.process(self.queue.get_nowait())
            except queue.Empty:
                break

    def _now_s(self) -> float:
        return self.clock().timestamp()

    def _room(self) -> bool:
        limit = self.opts.rate_limit
        if limit <= 0:
            return True
        now = self._now_s()
        while self._sent_at and self._sent_at[0] <= now - self.opts.rate_period_s:
            self._sent_at.popleft()
        return len(self._sent_at) < limit

    def process(self, item: Item) -> None:
        event = item[1]
        critical = event.get("severity") == "critical"
        if not critical and in_quiet_hours(self.opts, self.clock()):
            self._hold(item, "quiet hours")
        elif critical and self._room():
            self._deliver([item], self._single(event))  # quiet hours never hold back a critical alert
        elif self._held or not self._room():
            self._hold(item, self._held_why or "rate limit")
        else:
            self._deliver([item], self._single(event))

    def _hold(self, item: Item, why: str) -> None:
        if not self._held:
            self._held_why = why
        self._held.append(item)
        self.stats.held = len(self._held)

    def flush_due(self) -> None:
        """Send the held events as one digest once quiet hours are over and the rate allows."""
        if not self._held:
            return
        if in_quiet_hours(self.opts, self.clock()) or not self._room():
            return
        items, self._held = self._held, []
        self.stats.held = 0
        if len(items) == 1:
            self._deliver(items, self._single(items[0][1]))
        else:
            events = [e for _, e in items]
            self._deliver(
                items,
                self._personal(lambda url_of: digest(events, self._held_why, self.texts, url_of, self.also)),
            )
            self.stats.digests += 1

    def _single(self, event: dict[str, Any]) -> Notification:
        return self._personal(lambda url_of: single(event, self.texts, url_of, self.also))

    def _personal(self, build: Callable[[UrlOf], Notification]) -> Notification:
        """The message, and for each of the channel's recipients its copy with their own links
        (made once per message: the retries of a delivery send the same links)."""
        shared = build(_no_links)
        people = recipients_of(self.channel)
        links = self.links
        if links is None or not people:
            return shared
        personal = {
            key: build(self._links_for(links, name, self.opts.language_of(key)))
            for key, name in people.items()
        }
        return replace(shared, personal=personal)

    def _links_for(self, links: Links, name: str, language: str) -> UrlOf:
        """One recipient's links: recorded with their name, their pages in their language."""
        return lambda event: links.url(str(event["id"]), name, self.label, language)

    def _deliver(self, items: list[Item], note: Notification) -> None:
        rows = [row for row, _ in items]
        pause = self.opts.retry_backoff_s
        for attempt in range(self.opts.retries + 1):
            try:
                self.channel.send(note)
            except ChannelError as exc:
                self.stats.failures += 1
                self.stats.last_error = str(exc)[:300]
                last = attempt == self.opts.retries or not exc.retryable
                log.warning(
                    "alert channel %s: %s (attempt %d of %d%s)",
                    self.label,
                    exc,
                    attempt + 1,
                    self.opts.retries + 1,
                    "; giving up" if last else f"; retrying in {pause:.1f} s",
                )
                if last:
                    self.stats.given_up += len(items)
                    self.outbox.gave_up(rows)
                    return
                if self.sleep is not None:
                    self.sleep(pause)
                elif self.stop_event.wait(pause):
                    return  # stopping: the outbox row stays, the next start sends it
                pause *= 2
            else:
                self.stats.sent += 1
                self.stats.events += len(items)
                if self.opts.rate_limit > 0:
                    self._sent_at.append(self._now_s())
                self.outbox.delivered(rows)
                return


class Dispatcher:
    def __init__(self, workers: list[Worker]) -> None:
        self.workers = {w.label: w for w in workers}

    def route(self, event: dict[str, Any]) -> list[str]:
        """The channels that take this event (the store records one outbox row each)."""
        return [label for label, w in self.workers.items() if accepts(w.opts, event)]

    def submit(self, row: int, label: str, event: dict[str, Any]) -> None:
        worker = self.workers.get(label)
        if worker is not None:
            worker.submit((row, event))

    def start(self) -> None:
        for w in self.workers.values():
            w.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        for w in self.workers.values():
            w.stop_event.set()
        for w in self.workers.values():
            w.join(timeout_s)
        for w in self.workers.values():
            try:
                w.channel.close()
            except Exception:
                log.exception("closing alert channel %s", w.label)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {label: w.stats.as_dict() for label, w in self.workers.items()}
