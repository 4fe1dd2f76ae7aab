"""``recstack train``: a config in, a run directory out (or an earlier run continued with ``--resume``)."""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Any

from recstack.cli.errors import UsageError
from recstack.config import ConfigError, RunConfig, apply_overrides, load_config, read_yaml, validate

# What a resumed run may change; anything else would make the continued run a different experiment.
RESUMABLE_CHANGES = ("trainer.epochs", "trainer.device", "trainer.threads", "output.dir", "output.name")

EXAMPLE = """examples:
  recstack train configs/deepfm_ctr.yaml
  recstack train configs/deepfm_ctr.yaml --set trainer.epochs=5 --set data.synthetic.rows=5000 --out runs/small
  recstack train --resume runs/deepfm_ctr --set trainer.epochs=4      # continue to epoch 4
  recstack train configs/deepfm_ctr.yaml --strategy ray --num-workers 2  # on Ray (RAY_ADDRESS: a cluster)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML config (see configs/); optional with --resume")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config key, typed by the schema (repeatable), e.g. trainer.epochs=5",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue this run from its last checkpoint (raise trainer.epochs to train further)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="run directory to create (must not exist or be empty; default: "
        "output.dir/output.name, or a fresh NAME-2... when taken)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    parser.add_argument(
        "--strategy",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: data-parallel Ray Train workers (needs the distributed extra; the cluster "
        "at RAY_ADDRESS, else a local Ray instance)",
    )
    parser.add_argument(
        "--num-workers",
        type=int,
        default=2,
        metavar="N",
        help="Ray Train workers with --strategy ray (default 2); trainer.batch_size is per worker",
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:  # noqa: ANN401
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _resume_config(args: argparse.Namespace, run: Path) -> RunConfig:
    """The stored config of ``run`` with ``--set`` applied; a given CONFIG must match it apart from
    `RESUMABLE_CHANGES`."""
    from recstack.cli import rundir
    from recstack.cli.session import read_run_config

    stored = read_run_config(run)
    if args.config:
        wanted = load_config(args.config, args.overrides)
        source = args.config
    else:
        wanted = validate(apply_overrides(read_yaml(run / rundir.CONFIG), args.overrides), str(run / rundir.CONFIG))
        source = "--set"
    before, after = _flatten(stored.model_dump(mode="json")), _flatten(wanted.model_dump(mode="json"))
    changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    fixed = [k for k in changed if k not in RESUMABLE_CHANGES and not k.startswith("output.")]
    if fixed:
        key = fixed[0]
        raise ConfigError(
            f"{source}: {key} is {after.get(key)!r} but run {run} was trained with {before.get(key)!r}; a resumed "
            f"run may change only {', '.join(RESUMABLE_CHANGES)} (train a new run for other changes)"
        )
    return wanted


def _strategy(args: argparse.Namespace) -> contextlib.AbstractContextManager[None]:
    """The block in which the task's Trainer picks up ``--strategy`` / ``--num-workers``."""
    if args.strategy == "local":
        return contextlib.nullcontext()
    from recstack.training.distributed import require_ray
    from recstack.training.trainer import default_strategy

    require_ray()
    print(f"strategy: ray, {args.num_workers} worker(s)")
    return default_strategy("ray", num_workers=args.num_workers)


def run_train(args: argparse.Namespace) -> int:
    from recstack.cli import rundir
    from recstack.cli.output import metrics_table, write_report
    from recstack.cli.plots import PLOT_EXTRA_HINT, plot_curves
    from recstack.cli.session import apply_runtime, prepare
    from recstack.cli.tasks import RetrievalTask
    from recstack.errors import LogKeyError
    from recstack.features import FeaturePipeline
    from recstack.training import Callback, EarlyStopping, ModelCheckpoint

    started = time.perf_counter()
    if args.strategy == "ray" and args.num_workers < 1:
        raise UsageError(f"--num-workers must be at least 1, got {args.num_workers}")
    resume = args.resume is not None
    if resume:
        if args.out:
            raise UsageError("--out and --resume cannot be combined: a resumed run continues in its own directory")
        run = rundir.require_run_dir(args.resume, "--resume")
        config = _resume_config(args, run)
        found = rundir.last_checkpoint(run)
        if found is None:
            raise UsageError(f"--resume {run}: no checkpoint under {run / rundir.CHECKPOINTS} to continue from")
        checkpoint, done = found
        if config.trainer.epochs <= done:
            raise ConfigError(
                f"trainer.epochs: run {run} already has {done} epoch(s); to train further set a larger value, e.g. "
                f"--set trainer.epochs={done + 1}"
            )
        note = f"resuming {run} from {checkpoint.name} (epoch {done}) up to epoch {config.trainer.epochs}"
    else:
        if not args.config:
            raise UsageError("give a CONFIG.yaml to train (or --resume RUN_DIR to continue a run)")
        config = load_config(args.config, args.overrides)
        checkpoint, done = None, 0
        if args.out:
            rundir.check_out_dir(args.out)
    apply_runtime(config)

    # the data and the pipeline are ready before a new run directory is made: a bad column leaves nothing behind
    pipeline = FeaturePipeline.load(run / rundir.PIPELINE) if resume else None
    task = prepare(config, pipeline)
    if not resume:
        run, note = rundir.create_run_dir(config, args.config, args.out)
    print(f"run directory: {run}" + (f" ({note})" if note else ""))
    data = task.data
    print(
        f"data: {data.tables.description}; {len(data.tables.train):,} training and {len(data.tables.valid):,} "
        f"validation rows; {len(data.pipeline.feature_columns)} features"
    )
    if not resume:
        data.pipeline.save(run / rundir.PIPELINE)
    rundir.write_config(run, config)
    model = task.build()
    if resume and not rundir.restore_random_state(model, run, done):
        print(f"note: no random state saved with {checkpoint.name}; the resumed run draws other random numbers")

    history = rundir.HistoryRecorder(run, rundir.read_history(run, done) if resume else [])
    callbacks: list[Callback] = [
        history,
        ModelCheckpoint(
            str(run / rundir.CHECKPOINTS / rundir.CHECKPOINT_PATTERN), period=config.trainer.callbacks.checkpoint_every
        ),
    ]
    callbacks.append(rundir.RandomStateSaver(run, config.trainer.callbacks.checkpoint_every))
    stop = config.trainer.callbacks.early_stopping
    if stop is not None:
        callbacks.append(
            EarlyStopping(
                monitor=stop.monitor,
                mode=stop.mode,
                patience=stop.patience,
                restore_best_weights=stop.restore_best_weights,
            )
        )
    (run / rundir.CHECKPOINTS).mkdir(exist_ok=True)
    print(f"model: {config.model.name} ({task.kind}); training {config.trainer.epochs - done} epoch(s)")
    try:
        with _strategy(args):
            task.fit(model, callbacks, done, checkpoint, verbose=0 if args.quiet else 1)
    except LogKeyError as exc:
        raise ConfigError(f"trainer.callbacks: {exc}") from None
    if args.strategy == "ray":  # the callbacks ran on the first Ray worker, which wrote history.json
        history.records = rundir.read_history(run)
    rundir.save_weights(model, run)

    metrics = task.evaluate(model)
    embeddings = task.item_embeddings(model) if isinstance(task, RetrievalTask) else None
    if embeddings is not None:
        from recstack.export import write_embeddings

        write_embeddings(embeddings[0], embeddings[1], run / rundir.ITEM_EMBEDDINGS)
    try:
        curves = plot_curves(history.records, run / rundir.CURVES)
        curves_note = None
    except ModuleNotFoundError:
        curves = []
        curves_note = f"training curves need matplotlib, which is not installed: {PLOT_EXTRA_HINT} (no PNGs written)"
        print(f"note: {curves_note}")
    seconds = time.perf_counter() - started
    last = history.records[-1] if history.records else {}
    payload = {
        "model": config.model.name,
        "epochs": int(last.get("epoch", done)),
        "validation": metrics,
        "last_epoch": {k: v for k, v in last.items() if k != "epoch"},
        "seconds": seconds,
    }
    rundir.write_json(run / rundir.METRICS, payload, "metrics")
    write_report(run, config, task, history.records, metrics, curves, curves_note, seconds)
    print(metrics_table(metrics, f"validation metrics ({config.model.name}, epoch {payload['epochs']})"))
    print(f"done in {seconds:.1f}s: {run} (report.md, metrics.json, history.json, curves/, checkpoints/)")
    return 0
