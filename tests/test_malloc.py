"""keep_freed_memory: freed multi-megabyte tensors are reused without page faults; opt-outs are respected."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc malloc settings"
)

# Ten 4 MiB tensors and one of 48 MiB (above any mmap threshold glibc accepts) allocated and freed per
# round. Whether glibc's adaptive defaults fault them in again each round depends on the process's history,
# so the baseline pins glibc's initial settings through its environment variables (which also shows that
# user settings win): every round then faults its ~22,500 pages in again.
_PROBE = """
import resource, torch
from recstack.training.malloc import keep_freed_memory
applied = keep_freed_memory()
def round_():
    blocks = [torch.ones(1 << 20) for _ in range(10)] + [torch.ones(12 << 20)]
    del blocks
for _ in range(4):  # the heap layout settles over the first rounds
    round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    round_()
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def _probe(**env: str) -> tuple[bool, float]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    base.pop("RECSTACK_MALLOC_TUNING", None)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**base, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", float(out[1])


def test_freed_buffers_are_reused_without_page_faults() -> None:
    applied, faults = _probe()
    assert applied
    assert faults < 2_000, faults
    off, _ = _probe(RECSTACK_MALLOC_TUNING="0")
    assert not off


def test_user_malloc_settings_win() -> None:
    applied, faults = _probe(MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    assert not applied
    assert faults > 15_000, faults  # the probe does measure what the settings change


def test_applied_once_per_process() -> None:
    from recstack.training import malloc

    first = malloc.keep_freed_memory()
    assert malloc.keep_freed_memory() is first
