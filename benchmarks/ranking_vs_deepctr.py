"""Ranking models, recstack vs DeepCTR-Torch, side by side: training/prediction samples/s, AUC, memory, FLOPs.

    bash scripts/bench_setup.sh        # .venv-bench with deepctr-torch (--no-deps) beside recstack
    .venv-bench/bin/python benchmarks/ranking_vs_deepctr.py --models DeepFM DCN --batch-sizes 256 4096

Data: make_ctr_dataset (13 dense + 26 sparse, Zipf values), encoded once with recstack's FeaturePipeline;
both libraries get the same integer ids and the same model shape: embedding 16, DNN (256, 128), other
settings at DeepCTR-Torch defaults, tables sized at the generator's cardinalities (several >= 100,000, a few
near 1,000,000: ~75M embedding parameters). Each cell runs in its own process at --threads threads: training
samples/s over --steps steps of each library's own ``fit`` loop, or as many more as take --min-seconds
(median of --repeats), prediction samples/s, peak RSS. With --auc, both also train one full epoch and report
test AUC. FLOPs per training sample come from torch's FLOP counter on recstack's model (forward + backward;
oneDNN's linear op, which the counter does not know, counted as 2*M*K*N), and "of peak" divides the achieved
FLOP rate by this machine's float32 matmul rate at the same thread count: the faster of torch's ``mm`` (MKL)
and oneDNN's linear op on 2048-square operands, measured in the same process just before each timed repeat
(the shared machine's rate drifts by 20% over minutes); the median of those per-repeat fractions is
reported.
Results: benchmarks/results/ranking_vs_deepctr.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
EMBED, DNN = 16, (256, 128)
# what recstack.training.malloc.keep_freed_memory sets in-process when asked (RECSTACK_MALLOC_TUNING=1, which the
# recstack runs here use), as environment variables for the peer
PEER_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def prepare(rows: int, out: Path) -> None:
    from recstack.data.synthetic import CTR_CARDINALITIES, make_ctr_dataset
    from recstack.features import DenseFeat, FeaturePipeline, SparseFeat

    df = make_ctr_dataset(n_rows=rows, seed=0)
    cols = [DenseFeat(f"I{i}", normalization="minmax") for i in range(1, 14)]
    cols += [SparseFeat(f"C{i}", embedding_dim=EMBED) for i in range(1, 27)]
    cut = int(rows * 0.8)
    pipe = FeaturePipeline(cols, label_columns="label").fit(df.iloc[:cut])
    for part, frame in (("train", df.iloc[:cut]), ("test", df.iloc[cut:])):
        for key, arr in pipe.transform(frame).items():
            np.save(out / f"{part}.{key}.npy", arr)
    sizes = {f.name: max(f.vocabulary_size, card + 2) for f, card in zip(pipe.feature_columns[13:], CTR_CARDINALITIES)}
    (out / "meta.json").write_text(json.dumps({"sizes": sizes, "train_rows": cut, "test_rows": rows - cut}))


def load(out: Path, part: str) -> dict[str, np.ndarray]:
    return {p.name.split(".")[1]: np.load(p, mmap_mode="r") for p in sorted(out.glob(f"{part}.*.npy"))}


def build(lib: str, model: str, sizes: dict[str, int], device: str = "cpu"):  # noqa: ANN201
    if lib == "recstack":
        import recstack.models.ranking as zoo
        from recstack.features import DenseFeat, SparseFeat
    else:
        import deepctr_torch.models as zoo
        from deepctr_torch.inputs import DenseFeat, SparseFeat
    cols = [DenseFeat(f"i{i}", 1) for i in range(1, 14)]
    cols += [SparseFeat(f"c{i}", sizes[f"c{i}"], embedding_dim=EMBED) for i in range(1, 27)]
    cls = getattr(zoo, model)
    kwargs = {"dnn_hidden_units": DNN, "device": device}
    return cls(cols, cols, **kwargs)


def worker(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.data)
    meta = json.loads((out / "meta.json").read_text())
    train, test = load(out, "train"), load(out, "test")
    names = [f"i{i}" for i in range(1, 14)] + [f"c{i}" for i in range(1, 27)]
    model = build(args.lib, args.model, meta["sizes"], args.device)
    model.compile("adam", "binary_crossentropy", metrics=[] if args.lib == "recstack" else None)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    bs = args.batch_size
    result: dict = {"lib": args.lib, "model": args.model, "batch_size": bs}

    def fit_rows(start: int, n: int, epochs: int = 1) -> float:
        x = {k: np.asarray(train[k][start : start + n]) for k in names}
        y = np.asarray(train["label"][start : start + n])
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=bs, epochs=epochs, verbose=0, shuffle=True)
        sync()
        return time.perf_counter() - t0

    fit_rows(0, bs * 3)  # warm-up (allocations, numba, first-touch of tables)
    # at least --min-seconds per timed run: 10 steps of a fast model at batch 256 take 0.1 s, mostly noise
    per_step = fit_rows(bs * 3, bs * 3) / 3
    steps = max(args.steps, min(int(args.min_seconds / per_step) + 1, (len(train["label"]) // bs - 6) // args.repeats))
    result["steps"] = steps
    rates, peaks = [], []
    for r in range(args.repeats):
        peaks.append(matmul_gflops(args.threads, args.device))  # the machine's rate right now: "of peak" is paired
        secs = fit_rows(bs * 6 + r * bs * steps, bs * steps)
        rates.append(bs * steps / secs)
    result["train_samples_per_s"] = statistics.median(rates)
    result["train_runs"] = rates
    result["matmul_gflops_runs"] = peaks
    n_pred = min(args.predict_rows, meta["test_rows"])
    xt = {k: np.asarray(test[k][:n_pred]) for k in names}
    t0 = time.perf_counter()
    model.predict(xt, batch_size=max(bs, 4096))
    sync()
    result["predict_samples_per_s"] = n_pred / (time.perf_counter() - t0)
    if args.auc:
        from recstack.evaluation import roc_auc_score

        fresh = build(args.lib, args.model, meta["sizes"], args.device)
        fresh.compile("adam", "binary_crossentropy")
        model = fresh
        result["epoch_seconds"] = fit_rows(0, meta["train_rows"])
        xt = {k: np.asarray(test[k]) for k in names}
        result["test_auc"] = roc_auc_score(np.asarray(test["label"]), model.predict(xt, batch_size=8192))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def flops_per_sample(model_name: str, sizes: dict[str, int], data: Path) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = build("recstack", model_name, sizes)
    model.compile("adam", "binary_crossentropy")
    train = load(data, "train")
    n = 256
    batch = {k: torch.as_tensor(np.asarray(v[:n])) for k, v in train.items()}
    batch["_label"] = batch.pop("label")
    with FlopCounterMode(display=False, custom_mapping=_onednn_flop_formulas()) as counter:
        model.training_step(batch)["loss"].backward()
    return counter.get_total_flops() / n


def _onednn_flop_formulas() -> dict:
    """``X @ W.T``'s 2*M*K*N for oneDNN's linear op (recstack.kernels.gemm's CPU path), unknown to torch's counter."""
    import math

    import torch

    def linear_pointwise(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * w_shape[0]

    if not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return {}
    return {torch.ops.mkldnn._linear_pointwise: linear_pointwise}


def matmul_gflops(threads: int, device: str = "cpu") -> float:
    """Measured float32 matmul rate (2048-square on CPU, 8192-square on a GPU), median of 10.

    On CPU, the faster of torch's ``mm`` (MKL) and oneDNN's linear op (where torch has it), each a median of 10.
    """
    import torch

    from recstack.kernels import gemm

    torch.set_num_threads(threads)
    n = 8192 if device.startswith("cuda") else 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    kernels = [lambda: a @ b]
    if device == "cpu" and gemm.onednn_available():
        kernels.append(lambda: gemm.matmul_t(a, b))
    best = 0.0
    for kernel in kernels:
        for _ in range(3):
            kernel()
        times = []
        for _ in range(10):
            sync()
            t0 = time.perf_counter()
            kernel()
            sync()
            times.append(time.perf_counter() - t0)
        best = max(best, 2 * n**3 / statistics.median(times) / 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--models", nargs="+", default=["DeepFM", "DCN", "DCNMix", "AutoInt", "xDeepFM"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 4096])
    parser.add_argument("--libs", nargs="+", default=["recstack", "deepctr"])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--min-seconds", type=float, default=2.0, help="more steps than --steps where a run would take less than this"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--device", default="cpu", help="torch device of both libraries' models (e.g. cuda:0); peak is measured there"
    )
    parser.add_argument("--predict-rows", type=int, default=100_000)
    parser.add_argument("--auc", action="store_true", help="also train one epoch at the largest batch size")
    parser.add_argument(
        "--peer-malloc-tuned",
        action="store_true",
        help="run DeepCTR-Torch with the glibc malloc settings recstack's runs here apply to themselves "
        f"({' '.join(f'{k}={v}' for k, v in PEER_MALLOC_ENV.items())})",
    )
    parser.add_argument("--out", default="ranking_vs_deepctr.json", help="file name under benchmarks/results/")
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lib", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        prepare(args.rows, data)
        meta = json.loads((data / "meta.json").read_text())
        params = sum(meta["sizes"].values()) * (EMBED + 1)
        print(
            f"data: {args.rows:,} rows, embedding parameters {params / 1e6:.1f}M, prepared in "
            f"{time.perf_counter() - t0:.0f}s"
        )
        peak = matmul_gflops(args.threads, args.device)
        where = f"{args.threads} threads" if args.device == "cpu" else args.device
        print(f"float32 matmul on {where}: {peak:.1f} GFLOP/s")
        results = []
        for model_name in args.models:
            flops = flops_per_sample(model_name, meta["sizes"], data)
            for bs in args.batch_sizes:
                row = {"model": model_name, "batch_size": bs, "train_flops_per_sample": flops}
                for lib in args.libs:
                    cmd = [
                        sys.executable,
                        __file__,
                        "--worker",
                        "--data",
                        str(data),
                        "--lib",
                        lib,
                        "--model",
                        model_name,
                        "--batch-size",
                        str(bs),
                        "--steps",
                        str(args.steps),
                        "--repeats",
                        str(args.repeats),
                        "--threads",
                        str(args.threads),
                        "--predict-rows",
                        str(args.predict_rows),
                        "--min-seconds",
                        str(args.min_seconds),
                        "--device",
                        args.device,
                    ]
                    if args.auc and bs == max(args.batch_sizes):
                        cmd.append("--auc")
                    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
                    if lib == "recstack":
                        env.setdefault("RECSTACK_MALLOC_TUNING", "1")
                    if lib == "deepctr" and args.peer_malloc_tuned:
                        env.update(PEER_MALLOC_ENV)
                    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                    if proc.returncode:
                        row[lib] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
                    else:
                        row[lib] = json.loads(proc.stdout.strip().splitlines()[-1])
                        runs = zip(row[lib]["train_runs"], row[lib]["matmul_gflops_runs"])
                        row[lib]["fraction_of_matmul_peak"] = statistics.median(r * flops / 1e9 / p for r, p in runs)
                ours, theirs = row.get("recstack", {}), row.get("deepctr", {})
                if "train_samples_per_s" in ours and "train_samples_per_s" in theirs:
                    row["train_speedup"] = ours["train_samples_per_s"] / theirs["train_samples_per_s"]
                    row["predict_speedup"] = ours["predict_samples_per_s"] / theirs["predict_samples_per_s"]
                results.append(row)
                print(_line(row), flush=True)
                _save(args, peak, params, results)


def _save(args: argparse.Namespace, peak: float, params: int, results: list[dict]) -> None:
    """Write what has been measured so far (atomically): a long run that is stopped keeps its finished rows."""
    payload = {
        "benchmark": "ranking_vs_deepctr",
        "command": " ".join(["python benchmarks/ranking_vs_deepctr.py"] + sys.argv[1:]),
        "rows": args.rows,
        "threads": args.threads,
        "device": args.device,
        "matmul_gflops": peak,
        "peer_env": PEER_MALLOC_ENV if args.peer_malloc_tuned else {},
        "embedding_parameters": params,
        "results": results,
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp_file = RESULTS / f".{args.out}.tmp"
    tmp_file.write_text(json.dumps(payload, indent=2))
    os.replace(tmp_file, RESULTS / args.out)


def _line(row: dict) -> str:
    def cell(lib: str) -> str:
        r = row.get(lib, {})
        if "error" in r:
            return f"{lib}: ERROR {r['error'][:60]}"
        if "train_samples_per_s" not in r:
            return f"{lib}: -"
        auc = f" auc {r['test_auc']:.4f}" if "test_auc" in r else ""
        return (
            f"{lib}: train {r['train_samples_per_s']:,.0f}/s predict {r['predict_samples_per_s']:,.0f}/s "
            f"rss {r['peak_rss_mb']:,.0f}MB peak {100 * r['fraction_of_matmul_peak']:.1f}%{auc}"
        )

    speed = (
        f" | x{row['train_speedup']:.1f} train, x{row['predict_speedup']:.1f} predict" if "train_speedup" in row else ""
    )
    return (
        f"{row['model']:<8} bs {row['batch_size']:>5} ({row['train_flops_per_sample'] / 1e6:.1f} MFLOP/sample) | "
        f"{cell('recstack')} | {cell('deepctr')}{speed}"
    )


if __name__ == "__main__":
    main()
