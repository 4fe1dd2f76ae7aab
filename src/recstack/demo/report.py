"""The demo's printed lines and its report file, made from the summary `run_demo` returns."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any


def baseline_line(metric: str, values: Mapping[str, float]) -> str:
    """``metric  two-tower 0.1234 | popularity 0.0567 | random 0.0123``: a model's value, then its baselines'."""
    return f"{metric:<11} " + " | ".join(f"{name.replace('_', '-')} {value:.4f}" for name, value in values.items())


def item_lines(items: Sequence[int], scores: Sequence[float | None], per_line: int = 5) -> list[str]:
    """The served items with their scores, ``per_line`` to a line."""
    shown = [f"{item} ({score:.3f})" if score is not None else str(item) for item, score in zip(items, scores)]
    return [", ".join(shown[i : i + per_line]) for i in range(0, len(shown), per_line)]


def shell(command: Sequence[str]) -> str:
    """``command`` as one line a POSIX shell runs as is."""
    return " ".join(shlex.quote(str(part)) for part in command)


def render_report(summary: Mapping[str, Any]) -> str:
    """The Markdown report of a demo run: data, metrics beside baselines, the served answer, timings, commands."""
    data, retrieval, ranking = summary["data"], summary["retrieval"], summary["ranking"]
    lines = [
        "# recstack demo report",
        "",
        f"Synthetic short-video log: {data['rows']:,} plays, {data['users']:,} users, {data['items']:,} items "
        f"(seed {summary['seed']}); the most recent {data['val_fraction']:.0%} of plays is the validation split.",
        f"Feature pipeline: {data['features']} production V1 features; positive plays (the watch label) "
        f"{data['positive_rate']:.1%}.",
        "",
        "## Retrieval: two-tower model",
        "",
        f"In-batch metric block (last of {retrieval['epochs']} epochs):",
        "",
        "```",
        repr(retrieval["in_batch"]),
        "```",
        "",
        f"Full corpus ({data['catalogue']:,} items, {retrieval['validation_users']:,} validation users, training "
        "positives excluded):",
        "",
        "| metric | two-tower | popularity | random |",
        "| --- | --- | --- | --- |",
    ]
    full = retrieval["full_corpus"]
    for metric in full["two_tower"]:
        if metric.startswith(("recall", "ndcg")):
            lines.append(
                f"| {metric} | {full['two_tower'][metric]:.4f} | {full['popularity'][metric]:.4f} | "
                f"{full['random'][metric]:.4f} |"
            )
    lines += ["", "## Ranking", "", "| task | AUC | popularity AUC | random AUC |", "| --- | --- | --- | --- |"]
    for task, auc in ranking["auc"].items():
        lines.append(f"| {task} | {auc:.4f} | {ranking['popularity_auc'][task]:.4f} | {ranking['random_auc']:.4f} |")
    if ranking.get("rmse"):
        lines += ["", "| task | RMSE (log1p) | predicting the training mean |", "| --- | --- | --- |"]
        for task, rmse in ranking["rmse"].items():
            lines.append(f"| {task} | {rmse:.4f} | {ranking['mean_rmse'][task]:.4f} |")
    if ranking.get("blend_weights") and ranking.get("blend_auc") is not None:
        terms = " + ".join(f"{w:g} x probit({t})" for t, w in ranking["blend_weights"].items())
        lines += ["", f"Served ranking score: {terms} (`recstack.blend`); its watch AUC {ranking['blend_auc']:.4f}."]
    lines += ["", "## Bundle", "", f"`{summary['bundle']}` (version {summary['bundle_version']})", ""]
    service = summary.get("service")
    if service:
        lines += [
            "## Served answer",
            "",
            f"`POST /recommend` (rank with the bundle's ranker, k={service['k']}, {service['candidates']} "
            f"candidates, training plays excluded) took {service['latency_ms']:.1f} ms "
            f"(again: {service['repeat_latency_ms']:.1f} ms). The request body is `{service['request']}`.",
            "",
        ]
        for user, items, scores in zip(service["users"], service["items"], service["scores"]):
            lines.append(f"- `{user}`: " + ", ".join(item_lines(items, scores, per_line=len(items))))
        lines.append("")
    lines += ["## Time per step", "", "| step | seconds |", "| --- | --- |"]
    lines += [f"| {step} | {seconds:.1f} |" for step, seconds in summary["seconds"].items()]
    lines += [
        "",
        "## Serve the bundle again",
        "",
        "```",
        summary["serve_command"],
        "```",
    ]
    if service:
        lines += [
            "",
            "and ask it for the same users:",
            "",
            "```",
            f"curl -s -X POST http://127.0.0.1:8000/recommend -H 'content-type: application/json' "
            f"-d @{shlex.quote(service['request'])}",
            "```",
        ]
    return "\n".join(lines) + "\n"
