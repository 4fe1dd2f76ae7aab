"""`run_demo`: from a synthetic play log to a served recommendation, one step after the other."""

from __future__ import annotations

import datetime as _dt
import json
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recstack.demo.output import prepare_output, write_report, write_summary
from recstack.demo.ranking import RankerResult, RankerStep, train_watch_time_ranker
from recstack.demo.report import baseline_line, item_lines, render_report, shell
from recstack.demo.retrieval import RetrieverResult, train_retriever
from recstack.demo.service import ServiceProcess, serve_command
from recstack.demo.short_video import USER_COLUMNS, ShortVideoData, prepare_short_video, tower_columns
from recstack.errors import ArgumentError
from recstack.export import export_bundle
from recstack.export.bundle import KIND as BUNDLE_KIND
from recstack.features import hash_values
from recstack.storage import Artifact, atomic_file, open_artifact

DEFAULT_ROWS = 100_000
DEFAULT_EPOCHS = 8
VAL_FRACTION = 0.1
STEPS = 6
SERVICE_NAME = "recstack-demo"
SERVE_AGAIN_PORT = 8000
REQUEST_FILE = "request.json"
RECALL_K = 100


class _Steps:
    """Numbered steps, each announced, its details indented, and timed; each starts with torch on ``threads``
    threads (None: as it is), set again per step since numba's parallel kernels reset the OpenMP thread count
    that torch shares with them."""

    def __init__(self, say: Callable[[str], Any], threads: int | None) -> None:
        self.say = say
        self.threads = threads
        self.number = 0
        self.seconds: dict[str, float] = {}

    def detail(self, line: str) -> None:
        self.say("      " + line)

    @contextmanager
    def step(self, title: str, key: str) -> Iterator[None]:
        self.number += 1
        self.say(f"[{self.number}/{STEPS}] {title}")
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        started = time.perf_counter()
        yield
        self.seconds[key] = time.perf_counter() - started
        self.detail(f"({self.seconds[key]:.1f} s)")


def _check_count(name: str, value: Any, least: int) -> int:  # noqa: ANN401
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ArgumentError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def run_demo(
    rows: int = DEFAULT_ROWS,
    out: str | None = None,
    serve: bool = True,
    seed: int = 0,
    *,
    users: int | None = None,
    items: int | None = None,
    epochs: int = DEFAULT_EPOCHS,
    k: int = 10,
    threads: int | None = 1,
    ranker_step: RankerStep = train_watch_time_ranker,
    say: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Generate a synthetic short-video log of ``rows`` plays, fit the production V1 feature pipeline, train a two-tower
    retriever and a ranker (``ranker_step``; by default the two-head watch / watch-time DCNv2), print their metrics
    beside popularity and random, export the bundle to ``out``/bundle and, with ``serve``, start the HTTP service, ask
    it for ``k`` items for two users and stop it. ``out`` defaults to a new temporary directory; a non-empty directory
    that no demo wrote is refused (`OverwriteError`). ``users`` / ``items`` default to ``rows`` / 40 and ``rows`` / 15.
    ``threads`` is torch's thread count while the demo runs (restored after; None keeps torch's): its small batches
    train several times faster on one thread than on two when other processes share the cores.

    Returns the summary also written to ``out``/demo.json: data sizes, metrics and baselines, paths, the served items
    and the request latency, seconds per step."""
    rows = _check_count("rows", rows, 2_000)
    users = _check_count("users", users if users is not None else max(100, rows // 40), 10)
    items = _check_count("items", items if items is not None else max(300, rows // 15), 10)
    epochs = _check_count("epochs", epochs, 1)
    k = _check_count("k", k, 1)
    seed = _check_count("seed", seed, 0)
    if threads is not None:
        threads = _check_count("threads", threads, 1)
    root = prepare_output(out)
    say(f"recstack demo: writing to {root}")
    steps = _Steps(say, threads)
    summary: dict[str, Any] = {"status": "running", "out": str(root), "seed": seed}
    started = time.perf_counter()
    torch_threads = torch.get_num_threads()
    try:
        torch.manual_seed(seed)
        with steps.step(f"synthetic short-video log ({rows:,} plays) and the production V1 feature pipeline", "data"):
            data = prepare_short_video(rows, users, items, seed=seed, val_fraction=VAL_FRACTION)
            summary["data"] = _describe_data(data, steps)
        with steps.step(f"two-tower retriever: {epochs} epochs of in-batch softmax on the positive plays", "retriever"):
            retriever = train_retriever(data, epochs=epochs, seed=seed, ks=(20, RECALL_K), say=steps.detail)
            summary["retrieval"] = _describe_retrieval(retriever, epochs, steps)
        with steps.step("ranker: re-scores the retrieved items", "ranker"):
            ranker = ranker_step(data, seed)
            summary["ranking"] = _describe_ranking(ranker, steps)
        with steps.step(
            "export: the deployable bundle (pipeline, user tower, item embeddings, index, ranker)", "export"
        ):
            bundle = _export(root / "bundle", data, retriever, ranker)
            summary["bundle"] = str(bundle.root)
            summary["bundle_version"] = bundle.files.name
            files = sorted(p.name for p in bundle.files.iterdir())
            steps.detail(
                f"{bundle.root} (version {bundle.files.name}, tasks {bundle.meta['task_names']}): {', '.join(files)}"
            )
        if serve:
            with steps.step("serve: python -m recstack.serve, then POST /recommend for two users", "serve"):
                summary["service"] = _serve_and_ask(root, data, retriever, ranker, k, steps)
        else:
            steps.number += 1
            say(f"[{steps.number}/{STEPS}] serve: skipped (serve=False)")
            summary["service"] = None
        summary["serve_command"] = shell(serve_command(bundle.root, SERVICE_NAME, SERVE_AGAIN_PORT))
        with steps.step("report", "report"):
            summary["seconds"] = {**steps.seconds, "total": time.perf_counter() - started}
            summary["report"] = str(root / "report.md")
            summary["status"] = "done"
            summary["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            write_report(root, render_report(summary))
            write_summary(root, summary)
            steps.detail(f"{root / 'report.md'} and {root / 'demo.json'}")
    except BaseException as exc:
        summary["status"] = f"failed: {type(exc).__name__}: {exc}"[:2000]
        write_summary(root, summary)
        raise
    finally:
        torch.set_num_threads(torch_threads)
    say(f"bundle: {summary['bundle']}")
    say(f"report: {summary['report']}")
    say(f"serve it again: {summary['serve_command']}")
    return summary


def _describe_data(data: ShortVideoData, steps: _Steps) -> dict[str, Any]:
    user_cols, item_cols = tower_columns(data.pipeline)
    positive_rate = float(data.frame["label"].mean())
    described = {
        "rows": len(data.frame),
        "users": int(data.frame["client_id"].nunique()),
        "items": int(data.frame["item_id"].nunique()),
        "catalogue": len(data.items),
        "val_fraction": VAL_FRACTION,
        "features": len(data.pipeline.feature_columns),
        "positive_rate": positive_rate,
    }
    steps.detail(
        f"{described['rows']:,} plays of {described['users']:,} users on {described['items']:,} items; positive "
        f"(watched > 85% or > 60 s) {positive_rate:.1%}"
    )
    steps.detail(
        f"pipeline fitted on the first {1 - VAL_FRACTION:.0%} by time: {described['features']} features "
        f"({len(user_cols)} for the user tower, {len(item_cols)} for the item tower)"
    )
    return described


def _describe_retrieval(result: RetrieverResult, epochs: int, steps: _Steps) -> dict[str, Any]:
    steps.detail(f"production metric block (in-batch, last epoch): {result.in_batch!r}")
    full = result.full_corpus
    steps.detail(f"full corpus, {len(result.validation.users):,} validation users, their training positives excluded:")
    for metric in (f"recall@{RECALL_K}", "recall@20"):
        shown = {name: values[metric] for name, values in full.items()}
        steps.detail("  " + baseline_line(metric.replace("recall", "Recall"), shown))
    return {
        "epochs": epochs,
        "positives": result.positives,
        "in_batch": result.in_batch,
        "full_corpus": full,
        "validation_users": len(result.validation.users),
    }


def _describe_ranking(result: RankerResult, steps: _Steps) -> dict[str, Any]:
    steps.detail(result.description)
    models = result.ranker if isinstance(result.ranker, Mapping) else {}
    for task, auc in result.auc.items():
        name = type(models[task]).__name__ if task in models else type(result.ranker).__name__
        values = {name: auc, "popularity": result.popularity_auc[task], "random": result.random_auc}
        steps.detail("  " + baseline_line(f"{task} AUC", values))
    for task, rmse in result.rmse.items():
        name = type(models[task]).__name__ if task in models else type(result.ranker).__name__
        values = {name: rmse, "training mean": result.mean_rmse[task]}
        steps.detail("  " + baseline_line(f"{task} RMSE (log1p)", values))
    if result.blend_weights is not None and result.blend_auc is not None:
        terms = " + ".join(f"{w:g} x probit({t})" for t, w in result.blend_weights.items())
        steps.detail(f"  served ranking score: {terms}; its watch AUC {result.blend_auc:.4f}")
    return {
        "description": result.description,
        "auc": result.auc,
        "popularity_auc": result.popularity_auc,
        "random_auc": result.random_auc,
        "rmse": result.rmse,
        "mean_rmse": result.mean_rmse,
        "blend_weights": result.blend_weights,
        "blend_auc": result.blend_auc,
    }


def _export(path: Path, data: ShortVideoData, retriever: RetrieverResult, ranker: RankerResult) -> Artifact:
    metrics = {f"{name}_{k}": v for name, vals in retriever.full_corpus.items() for k, v in vals.items()}
    metrics.update({f"{task}_auc": auc for task, auc in ranker.auc.items()})
    metrics.update({f"{task}_rmse": rmse for task, rmse in ranker.rmse.items()})
    export_bundle(
        path,
        retriever.model,
        data.pipeline,
        data.item_batch,
        item_ids=data.item_ids,
        index_backend="exact",
        ranker=ranker.ranker,
        task_names=ranker.task_names,
        item_features=data.item_side(ranker.feature_names),
        metrics=metrics,
    )
    return open_artifact(path, BUNDLE_KIND)


def _serve_and_ask(
    root: Path, data: ShortVideoData, retriever: RetrieverResult, ranker: RankerResult, k: int, steps: _Steps
) -> dict[str, Any]:
    users = retriever.validation.users.head(2)
    columns = [c for c in USER_COLUMNS if c in users.columns]
    watched = [
        np.unique(hash_values(data.train_frame.loc[data.train_frame["client_id"] == user, "item_id"], "item_id"))
        for user in users["client_id"]
    ]
    candidates = max(k, 100)
    body = {
        "users": json.loads(users[columns].to_json(orient="records")),
        "k": k,
        "exclude": [w.tolist() for w in watched],
        "rank": True,
        "candidates": candidates,
    }
    if ranker.blend_weights is not None:
        body["blend"] = {"weights": ranker.blend_weights, "transform": "probit"}
    request_path = root / REQUEST_FILE
    _write_json(request_path, body)
    with ServiceProcess(root / "bundle", root / "serve.log", name=SERVICE_NAME) as service:
        steps.detail(f"started pid {service.proc.pid} on {service.url} (log: {service.log_path})")
        ready = service.wait_ready()
        steps.detail(f"/health answered 200 after {ready:.1f} s")
        answer, latency = service.post("/recommend", body)
        _, repeat = service.post("/recommend", body)
        results = answer["results"]
        for user, result in zip(users["client_id"], results):
            steps.detail(f"user {user}: top {len(result['items'])} by the ranker, item id (score):")
            for line in item_lines(result["items"], result["scores"]):
                steps.detail("  " + line)
        steps.detail(
            f"POST /recommend latency {latency * 1000:.1f} ms (again: {repeat * 1000:.1f} ms), "
            f"bundle {answer['bundle']}"
        )
    status = service.proc.returncode
    clean = status in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM once it has shut down gracefully
    steps.detail("service stopped: graceful shutdown on SIGTERM" if clean else f"service stopped: exit status {status}")
    return {
        "url": service.url,
        "users": users["client_id"].tolist(),
        "k": k,
        "candidates": candidates,
        "items": [r["items"] for r in results],
        "scores": [r["scores"] for r in results],
        "latency_ms": latency * 1000,
        "repeat_latency_ms": repeat * 1000,
        "request": str(request_path),
        "exit_status": service.proc.returncode,
    }


def _write_json(path: Path, value: Any) -> None:  # noqa: ANN401
    with atomic_file(path, "demo request") as tmp:
        tmp.write_text(json.dumps(value) + "\n", encoding="utf-8")
