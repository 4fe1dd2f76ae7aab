"""``recstack demo``: the end-to-end demo on synthetic short-video data."""

from __future__ import annotations

import argparse
import inspect

EXAMPLE = """examples:
  recstack demo --rows 50000 --out /tmp/demo
  recstack demo --no-serve
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=200_000, help="play events to generate (default 200000)")
    parser.add_argument("--out", default=None, help="directory to write the demo's outputs in")
    parser.add_argument("--no-serve", action="store_true", help="stop before starting the HTTP service")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--users", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, default=None, help=argparse.SUPPRESS)


def demo_kwargs(args: argparse.Namespace, accepted: list[str]) -> dict[str, object]:
    """The arguments of ``run_demo`` it accepts, from the flags (``serve`` is ``not --no-serve``)."""
    wanted = {"rows": args.rows, "out": args.out, "serve": not args.no_serve, "seed": args.seed}
    wanted.update({k: getattr(args, k) for k in ("users", "items") if getattr(args, k) is not None})
    return {k: v for k, v in wanted.items() if k in accepted}


def run_demo_command(args: argparse.Namespace) -> int:
    from recstack.demo import run_demo

    params = inspect.signature(run_demo).parameters
    result = run_demo(**demo_kwargs(args, list(params)))
    return result if isinstance(result, int) else 0
