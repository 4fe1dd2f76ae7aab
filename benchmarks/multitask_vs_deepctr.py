"""Multi-task models, recstack vs DeepCTR-Torch, side by side: training samples/s and per-task test AUC.

    bash scripts/bench_setup.sh        # .venv-bench with deepctr-torch (--no-deps) beside recstack
    .venv-bench/bin/python benchmarks/multitask_vs_deepctr.py --models MMOE PLE --batch-sizes 256 4096 --auc

Data: make_two_task_dataset (user and item ids, user segment, item category, hour, price, activity; targets
click and purchase, the CTR and CTCVR labels, so ESMM runs on the same data as the others). Both libraries get
the same integer ids and the same model shape: embedding 16 for every sparse feature, DeepCTR-Torch's default
expert / gate / tower / bottom units and defaults for everything else, two binary tasks. The machine is
shared, so the libraries are measured in pairs: each of --repeats rounds runs one process per library, back to
back, each timing --steps steps of the library's own ``fit`` loop (or as many more as take --min-seconds) at
--threads threads after a warm-up; the speedup is the median over rounds of the paired ratio. With --auc, each
library also trains --auc-epochs epochs from a fresh model at the largest batch size and reports each task's
test AUC. Both libraries run under the same OpenMP settings; by default ``OMP_WAIT_POLICY=PASSIVE``
(--omp-wait-policy): on a shared machine with more busy threads than cores, OpenMP threads that spin while
waiting take the cores the working ones need (recstack's MMOE at batch 4096 ran about 5x slower with the
default policy under a load of 6 on 2 cores).
Results: benchmarks/results/multitask_vs_deepctr.json (benchmarks/machine.py write_result).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name, usable_cpus, write_result  # noqa: E402

EMBED = 16
SPARSE = ("user_id", "item_id", "user_segment", "item_category", "hour")
DENSE = ("price", "user_activity")
TARGETS = ("click", "purchase")


def prepare(rows: int, users: int, items: int, out: Path) -> None:
    from recstack.data import make_two_task_dataset

    df = make_two_task_dataset(n_rows=rows, n_users=users, n_items=items, seed=0)
    cut = int(rows * 0.8)
    for part, frame in (("train", df.iloc[:cut]), ("test", df.iloc[cut:])):
        for key in (*SPARSE, *DENSE, *TARGETS):
            np.save(out / f"{part}.{key}.npy", np.ascontiguousarray(frame[key].to_numpy()))
    sizes = {k: int(df[k].max()) + 1 for k in SPARSE}
    (out / "meta.json").write_text(json.dumps({"sizes": sizes, "train_rows": cut, "test_rows": rows - cut}))


def load(out: Path, part: str) -> dict[str, np.ndarray]:
    return {p.name.split(".")[1]: np.load(p, mmap_mode="r") for p in sorted(out.glob(f"{part}.*.npy"))}


def build(lib: str, model: str, sizes: dict[str, int]):  # noqa: ANN201
    if lib == "recstack":
        import recstack.models as zoo
        from recstack.features import DenseFeat, SparseFeat
    else:
        import deepctr_torch.models as zoo
        from deepctr_torch.inputs import DenseFeat, SparseFeat
    cols = [SparseFeat(k, sizes[k], embedding_dim=EMBED) for k in SPARSE] + [DenseFeat(k, 1) for k in DENSE]
    return getattr(zoo, model)(cols, task_types=["binary", "binary"], task_names=list(TARGETS))


def worker(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.data)
    meta = json.loads((out / "meta.json").read_text())
    train, test = load(out, "train"), load(out, "test")
    names = [*SPARSE, *DENSE]
    bs = args.batch_size
    result: dict = {"lib": args.lib, "model": args.model, "batch_size": bs}

    def fit_rows(model, start: int, n: int, epochs: int = 1) -> float:  # noqa: ANN001
        x = {k: np.asarray(train[k][start : start + n]) for k in names}
        y = np.stack([np.asarray(train[t][start : start + n]) for t in TARGETS], 1)
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=bs, epochs=epochs, verbose=0, shuffle=True)
        return time.perf_counter() - t0

    if args.repeats > 0:
        model = build(args.lib, args.model, meta["sizes"])
        model.compile("adam", ["binary_crossentropy", "binary_crossentropy"])
        fit_rows(model, 0, bs * 2)  # warm-up (allocations, first-touch of tables)
        per_step = fit_rows(model, bs * 2, bs * 2) / 2
        room = (meta["train_rows"] // bs - 4) // args.repeats
        steps = max(1, min(max(args.steps, int(args.min_seconds / per_step) + 1), room))
        result["steps"] = steps
        rates = []
        for r in range(args.repeats):
            secs = fit_rows(model, bs * 4 + r * bs * steps, bs * steps)
            rates.append(bs * steps / secs)
        result["train_samples_per_s"] = statistics.median(rates)
    if args.auc:
        from recstack.evaluation import roc_auc_score

        torch.manual_seed(0)
        model = build(args.lib, args.model, meta["sizes"])
        model.compile("adam", ["binary_crossentropy", "binary_crossentropy"])
        result["fit_seconds"] = fit_rows(model, 0, meta["train_rows"], epochs=args.auc_epochs)
        xt = {k: np.asarray(test[k]) for k in names}
        pred = np.asarray(model.predict(xt, batch_size=8192))
        result["test_auc"] = {t: roc_auc_score(np.asarray(test[t]), pred[:, i]) for i, t in enumerate(TARGETS)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--users", type=int, default=3_000_000)
    parser.add_argument("--items", type=int, default=1_500_000)
    parser.add_argument("--models", nargs="+", default=["MMOE", "PLE", "SharedBottom", "ESMM"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 4096])
    parser.add_argument("--libs", nargs="+", default=["recstack", "deepctr"])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per repeat (at least)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=1.5, help="timed seconds per repeat (at least)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--auc", action="store_true", help="also train from scratch at the largest batch size")
    parser.add_argument("--auc-epochs", type=int, default=2)
    parser.add_argument(
        "--omp-wait-policy", default="PASSIVE", help="OMP_WAIT_POLICY of both libraries' processes ('' to leave unset)"
    )
    parser.add_argument("--out", default="multitask_vs_deepctr.json", help="file name under benchmarks/results/")
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
        prepare(args.rows, args.users, args.items, data)
        print(f"data: {args.rows:,} rows ({args.users:,} users, {args.items:,} items), {args.threads} threads")
        results = []
        for model_name in args.models:
            for bs in args.batch_sizes:
                row: dict = {"model": model_name, "batch_size": bs}
                rounds: dict = {lib: [] for lib in args.libs}
                for r in range(args.repeats):
                    for lib in args.libs if r % 2 == 0 else args.libs[::-1]:  # alternate who runs first
                        out = _run_worker(args, data, lib, model_name, bs, ["--repeats", "1"])
                        rounds[lib].append(out.get("train_samples_per_s", float("nan")))
                        if "error" in out:
                            row[lib] = out
                for lib in args.libs:
                    row.setdefault(lib, {})
                    if "error" not in row[lib]:
                        row[lib] = {"train_samples_per_s": statistics.median(rounds[lib]), "train_runs": rounds[lib]}
                    if args.auc and bs == max(args.batch_sizes):
                        out = _run_worker(args, data, lib, model_name, bs, ["--repeats", "0", "--auc"])
                        row[lib].update({k: v for k, v in out.items() if k in ("test_auc", "fit_seconds", "error")})
                libs = args.libs
                if len(libs) == 2 and all("error" not in row[lib] for lib in libs):
                    pairs = [a / b for a, b in zip(rounds[libs[0]], rounds[libs[1]])]
                    row["train_speedup"] = statistics.median(pairs)
                    row["train_speedup_runs"] = pairs
                ours, theirs = row.get("recstack", {}), row.get("deepctr", {})
                if "test_auc" in ours and "test_auc" in theirs:
                    row["auc_gap"] = {t: ours["test_auc"][t] - theirs["test_auc"][t] for t in TARGETS}
                results.append(row)
                print(_line(row), flush=True)
                write_result(
                    args.out,
                    {
                        "benchmark": "multitask_vs_deepctr",
                        "command": " ".join(["python benchmarks/multitask_vs_deepctr.py"] + sys.argv[1:]),
                        "rows": args.rows,
                        "threads": args.threads,
                        "omp_wait_policy": args.omp_wait_policy,
                        "results": results,
                        "machine": {"cpu": cpu_name(), "usable_cpus": usable_cpus()},
                    },
                )


def _run_worker(args: argparse.Namespace, data: Path, lib: str, model: str, bs: int, extra: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--data", str(data), "--lib", lib, "--model", model]
    cmd += ["--batch-size", str(bs), "--steps", str(args.steps), "--threads", str(args.threads)]
    cmd += ["--min-seconds", str(args.min_seconds), "--auc-epochs", str(args.auc_epochs), *extra]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _line(row: dict) -> str:
    def cell(lib: str) -> str:
        r = row.get(lib, {})
        if "error" in r:
            return f"{lib}: ERROR {r['error'][:80]}"
        if "train_samples_per_s" not in r:
            return f"{lib}: -"
        auc = " auc " + "/".join(f"{v:.4f}" for v in r["test_auc"].values()) if "test_auc" in r else ""
        return f"{lib}: train {r['train_samples_per_s']:,.0f}/s{auc}"

    speed = f" | x{row['train_speedup']:.1f}" if "train_speedup" in row else ""
    return f"{row['model']:<12} bs {row['batch_size']:>5} | {cell('recstack')} | {cell('deepctr')}{speed}"


if __name__ == "__main__":
    main()
