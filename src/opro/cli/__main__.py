"""``python -m opro.cli``: the ``opro`` command."""

import sys

from opro.cli import main

sys.exit(main())
