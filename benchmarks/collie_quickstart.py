"""Collie's quick start, Collie 1.3.1 against recstack.collie, side by side on ML-100K: metrics and fit time.

    .venv/bin/python benchmarks/collie_quickstart.py --runs 3

The first run builds ``.venv-collie`` (git-ignored): Collie 1.3.1 with the pins it needs on this Python
(``pytorch-lightning>=1.9,<2``, ``scipy<1.12``, ``numpy<2``, ``pandas<2.3``, ``setuptools<70``, ``requests``)
and the same torch as recstack's. Each run is its own process at ``--threads`` threads, Collie and recstack
alternating: the quick start of the Collie 1.1.2 docs (``embedding_dim=10, lr=1e-1, loss='adaptive'``,
``CollieTrainer(model, max_epochs=10)``), with Collie's default scheduler passed as
``functools.partial(ReduceLROnPlateau, patience=1)`` (torch dropped its ``verbose=``), then AUC, MRR and MAP@10 on
the validation split. The ML-100K ratings come from the installed ``recbole`` wheel; Collie reads them as
``$DATA_PATH/ml-100k/u.data`` (written to a temporary folder). Prints a table of medians and the
median of the per-run fit-time ratios (wall time, and the process CPU time, which the other jobs on a shared
machine disturb less), and writes benchmarks/results/collie_quickstart.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
COLLIE_PINS = ["collie==1.3.1", "pytorch-lightning>=1.9,<2", "scipy<1.12", "numpy<2", "pandas<2.3", "requests"]
# torch asks for a newer setuptools than the pkg_resources Collie's Lightning imports; installed last, on its own
OLD_SETUPTOOLS = "setuptools<70"

QUICKSTART = """
import functools, json, sys, time
import torch
torch.set_num_threads({threads})
torch.manual_seed({seed})
from {pkg}.cross_validation import stratified_split
from {pkg}.interactions import Interactions
from {pkg}.metrics import auc, evaluate_in_batches, mapk, mrr
from {pkg}.model import MatrixFactorizationModel, CollieTrainer
from {pkg}.movielens import read_movielens_df
from {pkg}.utils import convert_to_implicit

df = read_movielens_df()
df_imp = convert_to_implicit(df)
interactions = Interactions(users=df_imp['user_id'], items=df_imp['item_id'], allow_missing_ids=True)
train, val = stratified_split(interactions)
model = MatrixFactorizationModel(
    train=train, val=val, embedding_dim=10, lr=1e-1, loss='adaptive', optimizer='adam',
    lr_scheduler_func=functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=1),
)
trainer = CollieTrainer(model, max_epochs={epochs}{trainer_args})
start, cpu = time.perf_counter(), time.process_time()
trainer.fit(model)
fit, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
model.eval()
scores = evaluate_in_batches(metric_list=[auc, mrr, mapk], test_interactions=val, model=model, verbose=False)
result = dict(zip(['auc', 'mrr', 'mapk'], map(float, scores)), fit_seconds=fit, fit_cpu_seconds=fit_cpu)
print('RESULT ' + json.dumps(result))
"""


def ensure_collie_venv(venv: Path) -> Path:
    """``venv``'s python, building the venv with Collie 1.3.1 and its pins the first time."""
    venv = venv.absolute()  # the runs change directory; the venv's python is a link that must not be resolved
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists():
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    import torch

    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, torch_pin], check=True)
    subprocess.run([*pip, torch_pin, *COLLIE_PINS], check=True)
    subprocess.run([*pip, OLD_SETUPTOOLS], check=True)
    stamp.write_text(" ".join([torch_pin, *COLLIE_PINS, OLD_SETUPTOOLS]) + "\n")
    return python


def movielens_data_path(tmp: Path) -> Path:
    """A ``DATA_PATH`` folder holding ``ml-100k/u.data`` (the recbole wheel's ratings without their header)."""
    from recstack.data.movielens import read_movielens_df

    df = read_movielens_df(decrement_ids=False)
    folder = tmp / "ml-100k"
    folder.mkdir(parents=True, exist_ok=True)
    df[["user_id", "item_id", "rating", "timestamp"]].to_csv(folder / "u.data", sep="\t", header=False, index=False)
    return tmp


def run_once(lib: str, python: Path, args: argparse.Namespace, seed: int, data_path: Path) -> dict:
    code = QUICKSTART.format(
        pkg="collie" if lib == "collie" else "recstack.collie",
        threads=args.threads,
        seed=seed,
        epochs=args.epochs,
        trainer_args=", enable_progress_bar=False, logger=False" if lib == "collie" else ", verbosity=0",
    )
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env["DATA_PATH"] = str(data_path)
    # run in the temporary folder: Lightning writes its checkpoints under the working directory
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, cwd=data_path)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{lib} quick start failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per library (medians are reported)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--collie-venv", type=Path, default=ROOT / ".venv-collie")
    parser.add_argument("--skip-collie", action="store_true", help="run recstack only")
    args = parser.parse_args()
    libs = {"recstack": Path(sys.executable)}
    if not args.skip_collie:
        libs = {"collie": ensure_collie_venv(args.collie_venv), **libs}
    runs: dict[str, list[dict]] = {lib: [] for lib in libs}
    with tempfile.TemporaryDirectory() as tmp:
        data_path = movielens_data_path(Path(tmp))
        for seed in range(args.runs):
            for lib, python in libs.items():
                result = run_once(lib, python, args, seed, data_path)
                runs[lib].append(result)
                print(f"{lib:9s} run {seed + 1}: " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()), flush=True)
    medians = {lib: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for lib, rs in runs.items()}
    header = f"{'library':9s} {'AUC':>7s} {'MRR':>7s} {'MAP@10':>7s} {'fit s':>7s} {'fit CPU s':>9s}"
    print(f"\n{header}   (medians of {args.runs} runs)")
    for lib, m in medians.items():
        row = f"{lib:9s} {m['auc']:7.4f} {m['mrr']:7.4f} {m['mapk']:7.4f} {m['fit_seconds']:7.1f}"
        print(f"{row} {m['fit_cpu_seconds']:9.1f}")
    report = {"threads": args.threads, "epochs": args.epochs, "runs": runs, "medians": medians}
    if "collie" in medians:
        # each run pairs a Collie fit with the recstack fit right after it: the ratio within a pair is what
        # survives the shared machine's drift
        for key, what in (("fit_seconds", "wall"), ("fit_cpu_seconds", "CPU")):
            ratios = [c[key] / r[key] for c, r in zip(runs["collie"], runs["recstack"])]
            report[f"{what.lower()}_speedup_per_run"] = ratios
            report[f"{what.lower()}_speedup_vs_collie"] = statistics.median(ratios)
            print(
                f"recstack fit is {statistics.median(ratios):.1f}x faster than Collie's in {what} time (median of "
                f"the per-run ratios {', '.join(f'{r:.1f}' for r in ratios)})"
            )
    from recstack.storage import atomic_file

    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_file(RESULTS / "collie_quickstart.json", "benchmark results") as tmp_file:
        Path(tmp_file).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
