"""`minewatch-gateway`: subscribe, validate, store in InfluxDB, alert.

Exit status: 0 ok, 1 runtime failure, 2 bad usage or bad config.
"""

from __future__ import annotations

import sys

from contract import __version__
from contract.configfile import ConfigError, build_cli, run_cli
from gateway import commands
from gateway.fdlimit import raise_open_files
from gateway.stores import StoreError
from gateway.timerange import QueryArgumentError


def main(argv: list[str] | None = None) -> int:
    raise_open_files()  # before anything opens: a flood of connections must not run us out of files
    parser = build_cli("minewatch-gateway", __doc__ or "", __version__, commands)
    return run_cli(parser, argv, expected=(ConfigError, QueryArgumentError), runtime=(StoreError, OSError))


if __name__ == "__main__":
    sys.exit(main())
