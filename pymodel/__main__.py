"""``python -m pymodel``: the command line (see :mod:`pymodel.cli`)."""

import sys

from .cli import main

sys.exit(main())
