"""InfluxDB 1.x over its v1 HTTP API: `/write` (line protocol) and `/query` (InfluxQL).

This is the InfluxDB Debian and Raspberry Pi OS install (`apt install influxdb`, 1.6), and the one the
test suite runs for real. influxdb-client speaks only the v2 API (1.8+ has a compatibility endpoint,
1.6 does not), so this adapter talks HTTP through urllib3, which influxdb-client already brings.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlencode

import urllib3

from gateway.stores.base import StoreError, is_retryable
from gateway.stores.shared_ts import keep_both

if TYPE_CHECKING:
    from gateway.config import InfluxConfig


COMPAT_HINT = "a 2.x bucket needs a DBRP mapping to be read with InfluxQL, docs/operations.md"


def compat_v1(cfg: InfluxConfig) -> InfluxV1:
    """InfluxQL on InfluxDB 2.x: its v1-compatible `/query`, with the bucket as the database and the
    token in an `Authorization: Token` header (the bucket needs a DBRP mapping)."""
    v1 = cfg.model_copy(update={"database": cfg.bucket, "username": None})
    return InfluxV1(v1, token=cfg.token(), missing_hint=COMPAT_HINT)


def probe_version(url: str) -> str:
    """The server's version from `/ping`'s X-Influxdb-Version header ("1.6.7~rc0", "v2.7.4", ...)."""
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3.0, read=5.0), retries=False)
    try:
        resp = http.request("GET", url.rstrip("/") + "/ping")
    except urllib3.exceptions.HTTPError as exc:
        raise StoreError(f"InfluxDB at {url} does not answer /ping: {exc}", retryable=True) from exc
    version = resp.headers.get("X-Influxdb-Version", "")
    if not version:
        raise StoreError(f"{url}/ping has no X-Influxdb-Version header: is it InfluxDB?", retryable=False)
    return str(version)


class InfluxV1:
    def __init__(self, cfg: InfluxConfig, token: str | None = None, missing_hint: str | None = None) -> None:
        # `token`: reading an InfluxDB 2.x through its v1-compatible /query (DBRP mapping needed);
        # `missing_hint`: what a "database not found" then means, carried by the StoreError
        self._missing_hint = missing_hint
        self._headers = {"Authorization": f"Token {token}"} if token else {}
        self._base = str(cfg.url).rstrip("/")
        self._db = cfg.database
        self._rp = cfg.retention_policy
        self._auth: dict[str, str] = {}
        password = cfg.password()
        if cfg.username:
            self._auth = {"u": cfg.username, "p": password or ""}
        # a slow database counts as unreachable after timeout_s: the batch goes to the spool
        timeout = urllib3.Timeout(connect=3.0, read=cfg.timeout_s)
        self._http = urllib3.PoolManager(timeout=timeout, retries=False, maxsize=4)

    def prepare(self) -> None:
        self.ensure_database()

    def ensure_database(self) -> None:
        """CREATE DATABASE is idempotent in 1.x; a user without admin rights just gets a 403 we ignore."""
        try:
            self.query(f'CREATE DATABASE "{self._db}"')
        except StoreError as exc:
            if exc.status not in (401, 403):
                raise

    def write(self, lines: list[str], _retried: bool = False) -> None:
        if not lines:
            return
        if not _retried:  # a reading never replaces another with the same ts (gateway/stores/shared_ts.py)
            lines = keep_both(lines, self.query)
        fields = {"db": self._db, "precision": "ms", **self._auth}
        if self._rp:
            fields["rp"] = self._rp
        try:
            resp = self._http.request(
                "POST",
                f"{self._base}/write?{urlencode(fields)}",
                body=_body(lines),
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except urllib3.exceptions.HTTPError as exc:
            raise StoreError(f"InfluxDB unreachable: {exc}", retryable=True) from exc
        if resp.status == 204:
            return
        message = _error_text(resp.data)
        if resp.status == 404 and "database not found" in message and not _retried:
            self.ensure_database()  # dropped, or never created because InfluxDB was down at start
            self.write(lines, _retried=True)
            return
        raise StoreError(
            f"InfluxDB /write answered {resp.status}: {message}",
            retryable=is_retryable(resp.status),
            status=resp.status,
        )

    def query(self, influxql: str) -> list[dict[str, Any]]:
        """Run InfluxQL; one dict per row with `time` and the columns, series tags merged in."""
        try:
            resp = self._post_query({"q": influxql}, preload=True)
            return list(_rows(_json(resp.data)))
        except StoreError as exc:
            raise self._explained(exc) from None

    def stream(self, influxql: str, chunk_size: int = 10_000) -> Iterator[dict[str, Any]]:
        """Like `query`, but rows arrive as InfluxDB sends them (`chunked=true`, one JSON document
        per line), so an export of a year of readings never holds more than a chunk in memory."""
        try:
            resp = self._post_query({"q": influxql, "chunked": "true", "chunk_size": str(chunk_size)})
            try:
                for line in resp:
                    if line.strip():
                        yield from _rows(_json(line))
            finally:
                resp.release_conn()
        except StoreError as exc:
            raise self._explained(exc) from None

    def stream_series(
        self, influxql: str, chunk_size: int = 10_000
    ) -> Iterator[tuple[dict[str, str], list[str], list[list[Any]]]]:
        """Like `stream`, but a series (or the part of one a chunk holds) at a time, as InfluxDB
        sends it: its tags, its column names (`time` first) and its rows of values, so a caller
        can take the columns in C (`zip(*values)`) rather than build a dict per row."""
        try:
            resp = self._post_query({"q": influxql, "chunked": "true", "chunk_size": str(chunk_size)})
            try:
                for line in resp:
                    if line.strip():
                        yield from _series(_json(line))
            finally:
                resp.release_conn()
        except StoreError as exc:
            raise self._explained(exc) from None

    def stream_cells(
        self, influxql: str, columns: list[str], chunk_size: int = 10_000
    ) -> Iterator[list[str]]:
        """Rows as the database writes them in CSV (`Accept: application/csv`, chunked): lists of
        text cells, `time` (epoch ms) then `columns`; an absent value is an empty cell, a float the
        shortest text that reads back as it ("12" for 12.0). No row is built in Python: csv's C
        reader splits the lines, which is what lets an export keep up with the database. A server
        that answers JSON anyway (a proxy, a 2.x) is read as JSON, a column it leaves out empty."""
        wanted = ["time", *columns]
        try:
            resp = self._post_query(
                {"q": influxql, "chunked": "true", "chunk_size": str(chunk_size)},
                accept="application/csv",
            )
            try:
                if "csv" not in str(resp.headers.get("Content-Type", "")):
                    for line in resp:
                        for row in _rows(_json(line)) if line.strip() else ():
                            yield [_text(row.get(c)) for c in wanted]
                    return
                # TextIOWrapper splits lines in C; the CSV is UTF-8, newlines only inside quotes
                rows = csv.reader(io.TextIOWrapper(cast(BinaryIO, resp), encoding="utf-8", newline=""))
                order: list[int] | None = None  # positions when the header is not `wanted`
                seen = False
                for cells in rows:
                    if cells == ["error"]:
                        detail = next(rows, [""])[0]
                        raise StoreError(f"InfluxQL error: {detail}", retryable=False, status=400)
                    if cells[:2] == ["name", "tags"]:
                        names = cells[2:]
                        order = None if names == wanted else [_index(names, c) for c in wanted]
                        continue
                    seen = True
                    if order is None:
                        del cells[:2]  # the measurement's name and the (ungrouped, empty) tags
                        yield cells
                    else:
                        yield [cells[i] if i >= 0 else "" for i in order]
                if not seen:
                    # InfluxDB 1.x's CSV leaves a statement's error out ("database not found", a
                    # type error): an empty answer is asked again in JSON, which says it
                    self.query(influxql)
            finally:
                resp.release_conn()
        except StoreError as exc:
            raise self._explained(exc) from None

    def _explained(self, exc: StoreError) -> StoreError:
        if self._missing_hint is None or exc.hint is not None:
            return exc
        if exc.status != 404 and "database not found" not in str(exc):
            return exc
        return StoreError(str(exc), retryable=exc.retryable, status=exc.status, hint=self._missing_hint)

    def _post_query(
        self, fields: dict[str, str], preload: bool = False, accept: str | None = None
    ) -> urllib3.BaseHTTPResponse:
        body = {"db": self._db, "epoch": "ms", **self._auth, **fields}
        headers = self._headers if accept is None else {**self._headers, "Accept": accept}
        try:
            resp = self._http.request(
                "POST",
                f"{self._base}/query",
                fields=body,
                encode_multipart=False,
                headers=headers,
                preload_content=preload,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise StoreError(f"InfluxDB unreachable: {exc}", retryable=True) from exc
        if resp.status != 200:
            raise StoreError(
                f"InfluxDB /query answered {resp.status}: {_error_text(resp.data)}",
                retryable=resp.status >= 500,
                status=resp.status,
            )
        return resp

    def close(self) -> None:
        self._http.clear()


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:  # a proxy's HTML page, a cut answer: not InfluxDB speaking
        raise StoreError(f"InfluxDB /query answered with no JSON: {exc}", retryable=True) from exc


def _series(doc: dict[str, Any]) -> Iterator[tuple[dict[str, str], list[str], list[list[Any]]]]:
    for result in doc.get("results", []):
        if "error" in result:
            raise StoreError(f"InfluxQL error: {result['error']}", retryable=False, status=400)
        for series in result.get("series", []):
            if series.get("values"):
                yield series.get("tags", {}), series["columns"], series["values"]


BODY_LINES = 200


def _body(lines: list[str]) -> Iterator[bytes]:
    """The lines of a write, sent chunked (`Transfer-Encoding: chunked`) BODY_LINES at a time.

    Joined into one text and encoded, a batch of 1,000 PMS5003 readings was two copies of 0.6 MB
    alive at once, on top of the batch itself; that raised the gateway's peak memory at every
    write (docs/operations.md, "Ingest benchmark"). InfluxDB reads a chunked body as it reads any."""
    for i in range(0, len(lines), BODY_LINES):
        yield ("\n".join(lines[i : i + BODY_LINES]) + "\n").encode()


def _rows(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for result in doc.get("results", []):
        if "error" in result:
            raise StoreError(f"InfluxQL error: {result['error']}", retryable=False, status=400)
        for series in result.get("series", []):
            tags = series.get("tags", {})
            for values in series.get("values", []):
                row = dict(zip(series["columns"], values, strict=True))
                row.update(tags)
                row.setdefault("_measurement", series.get("name"))
                yield row


def _index(names: list[str], column: str) -> int:
    return names.index(column) + 2 if column in names else -1


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error_text(data: bytes) -> str:
    try:
        return str(json.loads(data).get("error", data[:200]))
    except ValueError:
        return data[:200].decode("utf-8", "replace")
