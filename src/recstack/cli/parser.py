"""The ``recstack`` argument parser: one subcommand per step of the data path."""

from __future__ import annotations

import argparse

from recstack.cli import demo, evaluate, export, indexing, train

DESCRIPTION = """recstack: from raw interaction logs to a served recommender.

exit codes: 0 success; 1 the command failed while running (bad data, unreadable artifact, missing package);
2 the command line or the config is wrong (the message names the key or argument to fix).
Errors are one line; --debug shows the traceback."""

SERVE_EXAMPLE = """examples:
  recstack serve --name feed --path bundles/v1 --port 8000
  recstack serve --name feed --path bundles/v1 --workers 2 --admin-token $TOKEN
"""


def _debug_flag(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--debug", action="store_true", default=default, help="show the full traceback of an error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recstack", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _debug_flag(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=example,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _debug_flag(p, argparse.SUPPRESS)
        return p

    train.add_arguments(add("train", "train a model from a YAML config into a run directory", train.EXAMPLE))
    evaluate.add_arguments(add("evaluate", "metrics of a trained run", evaluate.EXAMPLE))
    export.add_arguments(
        add("export", "export a run: a serving bundle (two-tower) or pipeline + TorchScript model", export.EXAMPLE)
    )
    indexing.add_arguments(
        add("index", "build an ANN index over a run's or bundle's item embeddings", indexing.EXAMPLE)
    )
    from recstack.serve.runner import add_arguments as add_serve_arguments

    add_serve_arguments(add("serve", "serve a bundle over HTTP (needs the serve extra)", SERVE_EXAMPLE))
    demo.add_arguments(
        add("demo", "synthetic short-video data end to end: features, models, bundle, service", demo.EXAMPLE)
    )
    return parser
