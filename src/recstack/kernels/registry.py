"""Which compiled kernels run: one switch per kernel family, a CPU check, and the one-time compile.

Every compiled fast path in recstack belongs to one family named here. A layer asks `enabled(name)` before
taking its kernel and otherwise runs its torch ops, which give the same numbers (within float32 rounding).

Switches, read from the environment once per process (the first time any kernel is asked about):

- ``RECSTACK_KERNELS=0`` turns every family off;
- ``RECSTACK_KERNEL_<NAME>=0|1`` turns one family off or on, over ``RECSTACK_KERNELS``;
- ``RECSTACK_FUSED_CIN`` and ``RECSTACK_ONEDNN`` are aliases of ``RECSTACK_KERNEL_CIN`` and
  ``RECSTACK_KERNEL_ONEDNN`` (``0`` turns the family off); the ``RECSTACK_KERNEL_`` name wins when both are set;
- ``RECSTACK_COMPILE=background|wait``: the ``attention`` and ``cin`` kernels take seconds to compile for each new
  shape; by default a background process compiles them into numba's disk cache while the layers run their
  torch ops, and the layers switch to the kernels once it is done (`when_compiled`). ``wait`` compiles in
  the caller on first use instead;
- ``RECSTACK_CPU_FEATURES`` replaces the detected CPU features (comma- or space-separated, e.g. ``avx2,fma``;
  empty: none), to try the torch path a CPU without AVX2 takes.

Families marked SIMD are written in 8-float AVX vectors (`recstack.kernels.simd`) and run only where the CPU
has AVX2 and FMA; elsewhere (older x86, ARM, Apple silicon) they are off whatever the switches say.

`disabled` turns families off for the duration of a ``with`` block and `cpu_features_as` pretends another
CPU for the duration of one; nothing else changes the switches after the environment is read.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import tempfile
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from recstack.errors import RecstackWarning

T = TypeVar("T")

ALL_ENV = "RECSTACK_KERNELS"
KERNEL_ENV_PREFIX = "RECSTACK_KERNEL_"
CPU_ENV = "RECSTACK_CPU_FEATURES"
SIMD_FEATURES = frozenset({"avx2", "fma"})
"""What the SIMD kernels need: 8-float AVX vectors and fused multiply-add."""

_X86 = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})


@dataclass(frozen=True)
class KernelSpec:
    """One kernel family: its name, what it speeds up, whether it needs AVX2 + FMA, and an older env name."""

    name: str
    summary: str
    simd: bool = False
    alias: str | None = None

    @property
    def env(self) -> str:
        """The family's own switch, ``RECSTACK_KERNEL_<NAME>``."""
        return KERNEL_ENV_PREFIX + self.name.upper()


_SPECS: dict[str, KernelSpec] = {}


def register(name: str, summary: str, *, simd: bool = False, alias: str | None = None) -> KernelSpec:
    """Add a kernel family (names are lower-case identifiers); returns its spec."""
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"kernel name must be a lower-case identifier, got {name!r}")
    if name in _SPECS:
        raise ValueError(f"kernel {name!r} is already registered")
    spec = KernelSpec(name, summary, simd, alias)
    _SPECS[name] = spec
    _env_switches.cache_clear()
    return spec


def names() -> tuple[str, ...]:
    """The registered kernel families."""
    return tuple(_SPECS)


def spec(name: str) -> KernelSpec:
    """The registered family ``name``; ValueError naming the known ones otherwise."""
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown kernel {name!r}; known: {', '.join(_SPECS)}") from None


def _flag(var: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"environment variable {var}={value!r}: expected 0 or 1")


@functools.cache
def _env_switches() -> dict[str, bool]:
    """Each family's switch from the environment, read once."""
    everything = os.environ.get(ALL_ENV)
    default = True if everything is None else _flag(ALL_ENV, everything)
    out = {}
    for name, s in _SPECS.items():
        on = default
        if s.alias is not None and s.alias in os.environ:
            on = os.environ[s.alias] != "0"  # the older switches: "0" is off, anything else on
        if s.env in os.environ:
            on = _flag(s.env, os.environ[s.env])
        out[name] = on
    return out


def _read_cpu_features() -> frozenset[str]:
    """This CPU's features in LLVM's names (``avx2``, ``fma``...), empty off x86."""
    if platform.machine().lower() not in _X86:
        return frozenset()
    try:
        from llvmlite import binding

        return frozenset(k for k, v in binding.get_host_cpu_features().items() if v)
    except (ImportError, RuntimeError):
        pass
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def _host_cpu_features() -> frozenset[str]:
    env = os.environ.get(CPU_ENV)
    if env is not None:
        return frozenset(f.lower() for f in env.replace(",", " ").split())
    return _read_cpu_features()


_LOCK = threading.Lock()
_DISABLED: Counter[str] = Counter()  # families turned off by active `disabled` blocks
_CPU_OVERRIDES: list[frozenset[str]] = []  # active `cpu_features_as` blocks, innermost last


def cpu_features() -> frozenset[str]:
    """The CPU features the kernels are chosen by: ``RECSTACK_CPU_FEATURES`` if set, else the host's (via
    llvmlite, or ``/proc/cpuinfo``); inside `cpu_features_as`, that block's."""
    overrides = _CPU_OVERRIDES
    return overrides[-1] if overrides else _host_cpu_features()


def simd_supported() -> bool:
    """Whether the SIMD kernels can run here: an x86 CPU with AVX2 and FMA."""
    return SIMD_FEATURES <= cpu_features()


def enabled(name: str) -> bool:
    """Whether kernel family ``name`` runs: switched on, not inside a `disabled` block for it, and (for SIMD
    families) on a CPU with AVX2 and FMA."""
    s = spec(name)
    if _DISABLED[name] or not _env_switches()[name]:
        return False
    return not s.simd or simd_supported()


def status() -> dict[str, bool]:
    """`enabled` for every family, by name."""
    return {name: enabled(name) for name in _SPECS}


@contextmanager
def disabled(*kernels: str) -> Iterator[None]:
    """Turn the named families off (every family when none is named) inside the ``with`` block.

    Blocks nest and may overlap; a family is on again once no active block names it. The switch is
    process-wide while the block runs (autograd's backward may run in another thread).
    """
    chosen = tuple(spec(k).name for k in kernels) or names()
    with _LOCK:
        _DISABLED.update(chosen)
    try:
        yield
    finally:
        with _LOCK:
            _DISABLED.subtract(chosen)


@contextmanager
def cpu_features_as(features: Iterable[str]) -> Iterator[None]:
    """Choose kernels as on a CPU with ``features`` (e.g. ``()``: no AVX2) inside the ``with`` block."""
    pretended = frozenset(f.lower() for f in features)
    with _LOCK:
        _CPU_OVERRIDES.append(pretended)
    try:
        yield
    finally:
        with _LOCK:
            _CPU_OVERRIDES.remove(pretended)


_COMPILED: dict[Hashable, Any] = {}
_KEY_LOCKS: dict[Hashable, threading.RLock] = {}


def compiled(key: Hashable, build: Callable[[], T]) -> T:
    """``build()``'s result for ``key``, built once per process (threads asking for the same key meanwhile
    wait; other keys do not)."""
    try:
        return _COMPILED[key]
    except KeyError:
        pass
    with _LOCK:
        key_lock = _KEY_LOCKS.setdefault(key, threading.RLock())
    with key_lock:
        if key not in _COMPILED:
            _COMPILED[key] = build()
        return _COMPILED[key]


COMPILE_ENV = "RECSTACK_COMPILE"
WARM_MODULE = "recstack.kernels.warm"


def compile_in_background() -> bool:
    """Whether long kernel compiles run in a background process (``RECSTACK_COMPILE=background``, the default)
    or in the caller (``RECSTACK_COMPILE=wait``: the first call blocks until its kernels are compiled)."""
    value = os.environ.get(COMPILE_ENV, "background").strip().lower()
    if value in ("background", ""):
        return True
    if value == "wait":
        return False
    raise ValueError(f"environment variable {COMPILE_ENV}={value!r}: expected 'background' or 'wait'")


@dataclass
class _Warmup:
    """A background process compiling one family's kernels into numba's disk cache."""

    process: subprocess.Popen
    log: Any  # the temporary file holding its output  # noqa: ANN401
    failed: bool = False


_WARMUPS: dict[Hashable, _Warmup] = {}


def _start_warmup(family: str, args: tuple[int, ...]) -> _Warmup:
    package_root = str(Path(__file__).resolve().parents[2])  # the directory holding recstack/
    paths = [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    log = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", WARM_MODULE, family, *(str(a) for a in args)]
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    return _Warmup(process, log)


def when_compiled(key: Hashable, build: Callable[[], T], family: str, *args: int) -> T | None:
    """``compiled(key, build)`` once the family's kernels load without a long compile; None until then.

    The first ask in a process starts ``python -m recstack.kernels.warm family *args`` in the background, which
    compiles the family's kernels for ``args`` into numba's disk cache (a few seconds when they are already
    there); the caller takes its torch path meanwhile and gets the kernels, loaded from the cache, once that
    process has succeeded. If it fails the family stays on the torch path in this process, with a warning that
    quotes its last output. With ``RECSTACK_COMPILE=wait`` (or no Python executable to start) this is
    ``compiled(key, build)``, which compiles on the first call.
    """
    try:
        return _COMPILED[key]
    except KeyError:
        pass
    if not compile_in_background() or not sys.executable:
        return compiled(key, build)
    with _LOCK:
        job = _WARMUPS.get(key)
        if job is None:
            _WARMUPS[key] = _start_warmup(family, args)
            return None
    if job.failed:
        return None
    code = job.process.poll()
    if code is None:
        return None
    if code == 0:
        job.log.close()
        return compiled(key, build)
    with _LOCK:
        if job.failed:
            return None
        job.failed = True
    job.log.seek(0)
    tail = job.log.read().decode("utf-8", "replace").strip().splitlines()[-3:]
    job.log.close()
    warnings.warn(
        f"compiling the {family!r} kernels for {args} failed (exit status {code}); this process keeps their "
        f"torch path. Last output: {' | '.join(tail) or '(none)'}",
        RecstackWarning,
        stacklevel=3,
    )
    return None


def wait_compiled(timeout: float | None = None) -> bool:
    """Wait until every background compile this process started has finished; whether all of them did (in
    ``timeout`` seconds, when given) and succeeded."""
    with _LOCK:
        jobs = list(_WARMUPS.values())
    ok = True
    for job in jobs:
        try:
            ok = job.process.wait(timeout) == 0 and ok
        except subprocess.TimeoutExpired:
            ok = False
    return ok


def jit(fn: Callable[..., Any], *, parallel: bool = False, fastmath: bool = False) -> Any:  # noqa: ANN401
    """``fn`` compiled by numba (no GIL, cached on disk); numba is imported here, on first use."""
    import numba

    return numba.njit(cache=True, nogil=True, parallel=parallel, fastmath=fastmath)(fn)


def prange() -> Any:  # noqa: ANN401
    """numba's parallel range, for kernels that bind it before they are compiled."""
    import numba

    return numba.prange


# The kernel families, in the order `status` lists them.
register("attention", "AutoInt's InteractingLayer: fused attention forward and backward", simd=True)
register("cin", "xDeepFM's CIN: fused layers that never store the outer products", simd=True,
         alias="RECSTACK_FUSED_CIN")  # fmt: skip
register("cin_grads", "CIN torch-ops path: both input gradients of a layer in one pass")
register("gemm", "linear layers (DNN, cross nets, CIN): oneDNN or row-padded MKL GEMMs from 1024 rows")
register("onednn", "oneDNN's linear op inside the gemm family (off: row-padded MKL)", alias="RECSTACK_ONEDNN")
register("embedding", "embedding backward: one scatter-add pass")
register("unique", "row ids of a batch: radix sort in place of torch.unique")
register("hashing", "xxh64 column hashing over Arrow buffers and integers (off: one xxhash call per value)")
