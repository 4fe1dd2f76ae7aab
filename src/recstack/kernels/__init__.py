"""Compiled fast paths (numba, oneDNN) behind one registry, with a CPU check and a torch fallback.

`enabled(name)` says whether a kernel family runs (environment switches, the CPU check, `disabled` blocks);
the layers in `recstack.nn` ask it and otherwise run their torch ops. Families: ``attention`` (`attention`),
``cin`` and ``cin_grads`` (`cin`), ``gemm`` and ``onednn`` (`gemm`), ``embedding`` and ``unique``
(`embedding`), ``hashing`` (`xxh64`, used by `recstack.features.hashing`). The kernel modules are imported on
first use; numba is imported only when a kernel is compiled.
"""

from recstack.kernels.registry import (
    KernelSpec,
    compiled,
    cpu_features,
    cpu_features_as,
    disabled,
    enabled,
    names,
    simd_supported,
    spec,
    status,
)

__all__ = [
    "KernelSpec",
    "compiled",
    "cpu_features",
    "cpu_features_as",
    "disabled",
    "enabled",
    "names",
    "simd_supported",
    "spec",
    "status",
]
