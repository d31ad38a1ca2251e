"""The `dltrain` command line: typer commands over the library, errors caught once."""

from dltrain.cli.app import app, main, run

__all__ = ["app", "main", "run"]
