"""Write a file so that a reader never sees half of it and nothing already there is lost.

The new content goes to a temporary sibling (``.NAME.tmp-XXXX``) that is renamed over the target on success;
on failure it is removed and an existing target is left as it was. Temporaries left by a killed process are
removed by the next write of the same target. The result gets the permissions a plain ``open`` would give
under the process umask (``mkstemp`` alone makes 0600).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from recstack.errors import OverwriteError

TMP_INFIX = ".tmp-"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save and torch.jit.save files are zip archives
PARQUET_MAGIC = b"PAR1"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_prefix(target: Path) -> str:
    """Name prefix of the temporaries written beside ``target``."""
    return f".{target.name}{TMP_INFIX}"


def remove_stale_temporaries(target: Path) -> None:
    """Delete temporaries of ``target`` left behind by a write that was killed."""
    prefix = temp_prefix(target)
    try:
        entries = list(target.parent.iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith(prefix) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)


def check_file_target(path: str | os.PathLike, what: str, accept: Callable[[Path], bool] | None = None) -> Path:
    """Raise `OverwriteError` unless ``path`` is free or an earlier file that ``accept`` recognises.

    ``what`` names the artifact in the message ("checkpoint", "item embeddings"...). A directory is never
    replaced by a file.
    """
    target = Path(path)
    if target.is_dir():
        raise OverwriteError(f"cannot write the {what} to {target}: it is a directory; give a file path")
    if target.exists() and accept is not None and not accept(target):
        raise OverwriteError(
            f"cannot write the {what} to {target}: that file exists and is not a {what}; "
            "refusing to replace it (delete it or choose another path)"
        )
    return target


@contextmanager
def atomic_file(
    path: str | os.PathLike, what: str = "file", accept: Callable[[Path], bool] | None = None
) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``.

    The target is checked first with `check_file_target` (``what`` and ``accept`` as there).
    """
    target = check_file_target(path, what, accept)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, name = tempfile.mkstemp(prefix=temp_prefix(target), dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def has_magic(*prefixes: bytes) -> Callable[[Path], bool]:
    """An ``accept`` test for `atomic_file`: the existing file starts with one of ``prefixes``."""
    size = max(len(p) for p in prefixes)

    def accept(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                head = f.read(size)
        except OSError:
            return False
        return any(head.startswith(p) for p in prefixes) or len(head) == 0

    return accept
