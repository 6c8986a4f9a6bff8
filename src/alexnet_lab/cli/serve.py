"""`alexnet serve`: the web page and HTTP API over one model, as a service."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys

from alexnet_lab.cli.flags import FRAMEWORKS_HELP, WEIGHTS_HELP
from alexnet_lab.frameworks.registry import NAMES

TOKEN_ENV = "ALEXNET_SERVE_TOKEN"


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="a web page and JSON API: predictions from both frameworks side by side",
                       description="Loads the weights once, one supervised worker process per framework, and serves the "
                       "page at http://HOST:PORT/, the API under /api, /healthz, /readyz, /metrics and the OpenAPI "
                       "description (/docs). Ctrl-C or SIGTERM stops it after the requests in flight.")
    p.add_argument("weights", help=WEIGHTS_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only; any "
                   "other address needs --token or --insecure)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--frameworks", nargs="+", default=list(NAMES), help=FRAMEWORKS_HELP)
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda[:N] or mps for the models")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest image file accepted (default 20)")
    p.add_argument("--max-request-mb", type=float, default=64.0, help="largest request body, all its files together, "
                   "refused while it streams (default 64)")
    p.add_argument("--token", default=None, help=f"bearer token every API call must carry (default: ${TOKEN_ENV}); "
                   "required to bind an address other than loopback")
    p.add_argument("--insecure", action="store_true", help="serve a non-loopback address without a token (warns)")
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                   help="allow browser calls from this origin (repeatable; default: none)")
    p.add_argument("--max-batch", type=int, default=1, help="images gathered into one forward pass (default 1: no "
                   "micro-batching; 32 serves many concurrent clients faster, see docs/serve.md)")
    p.add_argument("--max-wait-ms", type=float, default=10.0, help="with --max-batch above 1, how long a request waits "
                   "for others to batch with (default 10)")
    p.add_argument("--max-queue", type=int, default=256, help="images waiting per framework before 503 (default 256)")
    p.add_argument("--timeout-s", type=float, default=30.0, help="deadline of one model call; a worker that misses "
                   "it is restarted (default 30)")
    p.add_argument("--shutdown-timeout-s", type=float, default=30.0, help="how long requests in flight may finish "
                   "after Ctrl-C or SIGTERM (default 30)")
    p.add_argument("--max-connections", type=int, default=None, help="concurrent connections before 503 "
                   "(default: no limit)")
    p.set_defaults(func=cmd_serve)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and 'localhost' reach this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _check(args: argparse.Namespace, token: str | None) -> None:
    from alexnet_lab.core.errors import UserInputError
    from alexnet_lab.frameworks import check_framework

    for framework in args.frameworks:
        check_framework(framework)
    if not 0 < args.port < 65536:
        raise UserInputError(f"--port must be between 1 and 65535; received {args.port}.")
    for flag, value in [("--max-upload-mb", args.max_upload_mb), ("--max-request-mb", args.max_request_mb),
                        ("--max-batch", args.max_batch), ("--max-queue", args.max_queue), ("--timeout-s", args.timeout_s)]:
        if not value > 0:
            raise UserInputError(f"{flag} must be positive; received {value}.")
    if args.max_wait_ms < 0 or args.shutdown_timeout_s < 0:
        raise UserInputError("--max-wait-ms and --shutdown-timeout-s cannot be negative.")
    if args.max_queue < args.max_batch:
        raise UserInputError(f"--max-queue ({args.max_queue}) must be at least --max-batch ({args.max_batch}).")
    if token is not None and not token.strip():
        raise UserInputError("the token is empty; pass a non-empty --token or unset $" + TOKEN_ENV + ".")
    if not is_loopback(args.host) and token is None and not args.insecure:
        raise UserInputError(f"--host {args.host} lets other machines call the API; pass --token T (or set "
                             f"${TOKEN_ENV}) so that only callers with the token can, or --insecure to serve without one.")


def cmd_serve(args: argparse.Namespace) -> int:
    from alexnet_lab.serve import BatchingOptions, load_served, run_server

    token = args.token if args.token is not None else (os.environ.get(TOKEN_ENV) or None)  # set but empty: unset
    _check(args, token)
    if not is_loopback(args.host) and token is None:
        print(f"warning: serving {args.host} without a token (--insecure): anyone who can reach this port can use "
              "the API.", file=sys.stderr, flush=True)
    logging.getLogger("alexnet_lab").setLevel(logging.INFO)
    print(f"loading {args.weights} ({', '.join(args.frameworks)}) ...", flush=True)
    batching = BatchingOptions(args.max_batch, args.max_wait_ms, args.max_queue)
    served = load_served(args.weights, list(dict.fromkeys(args.frameworks)), args.device,
                         int(args.max_upload_mb * 1024 * 1024), batching, args.timeout_s, token, tuple(args.cors),
                         int(args.max_request_mb * 1024 * 1024))
    print(f"serving http://{args.host}:{args.port}/ (API docs at /docs{', token required' if token else ''}); "
          "Ctrl-C stops", flush=True)
    run_server(served, args.host, args.port, args.shutdown_timeout_s, args.max_connections)
    return 0
