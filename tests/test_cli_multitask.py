"""``recstack train`` on multi-task models: tasks from the config, per-task metrics, export, bad task configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cli_fixtures import data_dir
from recstack.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "multitask_two_heads.yaml"
ML100K = data_dir() / "cli_ml100k"
COMMON = ["--quiet", "--set", "trainer.threads=1", "--set", f"data.movielens_100k.path={ML100K}"]
SMALL = ["trainer.epochs=3", "trainer.batch_size=64", "trainer.lr=0.01"]


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _sets(items: list[str]) -> list[str]:
    return [x for item in items for x in ("--set", item)]


def _ratings() -> np.ndarray:
    return pd.read_csv(ML100K / "ml-100k.inter", sep="\t").iloc[:, 2].to_numpy(np.float64)


def test_two_head_config_trains_dcnv2_with_per_task_metrics(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(CONFIG), "--out", str(run), *_sets(SMALL), *COMMON]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())["validation"]
    assert set(metrics) == {"like_auc", "like_logloss", "rating_rmse", "rating_mae"}
    # the fixture plants a gender x genre rating effect; measured like AUC 0.84, rating RMSE 1.00
    assert metrics["like_auc"] > 0.7  # random: 0.5
    trivial = float(np.std(_ratings()))  # RMSE of predicting the mean rating (about 1.10)
    assert metrics["rating_rmse"] < 0.95 * trivial, (metrics, trivial)
    assert metrics["like_logloss"] < np.log(2)  # a constant 0.5 scores log 2
    assert "like_auc" in printed and "rating_rmse" in printed
    report = (run / "report.md").read_text()
    assert "| like_auc |" in report and "| rating_rmse |" in report and "DCNv2 (multitask)" in report
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert {"val_like_auc", "val_rating_rmse", "like_loss", "rating_loss"} <= set(history[-1])

    # evaluate and export: the same per-task metrics, a TorchScript model with both heads
    assert main(["evaluate", str(run), "--json", str(tmp_path / "eval.json")]) == 0
    again = json.loads((tmp_path / "eval.json").read_text())["metrics"]
    assert again == pytest.approx(metrics, abs=1e-6)
    # other rows: a file with the tasks' column and no data.label column
    from recstack.cli.data import _movielens_100k
    from recstack.config.schema import MovieLens100K

    rows, _ = _movielens_100k(MovieLens100K(path=str(ML100K)), "label")
    rows.drop(columns=["label"]).iloc[:300].to_parquet(tmp_path / "holdout.parquet")
    holdout = ["evaluate", str(run), "--data", str(tmp_path / "holdout.parquet"), "--json", str(tmp_path / "h.json")]
    assert main(holdout) == 0
    assert set(json.loads((tmp_path / "h.json").read_text())["metrics"]) == set(metrics)
    out = tmp_path / "exported"
    assert main(["export", str(run), "--out", str(out)]) == 0
    meta = json.loads(next(out.rglob("*.json")).read_text())
    assert "like" in json.dumps(meta) and "rating" in json.dumps(meta)
    assert next(out.rglob("model.pt")).is_file()


@pytest.mark.parametrize(
    "name, params",
    [
        ("MMOE", "{num_experts: 2, expert_dnn_hidden_units: [16], tower_dnn_hidden_units: [], init_std: 0.05}"),
        ("PLE", "{expert_dnn_hidden_units: [16], tower_dnn_hidden_units: [], num_levels: 1, init_std: 0.05}"),
    ],
)
def test_mmoe_and_ple_train_from_the_same_tasks(tmp_path, name, params):
    run = tmp_path / "run"
    sets = [*SMALL, "trainer.epochs=1", f"model.name={name}", f"model.params={params}"]
    assert main(["train", str(CONFIG), "--out", str(run), *_sets(sets), *COMMON]) == 0
    metrics = json.loads((run / "metrics.json").read_text())["validation"]
    assert set(metrics) == {"like_auc", "like_logloss", "rating_rmse", "rating_mae"}
    assert all(np.isfinite(v) for v in metrics.values())
    assert 0.0 <= metrics["like_auc"] <= 1.0 and metrics["rating_rmse"] < 5.0  # ratings lie in [1, 5]


def _write(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(CONFIG.read_text())
    change(raw)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _error(tmp_path: Path, capsys, change) -> str:
    path = _write(tmp_path, change)
    assert main(["train", str(path), "--out", str(tmp_path / "run"), *COMMON]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
    return err


def test_bad_task_type_is_one_line_naming_the_key(tmp_path, capsys):
    err = _error(tmp_path, capsys, lambda raw: raw["tasks"][1].update(type="ordinal"))
    assert "tasks.1.type" in err and "'binary', 'regression'" in err and "'ordinal'" in err


def test_bad_task_configs_name_their_key(tmp_path, capsys):
    err = _error(tmp_path, capsys, lambda raw: raw["tasks"][0].update(column="stars"))
    assert "tasks.0.column" in err and "'stars'" in err
    err = _error(tmp_path, capsys, lambda raw: raw.update(tasks=raw["tasks"][:1]))
    assert "tasks" in err and "two or more" in err
    err = _error(tmp_path, capsys, lambda raw: raw["tasks"][1].update(name="like"))
    assert "distinct" in err
    err = _error(tmp_path, capsys, lambda raw: raw["tasks"][1].update(threshold=3))
    assert "tasks.1" in err and "threshold" in err
    err = _error(tmp_path, capsys, lambda raw: raw["model"].update(name="DeepFM", params={}))
    assert err.endswith("remove tasks or name a multi-task model (MMOE, PLE, DCNv2...)") and "tasks:" in err
    err = _error(tmp_path, capsys, lambda raw: raw.pop("tasks"))
    assert "tasks: DCNv2 is a multi-task model" in err
    err = _error(tmp_path, capsys, lambda raw: raw["tasks"][1].update(type="binary"))
    assert "tasks.1.threshold" in err and "outside [0, 1]" in err
