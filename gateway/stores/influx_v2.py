"""InfluxDB 2.x/3.x over the v2 API, written with influxdb-client in synchronous mode.

Synchronous on purpose: the batching write mode can lose buffered points at exit
(influxdata/influxdb-client-python #165, #697), and the gateway batches and acknowledges itself.
No InfluxDB 2 server installs on our test machines, so this path is tested against a local HTTP
server that records `/api/v2/write` (tests/gateway/stores/test_influx_v2.py), not a real server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from gateway.stores.base import StoreError, is_retryable

if TYPE_CHECKING:
    from gateway.config import InfluxConfig


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

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
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
