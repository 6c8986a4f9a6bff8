"""The `alexnet` command (also `python -m alexnet_lab`): see :mod:`.main`."""

from alexnet_lab.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
