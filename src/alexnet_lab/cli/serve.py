"""`alexnet serve`: the web page and HTTP API over one model."""

from __future__ import annotations

import argparse
import logging


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="a local web page and JSON API: predictions from both frameworks side by side",
                       description="Loads the weights once, one worker process per framework, and serves the page at "
                       "http://HOST:PORT/ and the API under /api (see /api/docs). Ctrl-C stops it.")
    p.add_argument("weights", help="run folder, weight file or registry name")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--frameworks", nargs="+", default=["torch", "keras"], help="torch and/or keras (default both)")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda[:N] or mps for the models")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest image file accepted (default 20)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from alexnet_lab.core.errors import UserInputError
    from alexnet_lab.frameworks import check_framework
    from alexnet_lab.serve import load_served, run_server

    for framework in args.frameworks:
        check_framework(framework)
    if not 0 < args.port < 65536:
        raise UserInputError(f"--port must be between 1 and 65535; received {args.port}.")
    if args.max_upload_mb <= 0:
        raise UserInputError(f"--max-upload-mb must be positive; received {args.max_upload_mb}.")
    logging.getLogger("alexnet_lab").setLevel(logging.INFO)
    print(f"loading {args.weights} ({', '.join(args.frameworks)}) ...", flush=True)
    served = load_served(args.weights, list(dict.fromkeys(args.frameworks)), args.device,
                         int(args.max_upload_mb * 1024 * 1024))
    print(f"serving http://{args.host}:{args.port}/ (API docs at /api/docs); Ctrl-C stops", flush=True)
    run_server(served, args.host, args.port)
    return 0
