"""``recstack demo``: the end-to-end demo on synthetic short-video data."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  recstack demo --rows 50000 --out /tmp/demo
  recstack demo --no-serve
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=None, help="play events to generate (default 100000)")
    parser.add_argument("--out", default=None, help="directory to write the demo's outputs in")
    parser.add_argument("--no-serve", action="store_true", help="stop before starting the HTTP service")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--users", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, default=None, help=argparse.SUPPRESS)


def demo_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """``run_demo``'s arguments from the flags (``serve`` is ``not --no-serve``); unset flags keep its defaults."""
    wanted = {"out": args.out, "serve": not args.no_serve, "seed": args.seed}
    wanted.update({k: getattr(args, k) for k in ("rows", "users", "items") if getattr(args, k) is not None})
    return wanted


def run_demo_command(args: argparse.Namespace) -> int:
    from recstack.demo import run_demo

    run_demo(**demo_kwargs(args))
    return 0
