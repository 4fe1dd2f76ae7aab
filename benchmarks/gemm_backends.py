"""float32 GEMM rates on CPU, torch's ``mm``/``addmm`` (MKL) against oneDNN's linear op, at the ranking models' shapes.

    .venv/bin/python benchmarks/gemm_backends.py

Each shape is ``[M, K] @ [K, N]`` as a linear layer's forward (``x @ W.T + b``), input gradient
(``g @ W``) and weight gradient (``g.T @ x``); the two libraries alternate call by call and each figure
is the median of --repeats calls, in GFLOP/s at --threads threads. Shapes: 2048-square (the benchmark's
peak), the DNN's first two layers at batch 4096 (429 -> 256 -> 128) and xDeepFM's CIN chunks at batch
4096 (26 x 26 -> 256 and 128 x 26 -> 128 maps). Results: benchmarks/results/gemm_backends.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from recstack.kernels import gemm

RESULTS = Path(__file__).parent / "results"
SHAPES = {
    "square 2048": (2048, 2048, 2048),
    "DNN layer 1, batch 4096": (4096, 429, 256),
    "DNN layer 2, batch 4096": (4096, 256, 128),
    "CIN layer 1 chunk": (6192, 676, 256),
    "CIN layer 2 chunk": (1248, 3328, 128),
}


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(m: int, k: int, n: int, repeats: int) -> dict[str, dict[str, float]]:
    """GFLOP/s of MKL and oneDNN for the forward, input-gradient and weight-gradient GEMMs of one shape."""
    x, w, g, b = torch.randn(m, k), torch.randn(n, k), torch.randn(m, n), torch.randn(n)
    lp = torch.ops.mkldnn._linear_pointwise
    ops = {
        "forward": (lambda: torch.addmm(b, x, w.t()), lambda: lp(x, w, b, "none", [], "")),
        "input_grad": (lambda: g @ w, lambda: lp(g, w.t(), None, "none", [], "")),
        "weight_grad": (lambda: g.t() @ x, lambda: lp(g.t(), x.t(), None, "none", [], "")),
    }
    flop = 2 * m * k * n / 1e9
    out = {}
    for name, (mkl, onednn) in ops.items():
        torch.testing.assert_close(onednn(), mkl(), rtol=1e-4, atol=1e-2)
        t_mkl, t_onednn = [], []
        for _ in range(repeats):
            t_mkl.append(_seconds(mkl))
            t_onednn.append(_seconds(onednn))
        out[name] = {"mkl": flop / statistics.median(t_mkl), "onednn": flop / statistics.median(t_onednn)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default="gemm_backends.json", help="file name under benchmarks/results/")
    args = parser.parse_args()
    if not gemm.onednn_available():
        raise SystemExit("this torch build has no oneDNN linear op (torch.ops.mkldnn._linear_pointwise)")
    torch.set_num_threads(args.threads)
    results = []
    for label, (m, k, n) in SHAPES.items():
        row = {"shape": label, "m": m, "k": k, "n": n, **measure(m, k, n, args.repeats)}
        results.append(row)
        cells = " | ".join(
            f"{op} MKL {row[op]['mkl']:.0f}, oneDNN {row[op]['onednn']:.0f} ({row[op]['onednn'] / row[op]['mkl']:.2f}x)"
            for op in ("forward", "input_grad", "weight_grad")
        )
        print(f"{label} [{m}, {k}] x [{k}, {n}]: {cells}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": "gemm_backends",
        "command": "python benchmarks/gemm_backends.py",
        "threads": args.threads,
        "unit": "GFLOP/s",
        "results": results,
    }
    tmp = RESULTS / f".{args.out}.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(RESULTS / args.out)


if __name__ == "__main__":
    main()
