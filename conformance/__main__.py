"""``python -m conformance`` runs the ``conformance`` command line (see :mod:`conformance.cli`)."""

import sys

from .cli import main

sys.exit(main())
