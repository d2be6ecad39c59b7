"""Plain-text email over SMTP with STARTTLS and login (smtplib from the standard library).

With acknowledgement links on ([web] public_url), each address of `to` gets a message of its own,
with links only it was sent: a link's use records the name of the address it went to (the display
name of `"S. Saraa <saraa@example.org>"`, else the address).

A refused recipient or a refused login will not get better by retrying and is given up at once; an
unreachable server, a timeout or a 4xx reply is retried by the dispatcher.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Literal

from pydantic import Field

from contract.configfile import read_secret
from gateway.channels.base import ChannelError, ChannelOptions, Notification, register_channel


class EmailOptions(ChannelOptions):
    type: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    ca_file: Path | None = Field(default=None, description="CA for the server's certificate; system CAs.")
    username: str | None = None
    password_file: Path | None = Field(default=None, description="Or MINEWATCH_SMTP_PASSWORD.")
    sender: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=20.0, gt=0)
    subject_prefix: str = "[minewatch]"


@register_channel(EmailOptions)
class Email:
    def __init__(self, opts: EmailOptions) -> None:
        self._opts = opts
        self._password = read_secret(opts.password_file, "MINEWATCH_SMTP_PASSWORD")
        self._tls = ssl.create_default_context(cafile=str(opts.ca_file) if opts.ca_file else None)
        self.recipients = {to: (parseaddr(to)[0] or parseaddr(to)[1] or to) for to in opts.to}

    def _message(self, note: Notification, to: list[str]) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._opts.sender
        msg["To"] = ", ".join(to)
        msg["Subject"] = f"{self._opts.subject_prefix} {note.subject}".strip()
        msg.set_content(note.text)
        return msg

    def send(self, note: Notification) -> None:
        opts = self._opts
        if note.personal:  # each their own links: one message per address
            messages = [self._message(note.to(to), [to]) for to in opts.to]
        else:
            messages = [self._message(note, opts.to)]
        try:
            with smtplib.SMTP(opts.host, opts.port, timeout=opts.timeout_s) as smtp:
                if opts.starttls:
                    smtp.starttls(context=self._tls)
                if opts.username:
                    smtp.login(opts.username, self._password or "")
                for msg in messages:
                    smtp.send_message(msg)
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused) as exc:
            raise ChannelError(f"SMTP {opts.host}:{opts.port} refused: {exc}", retryable=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(
                f"SMTP {opts.host}:{opts.port} answered {exc.smtp_code}", retryable=exc.smtp_code < 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"SMTP {opts.host}:{opts.port}: {exc}") from exc

    def close(self) -> None:
        pass
