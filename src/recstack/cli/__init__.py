"""The ``recstack`` command line: ``train | evaluate | export | index | serve | demo``."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from recstack.cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError
from recstack.config import ConfigError
from recstack.errors import ArgumentError, OverwriteError, RecstackError

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "UsageError", "main"]


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "train":
        from recstack.cli.train import run_train

        return run_train(args)
    if args.command == "evaluate":
        from recstack.cli.evaluate import run_evaluate

        return run_evaluate(args)
    if args.command == "export":
        from recstack.cli.export import run_export

        return run_export(args)
    if args.command == "index":
        from recstack.cli.indexing import run_index

        return run_index(args)
    if args.command == "serve":
        from recstack.serve.runner import run_from_args

        return run_from_args(args)
    from recstack.cli.demo import run_demo_command

    return run_demo_command(args)


def _error(command: str, message: str) -> None:
    prefix = f"recstack {command}: error: " if command else "recstack: error: "
    for line in str(message).splitlines() or [""]:
        print(prefix + line, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``recstack`` and ``python -m recstack``; returns the exit status (``--help`` and usage errors
    found by argparse raise `SystemExit` with 0 and 2, as argparse does)."""
    from recstack.cli.parser import build_parser

    # --help and argparse's usage errors exit here, as argparse does: SystemExit(0) and SystemExit(2)
    args = build_parser().parse_args(argv)
    command = args.command
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        _error(command, "interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001  (every failure becomes one line and an exit status)
        if args.debug:
            traceback.print_exc()
        if isinstance(exc, (ConfigError, OverwriteError, ArgumentError)):
            _error(command, str(exc))
            return EXIT_USAGE
        if isinstance(exc, RecstackError):
            _error(command, str(exc))
        else:
            where = "" if args.debug else " (rerun with --debug for the traceback)"
            _error(command, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{where}")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
