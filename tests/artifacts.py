"""Test helpers for directory artifacts: find the current version's files, re-seal a manifest after an edit."""

from __future__ import annotations

import json
from pathlib import Path

from recstack.storage.artifact import MANIFEST
from recstack.storage.digest import file_sha256


def current(path: Path) -> Path:
    """The folder holding the files of the artifact saved at ``path``."""
    return Path(path) / json.loads((Path(path) / MANIFEST).read_text())["data"]


def reseal(path: Path) -> None:
    """Rewrite the manifest's sizes and sha256 to match the files as they are now (a deliberate edit)."""
    manifest_path = Path(path) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    folder = Path(path) / manifest["data"]
    manifest["files"] = {
        p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    manifest_path.write_text(json.dumps(manifest))
