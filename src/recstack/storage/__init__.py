"""Saving without loss: atomic files, directory artifacts with checksummed manifests, digests."""

from recstack.storage.artifact import Artifact, check_artifact_target, open_artifact, write_artifact
from recstack.storage.atomic import atomic_file, check_file_target, has_magic
from recstack.storage.checks import check_finite_rows
from recstack.storage.digest import file_sha256, tree_sha256

__all__ = [
    "Artifact",
    "atomic_file",
    "check_artifact_target",
    "check_file_target",
    "check_finite_rows",
    "file_sha256",
    "has_magic",
    "open_artifact",
    "tree_sha256",
    "write_artifact",
]
