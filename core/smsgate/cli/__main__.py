"""``python -m smsgate.cli``: the same as the ``smsgate`` command."""

import sys

from . import main

sys.exit(main())
