"""Warnings to neighbouring jurisdictions, after the Danube accident-warning practice: a warning,
then the neighbour's confirmation of receipt, then the end of the warning; a warning nobody
confirms goes on to the next contact after the rule's escalation time. Every step is recorded
in `warning_log` with its time and the people involved (docs/region.md).

The hub opens a warning when a site forwards a raised alert of a rule registered as concerning a
neighbour (`hub warn-rule`), and marks it ended when the site's all-clear arrives. A warning
whose alert ended before the desk first sent it is sent all the same, marked as already ended,
and its end after it. The desk runs on the hub's loop, with its clock as a parameter; it delivers
through the same channels as a site's alerts (webhook, email, Apprise, ...), one contact at a
time, each in the contact's own language.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from contract.i18n import Texts
from gateway.alerts.messages import text_of
from gateway.channels import ChannelConfig, ChannelContext, ChannelError, Notification, open_channel
from gateway.stores.postgres_hub import HubStore, WarningDue

log = logging.getLogger(__name__)
_CHANNEL: TypeAdapter[Any] = TypeAdapter(ChannelConfig)


def channel_options(table: dict[str, Any]) -> Any:
    """A contact's channel, validated as an `[[alerts.channels]]` table (ValidationError if not)."""
    return _CHANNEL.validate_python(table)


def _no_mqtt(topic: str, payload: bytes) -> bool:
    return False  # a contact is reached by its own channel; the hub lends no MQTT connection


class WarningDesk:
    def __init__(self, store: HubStore, clock: Callable[[], datetime]) -> None:
        self._store, self._clock = store, clock

    def tick(self) -> int:
        """Send what is due; return how many messages went out."""
        now = self._clock()
        due = self._store.warnings_due(now)
        sent = 0
        for i, item in enumerate(due):
            last_of_end = item.action == "end" and not any(
                d.warning == item.warning and d.action == "end" for d in due[i + 1 :]
            )
            try:
                self._deliver(item)
            except (ChannelError, ValidationError, OSError) as exc:
                log.warning("warning %d to %s (%s) failed: %s", item.warning, item.contact, item.action, exc)
                self._store.warning_failed(item, now, str(exc))
                continue
            self._store.warning_sent(item, now, last_of_end=last_of_end)
            sent += 1
        return sent

    def _deliver(self, item: WarningDue) -> None:
        opts = channel_options(item.channel)
        t = Texts(opts.language, opts.timezone)  # the hub has no site: the contact's own zone
        alert = item.alert
        words: dict[str, object] = {"id": item.warning, "site": alert["site"], "node": alert["node"],
                 "neighbour": item.neighbour, "message": text_of(alert, t),
                 "confirm": f"minewatch-gateway hub warning confirm --id {item.warning} --by …"}  # fmt: skip
        # A warning whose alert ended before it was first sent is still a warning (the neighbour
        # should know it happened), marked as already ended; its end follows at the next tick.
        key = "ended_warning" if item.action == "warning" and item.ended is not None else item.action
        if item.ended is not None:
            words["ended"] = t.time(item.ended)
        subject = t(f"warning.{key}.subject", **words)
        text = t(f"warning.{key}.text", **words)
        body = {"warning": item.warning, "action": item.action, "neighbour": item.neighbour,
                "contact": item.contact, "subject": subject, "text": text, "alert": alert,
                "ended": None if item.ended is None else item.ended.isoformat()}  # fmt: skip
        channel = open_channel(opts, ChannelContext(_no_mqtt, "minewatch-hub"))
        try:
            channel.send(Notification(subject, text, body, "critical", [alert]))
        finally:
            channel.close()
