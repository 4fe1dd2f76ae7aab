"""First-use cost: each ranking model's first and second `fit` in a fresh process with an empty numba cache.

    python benchmarks/first_use.py --rows 20000 --batch-size 4096

For every model of the zoo (DeepCTR-Torch default constructor parameters, Criteo-like synthetic data with 26
categorical and 13 numeric columns) a child process with a new empty ``NUMBA_CACHE_DIR`` fits one epoch twice
and reports both times: the first includes compiling the model's quick kernels, while the slow ones (attention,
CIN) compile in a background process and the layers run their torch ops meanwhile. The child then waits for
those compiles (``kernels ready``: seconds from the first fit's start) and times a third fit on the kernels.
Prints a table and writes benchmarks/results/first_use.json. The target: a first fit of at most 2x the second
plus 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from machine import cpu_name, usable_cpus, write_result


def child(model_name: str, rows: int, batch_size: int) -> dict:
    import torch

    from recstack.data import make_ctr_dataset
    from recstack.features import DenseFeat, FeaturePipeline, SparseFeat
    from recstack.kernels import registry
    from recstack.models import ranking

    torch.set_num_threads(2)
    df = make_ctr_dataset(n_rows=rows, seed=0)
    cols = [SparseFeat(f"C{i}", min_freq=2) for i in range(1, 27)]
    cols += [DenseFeat(f"I{i}", normalization="standard") for i in range(1, 14)]
    pipe = FeaturePipeline(cols, label_columns="label").fit(df)
    data = pipe.transform(df)
    features = pipe.feature_columns
    cls = getattr(ranking, model_name)
    model = cls(features) if model_name in ("MLR", "PNN") else cls(features, features)
    model.compile("adam", "binary_crossentropy")
    times = []
    begin = time.perf_counter()
    for _ in range(2):
        start = time.perf_counter()
        model.fit(data, data["label"], batch_size=batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    # background compiles started by the fits: wait for them, then time a fit on the compiled kernels
    compiled_ok = registry.wait_compiled(timeout=600)
    ready_s = time.perf_counter() - begin
    start = time.perf_counter()
    model.fit(data, data["label"], batch_size=batch_size, epochs=1, verbose=0)
    third = time.perf_counter() - start
    return {
        "model": model_name,
        "first_s": round(times[0], 2),
        "second_s": round(times[1], 2),
        "kernels_ready_s": round(ready_s, 2),
        "compiled_ok": compiled_ok,
        "after_compile_s": round(third, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--models", help="comma-separated subset of the zoo (default: all)")
    parser.add_argument("--out", default="first_use.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.rows, args.batch_size)))
        return {}
    from recstack.models import ranking

    names = args.models.split(",") if args.models else sorted(ranking.__all__)
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            cmd = [
                sys.executable,
                __file__,
                "--child",
                name,
                "--rows",
                str(args.rows),
                "--batch-size",
                str(args.batch_size),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            rows.append({"model": name, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]})
        else:
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["meets_target"] = row["first_s"] <= 2 * row["second_s"] + 3
            rows.append(row)
        print(rows[-1], flush=True)
    print(
        f"\n{'model':<10} {'first fit s':>11} {'second fit s':>12} {'kernels ready s':>15} {'fit after s':>11}"
        "  target (first <= 2x second + 3 s)"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<10} error: {r['error']}")
        else:
            verdict = "met" if r["meets_target"] else "NOT met"
            print(
                f"{r['model']:<10} {r['first_s']:>11.2f} {r['second_s']:>12.2f} {r['kernels_ready_s']:>15.2f} "
                f"{r['after_compile_s']:>11.2f}  {verdict}"
            )
    result = {
        "benchmark": "first_use",
        "command": "python benchmarks/first_use.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": args.rows,
        "batch_size": args.batch_size,
        "results": rows,
        "cpu": cpu_name(),
        "cpus": usable_cpus(),
        "date": time.strftime("%Y-%m-%d"),
    }
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
