"""Ray for recstack: a clear error without the extra, and a session that connects to a cluster or starts a
local instance with settings that keep Ray out of the home folder and quiet."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from recstack.errors import MissingDependencyError
from recstack.training.distributed.options import RayOptions

INSTALL_HINT = "pip install 'recstack[distributed]'"
# what a local instance started by recstack sets, unless the caller's environment already does
LOCAL_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def require_ray() -> ModuleType:
    """The ``ray`` module with Ray Train, or `MissingDependencyError` naming the extra that installs it."""
    try:
        import ray
        import ray.train  # noqa: F401
        import ray.train.torch  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(
            f"distributed training (strategy='ray') needs Ray Train, which is not installed ({err}): {INSTALL_HINT}"
        ) from None
    return ray


def default_temp_dir() -> str:
    """Session files of a local Ray instance: short (Ray's socket paths are limited) and outside the home folder."""
    return str(Path(tempfile.gettempdir()) / f"recstack-ray-{os.getuid()}")


def default_storage_path() -> str:
    """Where runs keep their checkpoints unless `RayOptions.storage_path` says otherwise."""
    return str(Path(tempfile.gettempdir()) / f"recstack-ray-runs-{os.getuid()}")


@contextlib.contextmanager
def ray_session(options: RayOptions | None = None) -> Iterator[bool]:
    """Ray, ready for a fit; yields whether this session started it (and will shut it down).

    Uses the Ray this process already runs; else connects to ``options.address`` (or the cluster that
    ``RAY_ADDRESS`` names); else starts a local instance
    with `LOCAL_ENV` set for its lifetime (restored afterwards) and its files under ``options.temp_dir``.
    """
    ray = require_ray()
    options = options or RayOptions()
    if ray.is_initialized():
        yield False
        return
    address = options.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
        try:
            yield True
        finally:
            ray.shutdown()
        return
    saved = {key: os.environ.get(key) for key in LOCAL_ENV}
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    try:
        ray.init(
            num_cpus=options.num_cpus,
            _temp_dir=options.temp_dir or default_temp_dir(),
            include_dashboard=False,
            configure_logging=False,
        )
        try:
            yield True
        finally:
            ray.shutdown()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
