"""The rows a config's ``data`` section names, read and split into training and validation tables."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recstack.config import ConfigError, RunConfig
from recstack.config.schema import DataConfig, MovieLens100K, SplitConfig, SyntheticData
from recstack.data.implicit import pairs, read_user_item_lists
from recstack.data.movielens import recbole_ml100k_folder
from recstack.errors import SchemaError

ML100K_FILES = ("ml-100k.inter", "ml-100k.user", "ml-100k.item")
RECBOLE_HINT = "pip install --no-deps recbole"


@dataclass
class Tables:
    """Training and validation rows (raw columns plus the float32 label) and a one-line description."""

    train: pd.DataFrame
    valid: pd.DataFrame
    label: str
    description: str


def load_tables(config: RunConfig) -> Tables:
    """Read the configured source and split it; errors name the config key or the file at fault."""
    data = config.data
    if data.user_item_lists is not None:
        train, valid = _user_item_lists(Path(data.user_item_lists.path), data.label)
        return Tables(train, valid, data.label, f"user/item lists {data.user_item_lists.path}")
    if data.synthetic is not None:
        df, what = _synthetic(data.synthetic, data.label)
    elif data.movielens_100k is not None:
        df, what = _movielens_100k(data.movielens_100k, data.label)
    else:
        df, what = read_paths(data.paths or [], data.format, "data.paths")
    if config.tasks is None or data.label in df.columns:
        df = finish_labels(df, data, what)
    if config.tasks is not None:
        check_task_columns(df, config, what)
    train, valid = split_rows(df, data.split or SplitConfig())
    return Tables(train, valid, data.label, what)


def finish_labels(df: pd.DataFrame, data: DataConfig, what: str) -> pd.DataFrame:
    """``df`` with its label column checked (present, numeric, finite) as float32, thresholded when configured."""
    if data.label not in df.columns:
        raise ConfigError(
            f"data.label: column {data.label!r} is not in {what}; columns: {_columns(df)} (set data.label)"
        )
    values = pd.to_numeric(df[data.label], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SchemaError(
            f"{what}: label column {data.label!r} holds {int(bad.sum())} missing or non-numeric value(s) (first at row "
            f"{row}: {df[data.label].iloc[row]!r}); labels must be numbers"
        )
    if data.label_threshold is not None:
        values = (values >= data.label_threshold).astype(np.float64)
    df = df.copy()
    df[data.label] = values.astype(np.float32)
    return df


def check_task_columns(df: pd.DataFrame, config: RunConfig, what: str) -> None:
    """`ConfigError` naming ``tasks.N.column`` for a task whose label column is not in ``df``; `SchemaError` for
    one holding missing or non-numeric values."""
    for i, task in enumerate(config.tasks or []):
        if task.column not in df.columns:
            raise ConfigError(
                f"tasks.{i}.column: column {task.column!r} (task {task.name!r}) is not in {what}; columns: "
                f"{_columns(df)}"
            )
        values = pd.to_numeric(df[task.column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise SchemaError(
                f"{what}: label column {task.column!r} of task {task.name!r} holds {int(bad.sum())} missing or "
                f"non-numeric value(s) (first at row {row}: {df[task.column].iloc[row]!r}); labels must be numbers"
            )


def _columns(df: pd.DataFrame, limit: int = 12) -> str:
    names = [str(c) for c in df.columns]
    return ", ".join(names[:limit]) + (f" ... ({len(names)} in all)" if len(names) > limit else "")


def read_paths(patterns: list[str], fmt: str, where: str) -> tuple[pd.DataFrame, str]:
    """Rows of every Parquet / CSV file the patterns match, in sorted order per pattern."""
    files: list[Path] = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matched:
            raise ConfigError(f"{where}: {pattern!r} matches no file (paths are relative to the current directory)")
        for name in matched:
            path = Path(name)
            if not path.is_file():
                raise ConfigError(f"{where}: {path} is not a file (give Parquet or CSV files or glob patterns)")
            files.append(path)
    frames = []
    for path in files:
        kind = fmt if fmt != "auto" else ("csv" if path.suffix.lower() in (".csv", ".tsv", ".txt") else "parquet")
        try:
            frames.append(pd.read_csv(path) if kind == "csv" else pd.read_parquet(path))
        except Exception as exc:  # noqa: BLE001  (pandas / pyarrow raise many kinds for an unreadable file)
            raise SchemaError(f"{path}: cannot be read as {kind}: {type(exc).__name__}: {exc}") from None
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    what = str(files[0]) if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
    return df, what


def _synthetic(spec: SyntheticData, label: str) -> tuple[pd.DataFrame, str]:
    from recstack.data.synthetic import make_ctr_dataset, make_short_video_dataset, short_video_label

    if spec.generator == "ctr":
        df = make_ctr_dataset(n_rows=spec.rows, seed=spec.seed, n_dense=spec.n_dense, n_sparse=spec.n_sparse)
        if label != "label":
            df = df.rename(columns={"label": label})
        return df, f"synthetic ctr data ({spec.rows:,} rows, seed {spec.seed})"
    users = spec.users or max(200, spec.rows // 40)
    items = spec.items or max(500, spec.rows // 15)
    df = make_short_video_dataset(n_users=users, n_items=items, n_rows=spec.rows, seed=spec.seed)
    df[label] = short_video_label(df)
    return df, f"synthetic short-video plays ({spec.rows:,} rows, {users:,} users, {items:,} items, seed {spec.seed})"


def find_ml100k() -> Path:
    """The MovieLens-100K folder inside the installed ``recbole`` package (which is not imported)."""
    folder = recbole_ml100k_folder()
    if folder is None:
        raise ConfigError(
            f"MovieLens-100K is read from the recbole wheel, which is not installed: {RECBOLE_HINT}, or set "
            "data.movielens_100k.path to a folder holding ml-100k.inter, ml-100k.user and ml-100k.item"
        )
    return folder


def _read_atomic(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df.columns = [c.split(":", 1)[0] for c in df.columns]
    return df


def _movielens_100k(spec: MovieLens100K, label: str) -> tuple[pd.DataFrame, str]:
    """One row per rating: user and item attributes as strings, genres space-separated, label rating >= threshold,
    and the rating itself (float32)."""
    folder = Path(spec.path) if spec.path is not None else find_ml100k()
    missing = [name for name in ML100K_FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(
            f"data.movielens_100k.path: {folder} lacks {missing} (RecBole atomic files; {RECBOLE_HINT} provides them)"
        )
    inter, user, item = (_read_atomic(folder / name) for name in ML100K_FILES)
    for frame, name, needed in (
        (inter, ML100K_FILES[0], ("user_id", "item_id", "rating")),
        (user, ML100K_FILES[1], ("user_id",)),
        (item, ML100K_FILES[2], ("item_id",)),
    ):
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            raise SchemaError(f"{folder / name}: missing column(s) {absent}; found {list(frame.columns)}")
    item = item.rename(columns={"class": "genres"})
    df = inter.merge(user, on="user_id", how="left", validate="many_to_one")
    df = df.merge(item, on="item_id", how="left", validate="many_to_one", suffixes=("", "_item"))
    if "genres" in df.columns:
        df["genres"] = df["genres"].fillna("")
    rating = pd.to_numeric(df["rating"], errors="coerce")
    if rating.isna().any():
        raise SchemaError(f"{folder / ML100K_FILES[0]}: rating holds non-numeric values")
    df[label] = (rating >= spec.rating_threshold).astype(np.float32)
    if label != "rating":
        df["rating"] = rating.astype(np.float32)  # a regression label for multi-task models
    df = df.drop(columns=["timestamp"], errors="ignore").reset_index(drop=True)
    return df, f"MovieLens-100K from {folder} ({len(df):,} ratings)"


def _user_item_lists(folder: Path, label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, valid) pair tables ``user_id, item_id, label`` from train.txt and valid.txt in ``folder``."""
    missing = [n for n in ("train.txt", "valid.txt") if not (folder / n).is_file()]
    if missing:
        raise ConfigError(
            f"data.user_item_lists.path: {folder} lacks {missing} (expected train.txt and valid.txt of 'user item "
            "item ...' lines)"
        )
    return pair_table(folder / "train.txt", label), pair_table(folder / "valid.txt", label)


def pair_table(path: Path, label: str) -> pd.DataFrame:
    """The (user, item) pairs of a ``user item item ...`` file as a table with a positive label."""
    users, items = pairs(read_user_item_lists(path))
    return pd.DataFrame({"user_id": users, "item_id": items, label: np.ones(len(users), dtype=np.float32)})


def split_rows(df: pd.DataFrame, split: SplitConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) rows: a random fraction, the last rows, or the latest rows by ``time_column``."""
    n = len(df)
    n_valid = int(round(n * split.validation))
    if n_valid < 1 or n_valid >= n:
        raise ConfigError(
            f"data.split.validation: {split.validation} of {n} rows leaves {n - n_valid} training and {n_valid} "
            "validation rows; both need at least one (use more rows or another fraction)"
        )
    if split.method == "random":
        order = np.random.default_rng(split.seed).permutation(n)
    elif split.method == "last":
        order = np.arange(n)
    else:
        if split.time_column not in df.columns:
            raise ConfigError(
                f"data.split.time_column: column {split.time_column!r} is not in the data; columns: {_columns(df)}"
            )
        order = np.argsort(df[split.time_column].to_numpy(), kind="stable")
    train_rows, valid_rows = np.sort(order[: n - n_valid]), np.sort(order[n - n_valid :])
    return df.iloc[train_rows].reset_index(drop=True), df.iloc[valid_rows].reset_index(drop=True)
