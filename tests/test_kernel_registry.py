"""recstack.kernels.registry: switches read once from the environment, scoped overrides, the CPU check, the
one-time compile; and each family's torch (or per-value) path giving the kernel's results."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from recstack import kernels
from recstack.features.hashing import hash_values, reference_hash
from recstack.kernels import embedding, gemm, registry


@pytest.fixture
def fresh_env(monkeypatch):
    """Clears every RECSTACK_KERNEL* / alias / CPU variable, and makes the registry read the environment again
    (once more after the test, with the environment restored)."""
    for var in ["RECSTACK_KERNELS", "RECSTACK_FUSED_CIN", "RECSTACK_ONEDNN", registry.CPU_ENV]:
        monkeypatch.delenv(var, raising=False)
    for name in kernels.names():
        monkeypatch.delenv(kernels.spec(name).env, raising=False)
    registry._env_switches.cache_clear()
    registry._host_cpu_features.cache_clear()
    yield monkeypatch
    registry._env_switches.cache_clear()
    registry._host_cpu_features.cache_clear()


def _on(names=None):
    return {n for n, on in kernels.status().items() if on} if names is None else {n: kernels.enabled(n) for n in names}


def test_families_are_registered_with_their_switches():
    assert set(kernels.names()) >= {"attention", "cin", "cin_grads", "gemm", "onednn", "embedding", "unique", "hashing"}
    assert kernels.spec("cin").env == "RECSTACK_KERNEL_CIN" and kernels.spec("cin").alias == "RECSTACK_FUSED_CIN"
    assert kernels.spec("onednn").alias == "RECSTACK_ONEDNN"
    assert kernels.spec("attention").simd and kernels.spec("cin").simd and not kernels.spec("embedding").simd
    with pytest.raises(ValueError, match="unknown kernel 'nope'.*attention"):
        kernels.enabled("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("cin", "again")


def test_everything_on_by_default_where_the_cpu_has_avx2_and_fma(fresh_env):
    fresh_env.setenv(registry.CPU_ENV, "avx2,fma,sse4.2")
    assert kernels.simd_supported()
    assert _on() == set(kernels.names())


def test_one_variable_turns_everything_off_and_per_kernel_flags_win(fresh_env):
    fresh_env.setenv(registry.CPU_ENV, "avx2 fma")
    fresh_env.setenv("RECSTACK_KERNELS", "0")
    fresh_env.setenv("RECSTACK_KERNEL_GEMM", "1")
    fresh_env.setenv("RECSTACK_KERNEL_ONEDNN", "true")
    assert _on() == {"gemm", "onednn"}


def test_aliases_and_the_kernel_variable_over_them(fresh_env):
    fresh_env.setenv(registry.CPU_ENV, "avx2,fma")
    fresh_env.setenv("RECSTACK_FUSED_CIN", "0")
    fresh_env.setenv("RECSTACK_ONEDNN", "0")
    assert _on(["cin", "onednn", "gemm", "attention"]) == {
        "cin": False, "onednn": False, "gemm": True, "attention": True
    }  # fmt: skip
    assert not gemm.onednn_available()
    registry._env_switches.cache_clear()
    fresh_env.setenv("RECSTACK_KERNEL_CIN", "1")  # the family's own variable wins over the alias
    assert kernels.enabled("cin")


def test_switches_are_read_once(fresh_env):
    fresh_env.setenv("RECSTACK_KERNEL_UNIQUE", "0")
    assert not kernels.enabled("unique")
    fresh_env.setenv("RECSTACK_KERNEL_UNIQUE", "1")  # too late: the environment was read
    assert not kernels.enabled("unique")


def test_a_bad_value_names_the_variable(fresh_env):
    fresh_env.setenv("RECSTACK_KERNEL_HASHING", "maybe")
    with pytest.raises(ValueError, match="RECSTACK_KERNEL_HASHING='maybe': expected 0 or 1"):
        kernels.enabled("embedding")


def test_a_cpu_without_avx2_turns_off_the_simd_families_only(fresh_env):
    fresh_env.setenv(registry.CPU_ENV, "sse4.2 avx fma")
    assert not kernels.simd_supported()
    assert _on() == {n for n in kernels.names() if not kernels.spec(n).simd}
    with kernels.cpu_features_as(["AVX2", "FMA"]):
        assert kernels.simd_supported() and kernels.enabled("attention")
    assert not kernels.enabled("attention")


def test_cpu_detection(monkeypatch):
    host = registry._read_cpu_features()
    cpuinfo = Path("/proc/cpuinfo")
    if registry.platform.machine().lower() in ("x86_64", "amd64") and cpuinfo.exists():
        flags = next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split()
        assert ("avx2" in host) == ("avx2" in flags) and ("fma" in host) == ("fma" in flags)
    for arm in ("aarch64", "arm64"):  # ARM servers, Apple silicon: no AVX at all
        monkeypatch.setattr(registry.platform, "machine", lambda arm=arm: arm)
        assert registry._read_cpu_features() == frozenset()
        with kernels.cpu_features_as(registry._read_cpu_features()):
            assert not kernels.simd_supported()
            assert not kernels.enabled("cin") and not kernels.enabled("attention")


def test_disabled_is_scoped_and_nests():
    before = kernels.status()
    with kernels.disabled("cin"):
        assert not kernels.enabled("cin")
        with kernels.disabled("cin", "unique"):
            assert not kernels.enabled("cin") and not kernels.enabled("unique")
        assert not kernels.enabled("cin") and kernels.enabled("unique") == before["unique"]
        with kernels.disabled():
            assert not any(kernels.status().values())
    assert kernels.status() == before
    with pytest.raises(ValueError, match="unknown kernel"), kernels.disabled("gemm", "nope"):
        pass
    assert kernels.status() == before
    with pytest.raises(RuntimeError), kernels.disabled("gemm"):
        raise RuntimeError("the block fails")
    assert kernels.status() == before


def test_compiled_builds_once_across_threads():
    calls = []
    barrier = threading.Barrier(4)

    def build():
        calls.append(1)
        return object()

    results = []

    def ask():
        barrier.wait()
        results.append(kernels.compiled(("test", id(calls)), build))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 4 and all(r is results[0] for r in results)


@pytest.mark.parametrize(
    "values",
    [
        pa.array(["a", None, "ünïcödé", "", "x" * 40, "日本"] * 20_000),  # 120k: past the parallel threshold
        pa.array(["a", "b", None], type=pa.large_string()).slice(1),
        np.arange(-70_000, 70_000, 3, dtype=np.int64),
        np.array([0, 2**64 - 1, 12345678901234567890], dtype=np.uint64),
        pd.array([1, None, -3], dtype="Int64"),
        np.array([1.0, -2.0, np.nan, 1e15, 0.5]),
        ["a", 1, None, 2.5, True],
    ],
    ids=["strings", "sliced-large-strings", "ints", "uint64", "nullable-ints", "floats", "mixed-list"],
)
def test_hashing_is_bit_exact_with_the_kernels_off(values):
    fast = hash_values(values, "Column_A")
    with kernels.disabled("hashing"):
        slow = hash_values(values, "Column_A")
    np.testing.assert_array_equal(slow, fast)
    np.testing.assert_array_equal(slow, reference_hash(values, "Column_A"))


def test_embedding_kernels_off_give_the_same_results():
    gen = torch.Generator().manual_seed(0)
    index = torch.randint(0, 50, (3000,), generator=gen)
    grad = torch.randn(3000, 16, generator=gen)
    fast = embedding.scatter_add_rows(index, grad, 50)
    uniq, inverse = embedding.unique_inverse(index)
    with kernels.disabled("embedding", "unique"):
        torch.testing.assert_close(embedding.scatter_add_rows(index, grad, 50), fast, rtol=1e-5, atol=1e-5)
        slow_uniq, slow_inverse = embedding.unique_inverse(index)
    assert torch.equal(slow_uniq, uniq) and torch.equal(slow_inverse, inverse)
    assert torch.equal(uniq[inverse], index)


def test_gemm_off_is_plain_f_linear():
    x = torch.randn(gemm.MIN_ROWS, 429, requires_grad=True)
    w = torch.randn(13, 429, requires_grad=True)
    with kernels.disabled("gemm"):
        assert not gemm.onednn_available()
        out = gemm.linear(x, w)
        assert "FastLinear" not in type(out.grad_fn).__name__
        torch.testing.assert_close(gemm.matmul_t(x.detach(), w.detach()), x.detach() @ w.detach().t())
    assert ("FastLinear" in type(gemm.linear(x, w).grad_fn).__name__) == kernels.enabled("gemm")


def test_all_kernels_off_never_loads_numba():
    """With ``RECSTACK_KERNELS=0`` a process hashes, trains and predicts without importing numba."""
    script = """
import sys
import numpy as np
from recstack import kernels
from recstack.features import DenseFeat, SparseFeat, hash_values
from recstack.models import AutoInt, xDeepFM

assert not any(kernels.status().values())
hashes = hash_values(np.arange(100_000), "c")
cols = [SparseFeat(f"c{i}", vocabulary_size=20, embedding_dim=4) for i in range(4)] + [DenseFeat("d")]
rng = np.random.default_rng(0)
x = {f"c{i}": rng.integers(0, 20, 1100) for i in range(4)}
x["d"] = rng.standard_normal(1100).astype(np.float32)
y = (rng.random(1100) < 0.5).astype(np.float32)
for cls in (AutoInt, xDeepFM):
    model = cls(cols, cols, dnn_hidden_units=(8,))
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, batch_size=1100, epochs=1, verbose=0)
    model.predict(x, batch_size=1100)
print("numba" in sys.modules)
"""
    env = {**os.environ, "RECSTACK_KERNELS": "0"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_starting_numba_threads_keeps_torch_thread_count():
    """numba's OpenMP pool, started by a large hashing call, must not change the thread count the user set."""
    import subprocess
    import sys

    script = (
        "import torch\n"
        "torch.set_num_threads(1)\n"
        "assert torch.get_num_threads() == 1\n"
        "from recstack.features import hash_values\n"
        "hash_values([str(i) for i in range(200_000)], 'c')\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "1"
