"""The `alexnet` command line: argument parsing and printing only; the work is in the library.

One module per command group: weights.py (info, convert, verify), predict.py, train.py (train),
evaluate.py (evaluate, report), bench.py (benchmark), demo.py, serve.py, data.py (shards), inspect.py
(features, explain, filters). This module builds the parser and turns every user error into one
line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from alexnet_lab.cli.bench import add_benchmark
from alexnet_lab.cli.data import add_shards
from alexnet_lab.cli.demo import add_demo
from alexnet_lab.cli.evaluate import add_evaluate, add_report
from alexnet_lab.cli.inspect import add_explain, add_features, add_filters
from alexnet_lab.cli.predict import add_predict
from alexnet_lab.cli.serve import add_serve
from alexnet_lab.cli.train import add_train
from alexnet_lab.cli.weights import add_convert, add_info, add_verify
from alexnet_lab.core.errors import AlexnetLabError
from alexnet_lab.core.version import __version__

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as one line, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise AlexnetLabError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="alexnet", description="AlexNet in PyTorch and Keras 3, with weights you can trust.")
    parser.add_argument("--version", action="version", version=f"alexnet-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (add_info, add_predict, add_convert, add_verify, add_train, add_evaluate, add_report, add_benchmark,
                add_demo, add_serve, add_shards, add_features, add_explain, add_filters):
        add(sub)
    return parser


def _quiet_frameworks() -> None:
    # TensorFlow prints start-up chatter to stderr; keep stderr for our own messages.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    _quiet_frameworks()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        if args.command is None:
            parser.print_help()
            return EXIT_USER_ERROR
        return args.func(args)
    except AlexnetLabError as exc:
        print(f"alexnet: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # the system refused a read or write (permissions, a read-only or full disk, a bad path)
        logging.getLogger("alexnet_lab").debug("the system refused", exc_info=True)
        where = f" '{exc.filename}'" if exc.filename else ""
        print(f"alexnet: error: cannot use{where}: {exc.strerror or exc}; check the path, its permissions and the free "
              "space, then run the command again.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("alexnet: interrupted", file=sys.stderr)
        return 130
