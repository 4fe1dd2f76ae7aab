"""Kill tests: a save killed at any point leaves the earlier version (or the new one) loadable, never neither,
and the next save removes what the killed one left behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from kill_save import DIRECTORY_KINDS, TARGETS, _frame, build, save
from recstack.export import load_bundle, load_tower, read_item_embeddings, serving_batch
from recstack.features import FeaturePipeline
from recstack.index import load_index
from recstack.storage import tree_sha256
from recstack.training.checkpoint import read_checkpoint

HERE = Path(__file__).parent
KINDS = list(TARGETS)
VOLATILE = ("created_at", "recstack_version", "torch_version", "python_version")


def loaded_digest(kind: str, path: Path) -> str:
    """A digest of what recstack reads back from ``path``."""
    if kind == "pipeline":
        return FeaturePipeline.load(path).fingerprint()
    if kind == "index":
        index = load_index(path)
        return tree_sha256([index.ids, index._vectors])
    if kind == "checkpoint":
        return tree_sha256(read_checkpoint(path)["model_state"])
    if kind == "weights":
        return tree_sha256(dict(torch.load(path, weights_only=True)))
    if kind == "embeddings":
        return tree_sha256(list(read_item_embeddings(path)))
    if kind == "bundle":
        bundle = load_bundle(path)
        with torch.no_grad():
            vectors = bundle.user_tower(serving_batch(_frame(0).head(8), bundle.pipeline))
        meta = {k: v for k, v in bundle.meta.items() if k not in VOLATILE}
        return tree_sha256([vectors, bundle.index.ids, repr(meta)])
    return tree_sha256(dict(load_tower(path)[0].state_dict()))


def leftovers(kind: str, path: Path) -> list[str]:
    """Names beside or inside ``path`` that a finished save does not leave."""
    if kind in DIRECTORY_KINDS:
        names = sorted(p.name for p in path.iterdir())
        versions = [n for n in names if n.startswith("v-")]
        return [n for n in names if n != "manifest.json"] if len(versions) != 1 else [
            n for n in names if n not in ("manifest.json", versions[0])
        ]
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def child(kind: str, point: str, directory: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(HERE / "kill_save.py"), kind, point, str(directory)], env=env, **kwargs
    )


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """For each kind: the digest of version A (0) and version B (1) as they load after a clean save."""
    out = {}
    for kind in KINDS:
        digests = []
        for version in (0, 1):
            path = tmp_path_factory.mktemp(f"{kind}{version}") / TARGETS[kind]
            save(kind, build(kind, version), path)
            digests.append(loaded_digest(kind, path))
        assert digests[0] != digests[1], kind
        out[kind] = digests
    return out


@pytest.mark.parametrize("point", ["mid-write", "before-rename", "after-rename"])
@pytest.mark.parametrize("kind", KINDS)
def test_killed_save_leaves_a_whole_version(tmp_path, versions, kind, point):
    path = tmp_path / TARGETS[kind]
    save(kind, build(kind, 0), path)
    proc = child(kind, point, tmp_path, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    expected = versions[kind][1] if point == "after-rename" else versions[kind][0]
    assert loaded_digest(kind, path) == expected
    if point != "after-rename" or kind in DIRECTORY_KINDS:
        assert leftovers(kind, path), "the kill point was reached before anything was written"
    save(kind, build(kind, 0), path)
    assert leftovers(kind, path) == []
    assert loaded_digest(kind, path) == versions[kind][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [TARGETS[kind]]


@pytest.mark.parametrize("kind", ["pipeline", "index", "checkpoint"])
def test_random_kills_while_saving_in_a_loop(tmp_path, versions, kind):
    path = tmp_path / TARGETS[kind]
    rng = random.Random(kind)
    for _ in range(3):
        proc = child(kind, "loop", tmp_path, stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if path.exists():
            assert loaded_digest(kind, path) in versions[kind]
    save(kind, build(kind, 0), path)
    assert leftovers(kind, path) == []
    assert loaded_digest(kind, path) == versions[kind][0]
