"""``python -m pymodel``: the command line (see :mod:`pymodel.cli`)."""

import sys

from pymodel.cli import main

sys.exit(main())
