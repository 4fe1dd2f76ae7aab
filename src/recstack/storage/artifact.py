"""Directory artifacts: a folder of files published all at once, with sizes and sha256 in ``manifest.json``.

Layout of an artifact at ``PATH``::

    PATH/manifest.json        kind, format, created-at, recstack / Python / torch versions, and size + sha256
                              of every file
    PATH/v-<time>-<token>/    the files of the current version

`write_artifact` fills a new version folder, then publishes it by replacing ``manifest.json`` in one
rename: a reader sees the old version or the new one, never neither, even if the writer is killed at any
point. The previous version folder is deleted after the swap; version folders and manifest temporaries
left by a killed write are deleted by the next write. `open_artifact` checks the manifest, every file's
size and sha256, and returns the version folder to read.

One writer at a time per path: a second concurrent write may delete the first one's unfinished version.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recstack import __version__
from recstack.errors import ArtifactError, FormatVersionError, IntegrityError, OverwriteError
from recstack.storage.atomic import atomic_file, remove_stale_temporaries
from recstack.storage.digest import file_sha256

MANIFEST = "manifest.json"
FORMAT_NAME = "recstack.artifact"
FORMAT_VERSION = 1
VERSION_DIR = re.compile(r"^v-\d{8}T\d{6}-[0-9a-f]{8}$")


@dataclass
class Artifact:
    """A verified artifact: ``root`` is the folder given, ``files`` the folder holding the current version."""

    root: Path
    files: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        """The kind-specific metadata passed to `write_artifact`."""
        return self.manifest.get("meta", {})


def _read_manifest(root: Path) -> dict[str, Any] | None:
    """The parsed manifest, None when there is none; `IntegrityError` when it is unreadable."""
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{path}: not a readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise IntegrityError(f"{path}: format {found!r}, expected {FORMAT_NAME!r}")
    return manifest


def _is_leftover(entry: Path) -> bool:
    """A version folder or manifest temporary of ours (possibly left by a killed write)."""
    return (entry.is_dir() and VERSION_DIR.match(entry.name) is not None) or (
        entry.is_file() and entry.name.startswith(f".{MANIFEST}.tmp-")
    )


def check_artifact_target(path: str | os.PathLike, kind: str) -> Path:
    """Raise `OverwriteError` unless ``path`` is free, empty, or holds an earlier artifact of ``kind``."""
    root = Path(path)
    if root.is_symlink() and not root.exists():
        raise OverwriteError(f"cannot save the {kind} to {root}: it is a broken symbolic link")
    if not root.exists():
        return root
    if not root.is_dir():
        raise OverwriteError(
            f"cannot save the {kind} to {root}: it is a file, and a {kind} is a directory; "
            "refusing to replace the file (delete it or choose another path)"
        )
    try:
        manifest = _read_manifest(root)
    except IntegrityError as exc:
        raise OverwriteError(f"cannot save the {kind} to {root}: {exc}; refusing to replace it") from None
    if manifest is not None:
        if manifest.get("kind") != kind:
            raise OverwriteError(
                f"cannot save the {kind} to {root}: it holds a {manifest.get('kind')}; "
                "refusing to replace it (delete it or choose another path)"
            )
        return root
    foreign = sorted(e.name for e in root.iterdir() if not _is_leftover(e))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise OverwriteError(
            f"cannot save the {kind} to {root}: it is a non-empty directory that holds no saved {kind} "
            f"(it has {shown}); refusing to delete its contents (choose an empty or new directory)"
        )
    return root


def _clean_leftovers(root: Path, keep: str | None) -> None:
    remove_stale_temporaries(root / MANIFEST)
    for entry in root.iterdir():
        if entry.name != keep and entry.is_dir() and VERSION_DIR.match(entry.name):
            shutil.rmtree(entry, ignore_errors=True)


def _torch_version() -> str | None:
    """The version of torch when it is loaded (the artifacts that hold models import it), else None."""
    torch = sys.modules.get("torch")
    return getattr(torch, "__version__", None) if torch is not None else None


def _new_version_name() -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"v-{stamp}-{secrets.token_hex(4)}"


def _file_table(folder: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise ArtifactError(f"{path}: symbolic links cannot be part of an artifact")
        if path.is_file():
            files[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    return files


@contextmanager
def write_artifact(path: str | os.PathLike, kind: str, meta: dict[str, Any] | None = None) -> Iterator[Path]:
    """Yield an empty folder to fill with the files of a ``kind`` artifact; on success publish it at ``path``.

    ``path`` must be free, an empty directory, or an earlier artifact of the same ``kind`` (anything else
    raises `OverwriteError` before a byte is written). ``meta`` (plain JSON values) is stored in the manifest.
    On an exception the new files are removed and ``path`` is left as it was.
    """
    root = check_artifact_target(path, kind)
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    previous = _read_manifest(root)
    keep = previous.get("data") if previous else None
    _clean_leftovers(root, keep)
    name = _new_version_name()
    folder = root / name
    folder.mkdir()
    try:
        yield folder
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "data": name,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "recstack_version": __version__,
            "python_version": ".".join(map(str, sys.version_info[:3])),
            "torch_version": _torch_version(),
            "meta": meta or {},
            "files": _file_table(folder),
        }
        with atomic_file(root / MANIFEST, "manifest") as tmp:
            tmp.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise
    if keep and keep != name:
        shutil.rmtree(root / keep, ignore_errors=True)


def open_artifact(path: str | os.PathLike, kind: str, verify: bool = True) -> Artifact:
    """Check the ``kind`` artifact at ``path`` and return where its files are.

    Raises `ArtifactError` when ``path`` holds no such artifact, `FormatVersionError` for a newer format,
    and `IntegrityError` naming the first file whose size or sha256 differs from the manifest (with
    ``verify=False`` only sizes are compared).
    """
    root = Path(path)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is a file"
        raise ArtifactError(f"{root} {what}: expected a directory written by saving a {kind}")
    manifest = _read_manifest(root)
    if manifest is None:
        raise ArtifactError(f"{root}: no {MANIFEST}, so it holds no saved {kind} (or its first save was interrupted)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise FormatVersionError(
            f"{root / MANIFEST}: format_version {manifest.get('format_version')!r} (written by recstack "
            f"{manifest.get('recstack_version')}); this recstack {__version__} reads {FORMAT_VERSION}"
        )
    if manifest.get("kind") != kind:
        raise ArtifactError(f"{root} holds a {manifest.get('kind')}, not a {kind}")
    data, files = manifest.get("data"), manifest.get("files")
    if not isinstance(data, str) or not VERSION_DIR.match(data) or not isinstance(files, dict):
        raise IntegrityError(f"{root / MANIFEST}: damaged (fields data/files are not what a save writes)")
    folder = root / data
    if not folder.is_dir():
        raise IntegrityError(f"{folder}: the folder the manifest names is missing")
    for rel, entry in files.items():
        file = folder / rel
        if not isinstance(entry, dict) or not file.is_file():
            raise IntegrityError(f"{file}: listed in {root / MANIFEST} but missing")
        size = file.stat().st_size
        if size != entry.get("size"):
            raise IntegrityError(f"{file}: {size} bytes, the manifest says {entry.get('size')} (damaged or truncated)")
        if verify and file_sha256(file) != entry.get("sha256"):
            raise IntegrityError(f"{file}: sha256 differs from the manifest (the file is damaged or was modified)")
    return Artifact(root=root, files=folder, manifest=manifest)
