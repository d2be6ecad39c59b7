"""Real servers on loopback for the alert channels: an HTTP receiver for webhooks (and Apprise's
json:// URLs), an SMTP server with STARTTLS and login (aiosmtpd, a certificate from trustme), and a
far end that hangs: it accepts TCP connections and never says a word."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gateway.devservices import free_port


class HttpReceiver:
    """Records every POST; answers with the next status of `statuses` (then 200)."""

    def __init__(
        self, statuses: list[int] | None = None, delay_s: float = 0.0, port: int | None = None
    ) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.delay_s = delay_s
        self.statuses = list(statuses or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append((self.path, dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)  # a receiver that hangs: the webhook must time out
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or free_port()), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def json_bodies(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(b) for p, _, b in self.requests if path is None or p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"


class SmtpServer:
    """aiosmtpd on loopback requiring STARTTLS before login, and login before mail."""

    USER, PASSWORD = "monitor", "s3cret-pass"

    def __init__(self, workdir: Path, port: int | None = None, ca: trustme.CA | None = None) -> None:
        ca = ca or trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self.ca_file = workdir / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.inbox = _Inbox()
        self.port = port or free_port()
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=ctx,
            require_starttls=True,
            authenticator=self._auth,
            auth_require_tls=True,
            auth_required=True,
        )
        self.controller.start()

    def _auth(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login.decode() == self.USER
        ok = ok and data.password.decode() == self.PASSWORD
        return AuthResult(success=ok)

    @property
    def messages(self) -> list[Envelope]:
        return self.inbox.messages

    def close(self) -> None:
        self.controller.stop()


class HangServer:
    """Accepts every TCP connection and then neither reads nor answers nor closes: a far end that
    hangs (a wedged SMTP relay, a webhook behind a stuck proxy), not one that refuses. `close` drops
    the listener and every connection, freeing the port for a real server: the far end recovers."""

    def __init__(self, port: int | None = None) -> None:
        self._listener = socket.create_server(("127.0.0.1", port or free_port()))
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                self._held.append(conn)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._held)

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)
        with self._lock:
            for conn in self._held:
                conn.close()
