"""`minewatch-calibrate`: fit calibrations from co-location data or standard solutions, apply them to
raw values, and show them in plain words (docs/calibration.md).

Exit status: 0 ok, 1 runtime failure, 2 bad input (the message names the file, row and column).
"""

from __future__ import annotations

import importlib.util
import sys

from contract import __version__
from contract.configfile import ConfigError, build_cli, run_cli

EXTRA_MISSING = (
    "minewatch-calibrate: fitting calibrations needs numpy, which a node install leaves out; "
    "install the calibrate extra: pip install 'minewatch[calibrate]'"
)


def main(argv: list[str] | None = None) -> int:
    if importlib.util.find_spec("numpy") is None:
        print(EXTRA_MISSING, file=sys.stderr)
        return 2
    # only now: the commands import numpy, an optional extra on a node (checked just above)
    from calibration import commands
    from calibration.fit import FitInputError

    parser = build_cli("minewatch-calibrate", __doc__ or "", __version__, commands)
    return run_cli(parser, argv, expected=(ConfigError, FitInputError), runtime=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
