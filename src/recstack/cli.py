"""The ``recstack`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``recstack`` and ``python -m recstack``."""
    parser = argparse.ArgumentParser(prog="recstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="synthetic short-video data through the feature pipeline, end to end")
    demo.add_argument("--rows", type=int, default=200_000, help="play events to generate (default 200000)")
    demo.add_argument("--users", type=int, default=5_000)
    demo.add_argument("--items", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default=None, help="directory to save the fitted pipeline in")
    from recstack.serve.runner import add_arguments as add_serve_arguments

    serve = sub.add_parser("serve", help="serve a bundle over HTTP (needs the serve extra)")
    add_serve_arguments(serve)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from recstack.demo import run_demo

        run_demo(rows=args.rows, users=args.users, items=args.items, seed=args.seed, out=args.out)
    elif args.command == "serve":
        from recstack.serve.runner import run_from_args

        return run_from_args(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
