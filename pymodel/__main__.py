"""``python -m pymodel``: the command line (see :mod:`pymodel.cli`)."""

import sys

try:
    from pymodel.cli import main
except KeyboardInterrupt:            # Ctrl-C while Python loads the package: one line
    print("qmac: interrupted during start-up; nothing was written", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
