"""Where and how a distributed fit runs: the Ray cluster, storage, failure handling."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RayOptions:
    """Settings of a ``strategy="ray"`` fit besides the worker count and resources.

    ``address``: an existing Ray cluster (``"auto"``, ``"ray://head:10001"``...); None starts a local Ray
    instance for the fit (or uses the one this process already started). ``num_cpus`` caps a local instance.
    ``temp_dir`` (a local instance's session files) and ``storage_path`` (checkpoints of the runs; on a cluster a
    folder every node reaches, or ``s3://...``) default to folders under the system temp directory, never the
    home folder. ``max_failures`` is how often the workers are restarted from the last checkpoint after one of
    them dies (-1: without limit). ``name`` names the run under ``storage_path`` (default: unique per fit).
    """

    address: str | None = None
    num_cpus: int | None = None
    temp_dir: str | None = None
    storage_path: str | None = None
    max_failures: int = 0
    name: str | None = None
