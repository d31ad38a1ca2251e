"""`python -m dltrain`: the command line, where the `dltrain` script is not on PATH."""

from dltrain.cli import run

run()
