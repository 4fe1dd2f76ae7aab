"""Errors raised by recstack. Each names the column, field or file at fault and what was expected."""

from __future__ import annotations


class RecstackError(Exception):
    """Base class for every error recstack raises on purpose."""


class SchemaError(RecstackError, ValueError):
    """Input data does not match what a feature or pipeline expects (missing column, wrong dtype...)."""


class LabelError(RecstackError, ValueError):
    """A label column holds values a loss cannot use (NaN, inf, wrong shape)."""


class FormatVersionError(RecstackError, ValueError):
    """A saved artifact was written by an incompatible version of recstack."""


class NotFittedError(RecstackError, ValueError):
    """A transform was asked of something that has not been fitted yet."""


class MissingDependencyError(RecstackError, ImportError):
    """An optional package a feature needs is not installed; the message says which extra installs it."""


def require(module: str, extra: str, feature: str) -> object:
    """Import ``module`` or raise `MissingDependencyError` naming the ``pip install recstack[extra]`` that fixes it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the {module!r} package, which is not installed: pip install 'recstack[{extra}]'"
        ) from exc
