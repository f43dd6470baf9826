"""``python -m keten.cli``: the ``keten`` command without its script (tests start services so)."""

import sys

from keten.cli import main

sys.exit(main())
