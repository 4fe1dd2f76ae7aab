"""Exit codes of ``recstack`` and the error for a command line that cannot be run as given."""

from __future__ import annotations

from recstack.config import ConfigError

EXIT_OK = 0
EXIT_FAILURE = 1  # the command was valid but failed while running (bad data, unreadable artifact, missing package)
EXIT_USAGE = 2  # the command line or the config is wrong (argparse also exits 2)
EXIT_INTERRUPTED = 130


class UsageError(ConfigError):
    """A command-line argument cannot be used (a path that is not a run directory, an --out that exists...)."""
