"""``python -m posetok``: the command line, also the entry point for ``torchrun -m posetok train ...``."""

import sys

from .cli import main

sys.exit(main())
