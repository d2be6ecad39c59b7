"""Acknowledgement links: a one-purpose, unguessable token per alert and recipient, in the message
that recipient gets, opening a page of the gateway's web server (gateway/web/ack.py) that asks to
confirm before anything happens (a link preview only GETs).

The token is `secrets.token_urlsafe(24)` (192 random bits); only its SHA-256 is kept, in the alert
store beside the acks the CLI requests, so a copy of `alerts.sqlite` acknowledges nothing. A token
ends with its alert (the page looks the alert up among the active ones) or after `[alerts]
ack_link_valid`, whichever comes first, and can be used once: its use is an ack request with the
token's recipient as `by`, the same request `minewatch-gateway ack` makes. The token keeps the
language its recipient reads, so an English-reading partner's link opens an English page on a
Mongolian gateway, and the other way round.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from contract.clock import Clock
from gateway.alerts.store import AlertStore

PATH = "/ack/"
TOKEN_BYTES = 24
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32}$")
"""What `token_urlsafe(24)` gives: 32 URL-safe characters; anything else is not ours."""


def digest(token: str) -> str:
    """The form a token is kept and looked up in."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class AckLinks:
    """Makes links for the dispatcher's workers (their own threads; the store locks)."""

    def __init__(self, store: AlertStore, base_url: str, valid_s: float, clock: Clock) -> None:
        self._store, self._base, self._valid_s, self._clock = store, base_url.rstrip("/"), valid_s, clock

    def url(self, alert_id: str, recipient: str, channel: str, language: str | None = None) -> str:
        """A new link for `recipient` (the name its use records) to acknowledge `alert_id`; its
        pages speak `language`, the recipient's (None: the gateway's `[web] language`)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self._clock().timestamp()
        self._store.add_token(
            digest(token), alert_id, recipient[:64], channel, now, now + self._valid_s, language
        )
        return f"{self._base}{PATH}{token}"
