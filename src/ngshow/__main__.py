"""``python -m ngshow``: the same as the ``ngshow`` command."""

import sys

from .cli import main

sys.exit(main())
