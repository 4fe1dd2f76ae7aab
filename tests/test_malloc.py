"""recstack.training.malloc: off unless asked; when asked, freed multi-megabyte tensors are reused without page
faults; settings the user made in the environment win."""

import os
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from recstack.features import DenseFeat, SparseFeat
from recstack.models import DeepFM
from recstack.training import Trainer, malloc
from recstack.training import trainer as trainer_module

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc malloc settings"
)

# A subprocess that first runs one Trainer.fit (argv[1]: "fit" with the defaults, "fit-tuned" with
# malloc_tuning=True) or calls keep_freed_memory directly ("direct"), then counts the page faults of rounds
# that allocate and free ten 4 MiB tensors and one of 48 MiB. glibc's largest mmap threshold is 32 MiB, so
# with its settings untouched the 48 MiB block is a fresh mapping every round (12,288 pages faulted in again);
# with keep_freed_memory's settings every block comes back from the heap without faults.
_PROBE = """
import resource, sys, torch
from torch import nn
from recstack.training import Trainer
from recstack.training.malloc import keep_freed_memory

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Linear(2, 1)
    def training_step(self, batch):
        return self.w(batch["x"]).pow(2).mean()
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

mode = sys.argv[1]
if mode == "direct":
    print(keep_freed_memory())
else:
    Trainer(Tiny(), verbose=0, malloc_tuning=mode == "fit-tuned").fit([{"x": torch.ones(4, 2)}], epochs=1)
    print("fit")
def round_():
    blocks = [torch.ones(1 << 20) for _ in range(10)] + [torch.ones(12 << 20)]
    del blocks
for _ in range(4):  # the heap layout settles over the first rounds
    round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    round_()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def _probe(mode: str, **env: str) -> tuple[str, float]:
    """(first line the probe printed, page faults per round) with the user's malloc settings cleared."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    base.pop(malloc.ENV, None)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], env={**base, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], float(out[1])


@glibc
def test_fit_leaves_process_malloc_alone_by_default() -> None:
    _, faults = _probe("fit")
    assert faults > 10_000, faults  # the 48 MiB block is mapped afresh each round: glibc's own behaviour


@glibc
def test_malloc_tuning_keeps_freed_buffers_without_page_faults() -> None:
    _, faults = _probe("fit-tuned")
    assert faults < 2_000, faults


@glibc
def test_environment_variable_opts_in() -> None:
    _, faults = _probe("fit", RECSTACK_MALLOC_TUNING="1")
    assert faults < 2_000, faults
    _, faults = _probe("fit", RECSTACK_MALLOC_TUNING="0")
    assert faults > 10_000, faults


@glibc
def test_user_malloc_settings_win() -> None:
    applied, faults = _probe("direct", MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    assert applied == "False"
    assert faults > 15_000, faults  # the user's low thresholds stay in effect: every block is mapped afresh


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Linear(2, 1)

    def training_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.w(batch["x"]).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.fixture()
def applied_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the Trainer's calls of keep_freed_memory instead of changing this process's malloc."""
    calls: list[int] = []
    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.delenv(malloc.ENV, raising=False)
    return calls


def test_trainer_asks_for_the_settings_only_when_requested(applied_calls, monkeypatch) -> None:
    data = [{"x": torch.ones(4, 2)}]
    Trainer(_Tiny(), verbose=0).fit(data)
    assert applied_calls == []
    Trainer(_Tiny(), verbose=0, malloc_tuning=True).fit(data)
    assert applied_calls == [1]
    monkeypatch.setenv(malloc.ENV, "1")
    Trainer(_Tiny(), verbose=0).fit(data)
    assert applied_calls == [1, 1]


def test_model_fit_passes_malloc_tuning_through(applied_calls) -> None:
    cols = [SparseFeat("u", 20, 4), DenseFeat("x")]
    rng = np.random.default_rng(0)
    x = {"u": rng.integers(1, 20, 64), "x": rng.normal(size=64).astype(np.float32)}
    y = (x["x"] > 0).astype(np.float32)
    model = DeepFM(cols, cols, dnn_hidden_units=(4,))
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, batch_size=32, verbose=0)
    assert applied_calls == []
    model.fit(x, y, batch_size=32, verbose=0, malloc_tuning=True)
    assert applied_calls == [1]


def test_settings_are_applied_once_per_process(monkeypatch) -> None:
    applies: list[int] = []
    monkeypatch.setattr(malloc, "_applied", None)
    monkeypatch.setattr(malloc, "_apply", lambda: applies.append(1) or True)
    assert malloc.keep_freed_memory() and malloc.keep_freed_memory()
    assert applies == [1]
