"""Benchmark: the HTTP service (python -m recstack.serve) under wrk, beside a trivial FastAPI endpoint.

Builds (or reuses, with --bundle) a bundle with --items items of dimension --dim and a DCN ranker, starts the
service on 127.0.0.1 and drives it with wrk (benchmarks/wrk/post.lua, one user per /recommend request) at each
--connections, each run bounded by --duration seconds and --max-requests requests, --repeats times (the
median run by req/s is reported, with every run's req/s). In the same run, a FastAPI
app whose POST endpoint returns a constant measures the HTTP stack's ceiling on this machine.

Cases: the trivial endpoint; /recommend k=100 without ranking; /recommend k=100 ranking 100 candidates;
/predict with 100 rows. Reports req/s and p50/p95/p99 latency per case and connection count, plus the bundle's
export time, the service's start-to-ready time and its RSS. Needs wrk (apt-get install wrk).

    python benchmarks/serve.py                                   # 1,000,000 items x 48, 10 s per run
    python benchmarks/serve.py --items 100000 --duration 5       # quicker
    python benchmarks/serve.py --bundle /tmp/bench-bundle        # build once, reuse afterwards

Writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from machine import cpu_name, usable_cpus  # noqa: E402

DEFAULT_OUT = HERE / "results" / "serve.json"
LUA = HERE / "wrk" / "post.lua"
USER_CAT = ["client_id", "user_lang", "user_os"]
USER_NUM = ["user_age", "user_activity"]
ITEM_CAT = ["item_id", "item_category", "creator_id"]
ITEM_NUM = ["item_duration", "item_popularity"]
LANGS = np.array(["en", "hi", "es", "pt", "id", "ar", "fr", "de"])
OSES = np.array(["android", "ios", "web"])


def synthetic(n_users: int, n_items: int, n_rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(interactions with a label, one row per user, one row per item): each user prefers the item categories
    whose index matches its language modulo 8, so a model has a signal to learn."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({
        "client_id": [f"u{i}" for i in range(n_users)],
        "user_lang": LANGS[rng.integers(0, len(LANGS), n_users)],
        "user_os": OSES[rng.integers(0, len(OSES), n_users)],
        "user_age": rng.normal(30, 8, n_users).round(1),
        "user_activity": rng.exponential(5, n_users).round(3),
    })
    category = rng.integers(0, 200, n_items)
    items = pd.DataFrame({
        "item_id": [f"i{i}" for i in range(n_items)],
        "item_category": [f"c{c}" for c in category],
        "creator_id": [f"a{c}" for c in rng.integers(0, 50_000, n_items)],
        "item_duration": rng.exponential(30, n_items).round(2),
        "item_popularity": rng.pareto(2.0, n_items).round(4),
    })
    u = rng.integers(0, n_users, n_rows)
    i = rng.integers(0, n_items, n_rows)
    lang_index = pd.Index(LANGS).get_indexer(users["user_lang"].to_numpy()[u])
    match = (category[i] % len(LANGS)) == lang_index
    label = (rng.random(n_rows) < np.where(match, 0.6, 0.1)).astype(np.float32)
    rows = pd.concat([users.iloc[u].reset_index(drop=True), items.iloc[i].reset_index(drop=True)], axis=1)
    rows["label"] = label
    return rows, users, items


def build_bundle(
    path: Path, n_items: int, dim: int, ranker: bool, backend: str, params: dict | None, seed: int
) -> dict:
    """Train a two-tower model (and a DCN ranker) on synthetic data and export a bundle of ``n_items`` items."""
    from recstack.export import export_bundle
    from recstack.features import DenseFeat, FeaturePipeline, SparseFeat, hash_values
    from recstack.models import DCN, TwoTowerModel

    started = time.perf_counter()
    rows, users, items = synthetic(20_000, n_items, 100_000, seed)
    features = [SparseFeat("client_id", 1 << 16, 16, use_hash=True), SparseFeat("item_id", 1 << 20, 16, use_hash=True)]
    features += [SparseFeat(c, 1 << 12, 16, use_hash=True) for c in USER_CAT[1:] + ITEM_CAT[1:]]
    features += [DenseFeat(c, normalization="standard") for c in USER_NUM + ITEM_NUM]
    pipe = FeaturePipeline(features, label_columns="label").fit(rows)
    train = pipe.transform(rows)
    fc = {f.name: f for f in pipe.feature_columns}
    torch.manual_seed(seed)
    model = TwoTowerModel([fc[c] for c in USER_CAT + USER_NUM], [fc[c] for c in ITEM_CAT + ITEM_NUM],
                          embedding_dim=dim, tower_hidden_units=(128,))
    model.fit(train, epochs=1, batch_size=4096, verbose=0)
    rankers = None
    if ranker:
        cols = [fc[c] for c in USER_CAT + USER_NUM + ITEM_CAT + ITEM_NUM]
        dcn = DCN(cols, cols, cross_num=2, dnn_hidden_units=(128, 64), seed=seed)
        dcn.compile("adam", "binary_crossentropy")
        dcn.fit({c: train[c] for c in fc}, train["label"], epochs=1, batch_size=4096, verbose=0)
        rankers = {"click": dcn.eval()}
    model.eval()
    trained = time.perf_counter()
    filler = users.iloc[np.zeros(len(items), dtype=np.int64)].reset_index(drop=True)
    encoded = pipe.transform(pd.concat([filler, items], axis=1))
    export_bundle(
        path, model, pipe, encoded, item_ids=hash_values(items["item_id"], "item_id"), index_backend=backend,
        index_params=params, ranker=rankers, item_features=items if ranker else None,
    )
    done = time.perf_counter()
    return {"train_s": round(trained - started, 2), "export_s": round(done - trained, 2)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the server at {url} exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} not ready after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


TRIVIAL = textwrap.dedent("""
    import sys
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/const")
    async def const() -> dict:
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
""")


def run_wrk(url: str, bodies: Path, connections: int, duration: int, max_requests: int) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "-s", str(LUA), url, "--",
           str(bodies), str(max_requests)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    line = next((x for x in out.stdout.splitlines() if x.startswith("JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[5:])
    r["connections"] = connections
    r["req_per_s"] = round(r["requests"] / r["seconds"], 1) if r["seconds"] else 0.0
    r["errors"] = sum(r.pop(k) for k in list(r) if k.startswith("errors_"))
    return r


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20, 1)


def write_bodies(folder: Path, ranker: bool) -> dict[str, tuple[str, Path]]:
    """One JSON body per line for each case (the users and rows of the synthetic data, in turn)."""
    _, users, items = synthetic(20_000, 1000, 10, seed=1)
    user_rows = json.loads(users.head(64).to_json(orient="records"))
    item_rows = json.loads(items.head(100).to_json(orient="records"))
    cases: dict[str, tuple[str, list[dict]]] = {
        "trivial": ("/const", [{"users": [u], "k": 100} for u in user_rows]),
        "recommend_k100": ("/recommend", [{"users": [u], "k": 100} for u in user_rows]),
    }
    if ranker:
        cases["recommend_rank100"] = (
            "/recommend", [{"users": [u], "k": 100, "rank": True, "candidates": 100} for u in user_rows]
        )
        cases["predict_100rows"] = (
            "/predict", [{"rows": [{**u, **it} for it in item_rows]} for u in user_rows[:8]]
        )
    out = {}
    for name, (path, bodies) in cases.items():
        file = folder / f"{name}.jsonl"
        file.write_text("\n".join(json.dumps(b) for b in bodies) + "\n")
        out[name] = (path, file)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=48)
    parser.add_argument("--no-ranker", action="store_true", help="a bundle without the DCN ranker")
    parser.add_argument("--index-backend", default="faiss",
                        help="index of the bundle (default faiss: an ANN index, as production serves)")
    parser.add_argument("--index-params", type=json.loads, default=None,
                        help='index parameters as JSON (default with faiss: \'{"index_type": "ivf_flat"}\')')
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory: reused when it exists")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--max-requests", type=int, default=50_000, help="requests per wrk run at most")
    parser.add_argument("--repeats", type=int, default=3, help="wrk runs per case; the median run is reported")
    parser.add_argument("--batch-interval-ms", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=1, help="service worker processes (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.index_params is None and args.index_backend == "faiss":
        args.index_params = {"index_type": "ivf_flat"}
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    ranker = not args.no_ranker
    scratch = Path(tempfile.mkdtemp(prefix="recstack-bench-serve-"))
    bundle = args.bundle or scratch / "bundle"
    # the build's timings sit beside the bundle, so a run that reuses it still reports them
    sidecar = bundle.with_name(bundle.name + ".build.json")
    build: dict = {"reused": bundle.exists()}
    if not bundle.exists():
        print(f"building a bundle of {args.items} items x {args.dim} at {bundle} ...", flush=True)
        build.update(build_bundle(bundle, args.items, args.dim, ranker, args.index_backend, args.index_params,
                                  args.seed))
        build.update(items=args.items, dim=args.dim, ranker=ranker, index_backend=args.index_backend,
                     index_params=args.index_params)
        sidecar.write_text(json.dumps(build) + "\n")
        print(f"  trained in {build['train_s']} s, exported in {build['export_s']} s", flush=True)
    elif sidecar.exists():
        build.update({k: v for k, v in json.loads(sidecar.read_text()).items() if k != "reused"})
    bodies = write_bodies(scratch, ranker)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    port, trivial_port = free_port(), free_port()
    server_log = open(scratch / "server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "recstack.serve", "--name", "bench", "--path", str(bundle), "--port", str(port),
         "--batch-interval-ms", str(args.batch_interval_ms), "--workers", str(args.workers), "--log-level", "warning"],
        env=env, stdout=server_log, stderr=subprocess.STDOUT,
    )
    trivial = subprocess.Popen([sys.executable, "-c", TRIVIAL, str(trivial_port)], env=env)
    rows = []
    try:
        ready_s = wait_ready(f"http://127.0.0.1:{port}/health", server, 600)
        print(f"service ready in {ready_s:.1f} s, RSS {rss_mb(server.pid)} MB", flush=True)
        import httpx

        httpx.get(f"http://127.0.0.1:{trivial_port}/docs", timeout=30)
        for name, (path, file) in bodies.items():
            url = f"http://127.0.0.1:{trivial_port if name == 'trivial' else port}{path}"
            for c in args.connections:
                runs = [run_wrk(url, file, c, args.duration, args.max_requests) for _ in range(args.repeats)]
                r = sorted(runs, key=lambda x: x["req_per_s"])[len(runs) // 2]  # the median run by req/s
                r["case"] = name
                r["req_per_s_runs"] = [x["req_per_s"] for x in runs]
                r["errors"] = sum(x["errors"] for x in runs)
                rows.append(r)
                print(f"  {name:<18} c={c:<3} {r['req_per_s']:>8.1f} req/s  p50 {r['p50_ms']:.2f}  p95 "
                      f"{r['p95_ms']:.2f}  p99 {r['p99_ms']:.2f} ms  errors {r['errors']}", flush=True)
        rss = rss_mb(server.pid)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    except BaseException:
        server_log.flush()
        print((scratch / "server.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        stop(server)
        stop(trivial)
        server_log.close()
        shutil.rmtree(scratch, ignore_errors=True)
    batches = {}
    for line in metrics.splitlines():
        if line.startswith("recstack_batch_requests_") and ("_sum{" in line or "_count{" in line):
            key, value = line.rsplit(" ", 1)
            batches[key] = float(value)
    report = {
        "benchmark": "serve",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "cpus": usable_cpus(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "versions": {"torch": torch.__version__, "numpy": np.__version__},
        },
        "config": {
            "items": build.get("items", args.items), "dim": build.get("dim", args.dim),
            "ranker": "DCN" if build.get("ranker", ranker) else None,
            "index_backend": build.get("index_backend", args.index_backend),
            "index_params": build.get("index_params", args.index_params),
            "duration_s": args.duration, "max_requests": args.max_requests,
            "batch_interval_ms": args.batch_interval_ms, "workers": args.workers, "wrk_threads": 1,
            "repeats": args.repeats,
        },
        "bundle": build,
        "start_to_ready_s": round(ready_s, 2),
        "server_rss_mb": rss,
        "batches": batches,
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print()
    print(f"{'case':<18} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for r in rows:
        print(f"{r['case']:<18} {r['connections']:>5} {r['req_per_s']:>9.1f} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {r['errors']:>6}")
    print(f"bundle: {build}; start-to-ready {ready_s:.1f} s; server RSS {rss} MB -> {args.out}")


if __name__ == "__main__":
    main()
