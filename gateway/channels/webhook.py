"""POST each alert as JSON, signed with HMAC-SHA256 over the exact body bytes.

Header `X-Minewatch-Signature: sha256=<hex>` (docs/protocol.md), the shape GitHub's webhooks use, so a
receiver checks it with `hmac.compare_digest`. A 5xx, 408, 429 or a network error is retried by the
dispatcher; any other 4xx will never succeed and is given up at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Literal

import urllib3
from pydantic import AnyHttpUrl, Field

from contract.configfile import read_secret
from gateway.channels.base import ChannelError, ChannelOptions, Notification, register_channel

SIGNATURE_HEADER = "X-Minewatch-Signature"


class WebhookOptions(ChannelOptions):
    type: Literal["webhook"]
    url: AnyHttpUrl
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    secret_file: Path | None = Field(
        default=None, description="Shared HMAC secret; or MINEWATCH_WEBHOOK_SECRET."
    )
    headers: dict[str, str] = Field(default_factory=dict)
    recipient: str | None = Field(
        default=None,
        max_length=64,
        description="Who the receiver passes alerts to: the name the `ack_url` of its events records.",
    )


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@register_channel(WebhookOptions)
class Webhook:
    def __init__(self, opts: WebhookOptions) -> None:
        self._url = str(opts.url)
        self._secret = read_secret(opts.secret_file, "MINEWATCH_WEBHOOK_SECRET")
        self._headers = dict(opts.headers)
        self.recipients = {opts.label: opts.recipient or opts.label}
        self._key = opts.label
        # Retries are the dispatcher's: one attempt here, so a failure is counted where it happens.
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=opts.timeout_s), retries=False, maxsize=1
        )

    def send(self, note: Notification) -> None:
        note = note.to(self._key)  # its events carry `ack_url` when the gateway makes links
        body = json.dumps(note.body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **self._headers}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        try:
            resp = self._http.request("POST", self._url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise ChannelError(f"POST {self._url}: {exc}") from exc
        if 200 <= resp.status < 300:
            return
        retryable = resp.status >= 500 or resp.status in (408, 429)
        raise ChannelError(f"POST {self._url} answered {resp.status}", retryable=retryable)

    def close(self) -> None:
        self._http.clear()
