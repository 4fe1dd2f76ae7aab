"""``recstack export``: a trained run as a deployable artifact."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = """examples:
  recstack export runs/short_video_two_tower --out bundles/v1 --backend faiss   # a serving bundle
  recstack export runs/deepfm_ctr --out export/deepfm                          # pipeline + TorchScript model
  recstack serve --name feed --path bundles/v1

two-tower runs give a serving bundle (user tower, item embeddings, ANN index, pipeline) for recstack serve;
ranking runs give the fitted pipeline and the TorchScript model; matrix-factorization runs give user and item
embeddings (Parquet), the pipeline and an index.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="run directory written by recstack train")
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="where to write (new, empty, or an earlier export of the same kind, which is replaced "
        "only once the new one is complete)",
    )
    parser.add_argument(
        "--backend", default="exact", help="index backend for retrieval runs: exact (default), faiss, hnswlib, scann"
    )


def run_export(args: argparse.Namespace) -> int:
    from recstack.cli import rundir
    from recstack.cli.session import load_run

    run = rundir.require_run_dir(args.run)
    _, task, model = load_run(run)
    print(task.export(model, Path(args.out), args.backend))
    return 0
