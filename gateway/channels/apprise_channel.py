"""Apprise: one list of URLs reaches Telegram, Signal, SMS gateways, ntfy, Slack, Matrix and the rest
(https://github.com/caronc/apprise/wiki). An optional extra: `pip install 'minewatch[apprise]'`.

The library is imported when the channel is built, so a gateway without it starts fine until a
config asks for it, and then says how to install it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gateway.channels.base import ChannelError, ChannelOptions, Notification, register_channel


class AppriseOptions(ChannelOptions):
    type: Literal["apprise"]
    urls: list[str] = Field(min_length=1, description="Apprise URLs: 'tgram://token/chat', 'ntfy://topic'.")
    recipient: str | None = Field(
        default=None,
        max_length=64,
        description="Who reads these URLs: the name an acknowledgement link's use records "
        "(default: the channel's name).",
    )


@register_channel(AppriseOptions)
class Apprise:
    def __init__(self, opts: AppriseOptions) -> None:
        try:
            import apprise
        except ImportError as exc:
            raise ChannelError(
                "the apprise channel needs the apprise library: pip install 'minewatch[apprise]'",
                retryable=False,
            ) from exc
        self._apprise: Any = apprise.Apprise()
        self._types = {
            "info": apprise.NotifyType.INFO,
            "warning": apprise.NotifyType.WARNING,
            "critical": apprise.NotifyType.FAILURE,
        }
        for url in opts.urls:
            if not self._apprise.add(url):
                raise ChannelError(f"apprise does not understand the URL {url[:40]!r}", retryable=False)
        # One recipient for all the URLs (a chat, a topic): a channel per person tells them apart.
        self.recipients = {opts.label: opts.recipient or opts.label}
        self._key = opts.label

    def send(self, note: Notification) -> None:
        note = note.to(self._key)
        ok = self._apprise.notify(
            body=note.text, title=note.subject, notify_type=self._types.get(note.severity)
        )
        if not ok:
            raise ChannelError("apprise could not deliver to at least one URL")

    def close(self) -> None:
        pass
