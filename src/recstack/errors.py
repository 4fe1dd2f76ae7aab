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
