"""The error of a configuration that cannot be used."""

from __future__ import annotations

from recstack.errors import ArgumentError


class ConfigError(ArgumentError):
    """A config file, a ``--set`` override or a command-line argument names something wrong; the message says
    which key and what was expected."""
