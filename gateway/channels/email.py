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

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.configfile import read_secret
from contract.i18n import Texts
from gateway.channels.base import ChannelError, ChannelOptions, Notification, register_channel


class Recipient(BaseModel):
    """A recipient who reads another language than the channel's: `{address = "...", language = "en"}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(min_length=3)
    language: str

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return Texts.known_language(value)


class EmailOptions(ChannelOptions):
    type: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    ca_file: Path | None = Field(default=None, description="CA for the server's certificate; system CAs.")
    username: str | None = None
    password_file: Path | None = Field(default=None, description="Or MINEWATCH_SMTP_PASSWORD.")
    sender: str = Field(alias="from", min_length=3)
    to: list[str | Recipient] = Field(
        min_length=1, description="Addresses; {address, language} for one who reads another language."
    )
    timeout_s: float = Field(default=20.0, gt=0)
    subject_prefix: str = "[minewatch]"

    def addresses(self) -> list[str]:
        """Every address in `to`, as listed: each is a recipient with links of their own."""
        return [r if isinstance(r, str) else r.address for r in self.to]

    def other_languages(self) -> set[str]:
        return {r.language for r in self.to if isinstance(r, Recipient)}

    def language_of(self, recipient: str) -> str:
        found = (r.language for r in self.to if isinstance(r, Recipient) and r.address == recipient)
        return next(found, self.language)

    def by_language(self) -> dict[str | None, list[str]]:
        """Addresses per language (None: the channel's `language`), in the order they are listed."""
        out: dict[str | None, list[str]] = {}
        for r in self.to:
            language, address = (None, r) if isinstance(r, str) else (r.language, r.address)
            out.setdefault(None if language == self.language else language, []).append(address)
        return out


@register_channel(EmailOptions)
class Email:
    def __init__(self, opts: EmailOptions) -> None:
        self._opts = opts
        self._password = read_secret(opts.password_file, "MINEWATCH_SMTP_PASSWORD")
        self._tls = ssl.create_default_context(cafile=str(opts.ca_file) if opts.ca_file else None)
        self.recipients = {to: (parseaddr(to)[0] or parseaddr(to)[1] or to) for to in opts.addresses()}

    def _message(self, to: list[str], subject: str, text: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._opts.sender
        msg["To"] = ", ".join(to)
        msg["Subject"] = f"{self._opts.subject_prefix} {subject}".strip()
        msg.set_content(text)
        return msg

    def send(self, note: Notification) -> None:
        """One message per language its recipients read, over one SMTP session; with
        acknowledgement links (each recipient their own), one per address. A failure part way is
        retried whole, so a recipient may get a message twice, never none."""
        opts = self._opts
        if note.personal:
            msgs = [
                self._message([to], *note.to(to).words(language))
                for language, addresses in opts.by_language().items()
                for to in addresses
            ]
        else:
            msgs = [self._message(to, *note.words(language)) for language, to in opts.by_language().items()]
        try:
            with smtplib.SMTP(opts.host, opts.port, timeout=opts.timeout_s) as smtp:
                if opts.starttls:
                    smtp.starttls(context=self._tls)
                if opts.username:
                    smtp.login(opts.username, self._password or "")
                for msg in msgs:
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
