"""InfluxDB 2.x/3.x over the v2 API, written with influxdb-client in synchronous mode.

Synchronous on purpose: the batching write mode can lose buffered points at exit
(influxdata/influxdb-client-python #165, #697), and the gateway batches and acknowledges itself.
No InfluxDB 2 server installs on our test machines, so this path is tested against a local HTTP
server that records `/api/v2/write` (tests/gateway/stores/test_influx_v2.py), not a real server.
What is already stored at a batch's times is looked up over the v1-compatible `/query`
(gateway/stores/shared_ts.py), which needs the bucket's DBRP mapping.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from gateway.stores.base import StoreError, is_retryable
from gateway.stores.influx_v1 import compat_v1
from gateway.stores.shared_ts import keep_both

if TYPE_CHECKING:
    from gateway.config import InfluxConfig

log = logging.getLogger(__name__)
UNGUARDED_WARN_S = 3600.0  # how often a bucket without its DBRP mapping is reported


class InfluxV2:
    def __init__(self, cfg: InfluxConfig) -> None:
        self._org = cfg.org
        self._bucket = cfg.bucket
        self._client = InfluxDBClient(
            url=str(cfg.url),
            token=cfg.token() or "",
            org=cfg.org,
            timeout=int(cfg.timeout_s * 1000),
            retries=False,
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._lookup = compat_v1(cfg)  # what is stored at a batch's times (gateway/stores/shared_ts.py)
        self._warned_at: float | None = None

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        try:
            lines = keep_both(lines, self._lookup.query)
        except StoreError as exc:
            if exc.hint is None:
                raise  # unreachable or failing: retried, as a failed write is
            # Without the bucket's DBRP mapping nothing can be looked up; refusing to store would
            # stop the gateway for want of a setting, so write, and say what is at risk.
            now = time.monotonic()
            if self._warned_at is None or now - self._warned_at >= UNGUARDED_WARN_S:
                self._warned_at = now
                log.warning(
                    "%s: a reading with the ts of a stored one (another seq) may replace it until "
                    "the mapping exists",
                    exc,
                )
        try:
            self._write.write(
                bucket=self._bucket,
                org=self._org,
                record=lines,
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]  # a str constant
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            raise StoreError(
                f"InfluxDB /api/v2/write answered {status}: {exc.body or exc.reason}",
                retryable=is_retryable(status) or status == 0,
                status=status,
            ) from exc
        except OSError as exc:  # urllib3 connection errors derive from OSError
            raise StoreError(f"InfluxDB unreachable: {exc}", retryable=True) from exc
        except Exception as exc:  # urllib3.exceptions.HTTPError is not an OSError
            if type(exc).__module__.startswith("urllib3"):
                raise StoreError(f"InfluxDB unreachable: {exc}", retryable=True) from exc
            raise

    def prepare(self) -> None:
        """Nothing to create: the bucket is made by whoever made the token (docs/operations.md)."""

    def close(self) -> None:
        self._client.close()
        self._lookup.close()
