"""``recstack evaluate``: a trained run's metrics on its validation rows or on other data."""

from __future__ import annotations

import argparse
from pathlib import Path

from recstack.cli.errors import UsageError

EXAMPLE = """examples:
  recstack evaluate runs/deepfm_ctr                                   # the run's validation rows
  recstack evaluate runs/deepfm_ctr --data holdout/*.parquet --json holdout.json
  recstack evaluate runs/mf_ml1m --data ../shared/data/ml-1m-lcfn/test.txt     # user/item list runs
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="run directory written by recstack train")
    parser.add_argument(
        "--data",
        nargs="+",
        metavar="PATH",
        help="evaluate on these rows instead (Parquet/CSV files or globs with the training columns; "
        "for runs on user/item lists: one 'user item item ...' file)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the metrics to this JSON file")


def run_evaluate(args: argparse.Namespace) -> int:
    from recstack.cli import rundir
    from recstack.cli.data import check_task_columns, finish_labels, pair_table, read_paths
    from recstack.cli.output import metrics_table
    from recstack.cli.session import load_run, read_run_config
    from recstack.cli.tasks import RetrievalTask

    run = rundir.require_run_dir(args.run)
    config, task, model = load_run(run)
    valid = valid_raw = None
    what = "validation rows"
    if args.data:
        stored = read_run_config(run)
        if stored.data.user_item_lists is not None:
            if len(args.data) != 1 or not Path(args.data[0]).is_file():
                raise UsageError("--data: for a run on user/item lists give one 'user item item ...' file")
            valid_raw = pair_table(Path(args.data[0]), task.data.tables.label)
            what = args.data[0]
        else:
            df, what = read_paths(args.data, stored.data.format, "--data")
            if stored.tasks is not None:
                check_task_columns(df, stored, what)
            if stored.tasks is None or stored.data.label in df.columns:
                df = finish_labels(df, stored.data, what)
            valid_raw = df
        valid = task.data.pipeline.transform(valid_raw)
    if isinstance(task, RetrievalTask):
        metrics = task.evaluate(model, valid, valid_raw)
    else:
        metrics = task.evaluate(model, valid)
    print(metrics_table(metrics, f"{config.model.name} on {what}"))
    if args.json:
        rundir.write_json(Path(args.json), {"run": str(run), "data": what, "metrics": metrics}, "metrics")
        print(f"wrote {args.json}")
    return 0
