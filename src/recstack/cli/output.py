"""What the commands print and the run's ``report.md``."""

from __future__ import annotations

from pathlib import Path

from recstack.cli import rundir
from recstack.cli.tasks import Task
from recstack.config import RunConfig


def metrics_table(metrics: dict[str, float], title: str) -> str:
    """A small aligned two-column table."""
    width = max([len("metric"), *(len(k) for k in metrics)])
    lines = [title, f"  {'metric':<{width}}  value", f"  {'-' * width}  ------"]
    lines += [f"  {k:<{width}}  {v:.4f}" for k, v in metrics.items()]
    return "\n".join(lines)


def write_report(
    run: Path,
    config: RunConfig,
    task: Task,
    records: list[dict[str, float]],
    metrics: dict[str, float],
    curves: list[Path],
    curves_note: str | None,
    seconds: float,
) -> None:
    """A short markdown summary of the run: data, model, training, final metrics, curves and files."""
    data = task.data
    params = ", ".join(f"{k}={v!r}" for k, v in config.model.params.items()) or "defaults"
    t = config.trainer
    lines = [
        f"# Run {run.name}",
        "",
        f"- data: {data.tables.description}; {len(data.tables.train):,} training and {len(data.tables.valid):,} "
        f"validation rows",
        f"- features: {len(data.pipeline.feature_columns)} columns (pipeline in `{rundir.PIPELINE}/`)",
        f"- model: {config.model.name} ({task.kind}), parameters: {params}",
        f"- training: {len(records)} epoch(s) recorded, batch {t.batch_size}, {t.optimizer} "
        f"(lr {t.lr if t.lr is not None else 'default'}), device {t.device}, seed {t.seed}; {seconds:.1f}s",
        "",
        "## Validation metrics",
        "",
        "| metric | value |",
        "| --- | --- |",
        *(f"| {k} | {v:.4f} |" for k, v in metrics.items()),
        "",
        "## Per epoch",
        "",
    ]
    keys = [k for k in (records[-1] if records else {}) if k != "epoch"]
    if records:
        lines += ["| epoch | " + " | ".join(keys) + " |", "| --- |" + " --- |" * len(keys)]
        for record in records:
            cells = [f"{record[k]:.4f}" if isinstance(record.get(k), float) else "" for k in keys]
            lines.append(f"| {int(record['epoch'])} | " + " | ".join(cells) + " |")
    lines += ["", "## Curves", ""]
    if curves:
        lines += [f"![{p.stem}]({rundir.CURVES}/{p.name})" for p in curves]
    else:
        lines.append(curves_note or "no curves")
    lines += [
        "",
        "## Files",
        "",
        f"`{rundir.CONFIG}` resolved config · `{rundir.PIPELINE}/` fitted pipeline · `{rundir.CHECKPOINTS}/` resumable "
        f"checkpoints · `{rundir.MODEL}` final weights · `{rundir.HISTORY}` · `{rundir.METRICS}`",
        "",
        f"Next: `recstack evaluate {run}`, `recstack export {run} --out BUNDLE`.",
        "",
    ]
    rundir.write_text(run / rundir.REPORT, "\n".join(lines), "report")
