"""recstack's CPU kernels on and off, paired in one process: fused attention (AutoInt), the compiled
embedding backward (any model), recstack.kernels.gemm's linear layers against plain ``F.linear`` (DNN models),
oneDNN's GEMMs against MKL's (padded to 8-float rows) in the linear layers and xDeepFM's CIN, and the
compiled radix sort of a batch's row ids against ``torch.unique`` (row-sparse training, any model), and
AutoInt's attention stack passing blocked activations between layers (and the last one straight into the
logit) against layer-by-layer calls, and xDeepFM's fused CIN kernels against its chunked torch ops.

    .venv/bin/python benchmarks/fused_kernels_ab.py --model AutoInt --switch attention --batch-sizes 256 4096
    .venv/bin/python benchmarks/fused_kernels_ab.py --model DeepFM --switch embedding
    .venv/bin/python benchmarks/fused_kernels_ab.py --model DeepFM --switch gemm --batch-sizes 4096
    .venv/bin/python benchmarks/fused_kernels_ab.py --model xDeepFM --switch onednn --batch-sizes 4096
    .venv/bin/python benchmarks/fused_kernels_ab.py --model AutoInt --switch unique --batch-sizes 4096
    .venv/bin/python benchmarks/fused_kernels_ab.py --model AutoInt --switch blocked --batch-sizes 4096
    .venv/bin/python benchmarks/fused_kernels_ab.py --model xDeepFM --switch cin --batch-sizes 256 4096

Same data and model shape as benchmarks/ranking_vs_deepctr.py. Each pair is two short ``fit`` calls on
fresh rows, one with the kernel and one with torch's op-by-op path, in alternating order; the figure is
the median of the per-pair ratios, which cancels most of this shared machine's drift.
Results: benchmarks/results/fused_kernels_ab.json (one entry per model, switch and batch size).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from recstack import kernels
from recstack.kernels import gemm
from recstack.models.ranking import autoint
from recstack.nn import embedding_ops
from recstack.nn.attention import InteractingLayer
from recstack.nn.embedding import FusedTable

sys.path.insert(0, str(Path(__file__).parent))
import ranking_vs_deepctr as rb  # noqa: E402

RESULTS = Path(__file__).parent / "results"


_KERNEL_LOOKUP = FusedTable._lookup_for_grad  # the compiled scatter-add backward on CPU
_GEMM_MIN_ROWS = gemm.MIN_ROWS
_ONEDNN = gemm.onednn_available
_UNIQUE = embedding_ops.unique_inverse
_STACK = autoint.interacting_logit
_CIN_OFF = contextlib.ExitStack()  # holds kernels.disabled("cin") while the CIN kernels are switched off


def _layer_by_layer(layers, inputs, weight):
    for layer in layers:
        inputs = layer(inputs)
    return torch.mv(inputs.reshape(inputs.shape[0], -1), weight)


def _ops_lookup(self, index, table):
    return F.embedding(index, table)


def switch(model, name: str, on: bool) -> None:
    """Turn one kernel on or off for ``model``."""
    if name == "attention":
        for m in model.modules():
            if isinstance(m, InteractingLayer):
                m.fused = on
    elif name == "gemm":
        gemm.MIN_ROWS = _GEMM_MIN_ROWS if on else sys.maxsize
    elif name == "onednn":
        gemm.onednn_available = _ONEDNN if on else (lambda: False)
    elif name == "blocked":
        autoint.interacting_logit = _STACK if on else _layer_by_layer
    elif name == "cin":
        _CIN_OFF.close()
        if not on:
            _CIN_OFF.enter_context(kernels.disabled("cin"))
    elif name == "unique":
        embedding_ops.unique_inverse = _UNIQUE if on else (lambda index: torch.unique(index, return_inverse=True))
    else:
        FusedTable._lookup_for_grad = _KERNEL_LOOKUP if on else _ops_lookup


def measure(model, train: dict[str, np.ndarray], bs: int, name: str, pairs: int) -> dict[str, float]:
    """Median samples/s with the kernel on and off, and the median of the per-pair ratios."""
    names = [k for k in train if k != "label"]
    steps = 60 if bs <= 512 else 10  # fits of about a second: shorter ones are mostly noise here
    start = 0

    def fit(on: bool) -> float:
        nonlocal start
        n = bs * steps
        if start + n > len(train["label"]):
            start = 0
        x = {k: np.asarray(train[k][start : start + n]) for k in names}
        y = np.asarray(train["label"][start : start + n])
        start += n
        switch(model, name, on)
        t = time.perf_counter()
        model.fit(x, y, batch_size=bs, epochs=1, verbose=0)
        return n / (time.perf_counter() - t)

    fit(True), fit(False)  # compile and warm up both paths
    on_runs, off_runs = [], []
    for p in range(pairs):
        for on in (True, False) if p % 2 == 0 else (False, True):
            (on_runs if on else off_runs).append(fit(on))
    return {
        "kernel_samples_per_s": statistics.median(on_runs),
        "ops_samples_per_s": statistics.median(off_runs),
        "paired_speedup": statistics.median(a / b for a, b in zip(on_runs, off_runs)),
    }


def main() -> None:
    os.environ.setdefault("RECSTACK_MALLOC_TUNING", "1")  # both arms with the malloc settings of the recorded runs
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="AutoInt")
    switches = ["attention", "embedding", "gemm", "onednn", "unique", "blocked", "cin"]
    parser.add_argument("--switch", choices=switches, default="attention")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 4096])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="fused_kernels_ab.json", help="file name under benchmarks/results/")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        rb.prepare(args.rows, data)
        meta = json.loads((data / "meta.json").read_text())
        train = rb.load(data, "train")
        entries = []
        for bs in args.batch_sizes:
            model = rb.build("recstack", args.model, meta["sizes"])
            model.compile("adam", "binary_crossentropy", metrics=[])
            command = "python benchmarks/fused_kernels_ab.py " + " ".join(sys.argv[1:])
            entry = {
                "model": args.model,
                "switch": args.switch,
                "batch_size": bs,
                "rows": args.rows,
                "command": command,
            }
            entry.update(measure(model, train, bs, args.switch, args.pairs))
            entries.append(entry)
            print(
                f"{args.model} {args.switch} bs {bs}: kernel {entry['kernel_samples_per_s']:,.0f}/s, "
                f"ops {entry['ops_samples_per_s']:,.0f}/s, paired speed-up {entry['paired_speedup']:.3f}x"
            )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / args.out
    old = json.loads(path.read_text())["results"] if path.exists() else []
    keep = [e for e in old if (e["model"], e["switch"]) != (args.model, args.switch)]
    tmp_path = path.with_suffix(".tmp")
    tmp_path.write_text(json.dumps({"benchmark": "fused_kernels_ab", "results": keep + entries}, indent=1))
    tmp_path.replace(path)


if __name__ == "__main__":
    main()
