"""`minewatch-node`: the firmware of a minewatch sensor node.

Exit status: 0 ok, 1 runtime failure, 2 bad usage or bad config.
"""

from __future__ import annotations

import sys

from contract import __version__
from contract.configfile import ConfigError, build_cli, run_cli
from node import commands


def main(argv: list[str] | None = None) -> int:
    parser = build_cli("minewatch-node", __doc__ or "", __version__, commands)
    return run_cli(parser, argv, expected=(ConfigError,), runtime=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
