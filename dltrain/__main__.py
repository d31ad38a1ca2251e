"""`python -m dltrain`: the command line, where the `dltrain` script is not on PATH."""

import sys

from dltrain.cli import main

sys.exit(main())
