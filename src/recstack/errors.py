"""Errors raised by recstack. Each names the column, field or file at fault and what was expected."""

from __future__ import annotations


class RecstackError(Exception):
    """Base class for every error recstack raises on purpose."""


class SchemaError(RecstackError, ValueError):
    """Input data does not match what a feature or pipeline expects (missing column, wrong dtype...)."""


class LabelError(RecstackError, ValueError):
    """A label column holds values a loss cannot use (NaN, inf, wrong shape)."""


class ArtifactError(RecstackError, ValueError):
    """A path does not hold a readable saved artifact of the kind asked for (missing, another kind, unreadable)."""


class FormatVersionError(ArtifactError):
    """A saved artifact was written by an incompatible version of recstack."""


class NotFittedError(RecstackError, ValueError):
    """A transform was asked of something that has not been fitted yet."""


class ArgumentError(RecstackError, ValueError):
    """A function argument has a value it cannot use (``batch_size=0``, ``validation_split=1.5``, ``k='10'``)."""


class LogKeyError(ArgumentError, KeyError):
    """A callback names a log key (``monitor``, a ``{key}`` of a checkpoint file pattern) no epoch will log."""


class IntegrityError(ArtifactError):
    """A saved file is damaged: its size or sha256 differs from the manifest, or it holds non-finite vectors."""


class OverwriteError(RecstackError, FileExistsError):
    """A save would replace something that is not an earlier save of the same kind (a data folder, a file)."""


class CheckpointMismatchError(ArtifactError):
    """A checkpoint was written by another model class, parameter layout or optimizer than the one loading it."""


class RecstackWarning(UserWarning):
    """Base class of recstack's warnings: a result is usable but probably not what was meant."""


class DataWarning(RecstackWarning):
    """Input data looks wrong (every id unknown to the vocabulary, missing features imputed)."""


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
