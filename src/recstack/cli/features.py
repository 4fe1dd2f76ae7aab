"""Feature columns (and their towers) from a config's ``features`` section and the data's column names."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Sequence

from recstack.config import ConfigError
from recstack.config.schema import FeaturePreset, FeaturesConfig
from recstack.features import DenseFeat, Feature, FeaturePipeline, SparseFeat, VarLenSparseFeat

ENTITY_IDS = ("client_id", "item_id", "creator_id")


def _match(patterns: Sequence[str], columns: Sequence[str], where: str, taken: dict[str, str]) -> list[str]:
    """The columns the names or glob patterns pick, each column at most once across the whole section."""
    out: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
            if not hits:
                raise ConfigError(f"{where}: pattern {pattern!r} matches no column; columns: {_preview(columns)}")
        elif pattern in columns:
            hits = [pattern]
        else:
            close = difflib.get_close_matches(pattern, list(columns), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: column {pattern!r} is not in the data{hint}; columns: {_preview(columns)}")
        for name in hits:
            if name in taken:
                raise ConfigError(f"{where}: column {name!r} is already declared in {taken[name]}; declare it once")
            taken[name] = where
            out.append(name)
    return out


def _preview(columns: Sequence[str], limit: int = 15) -> str:
    shown = ", ".join(map(str, columns[:limit]))
    return shown + (f" ... ({len(columns)} in all)" if len(columns) > limit else "")


def preset_features(preset: FeaturePreset) -> tuple[list[Feature], dict[str, str]]:
    """The production V1 two-tower features: entity ids by vocabulary, other categoricals hashed, numbers
    standardized, location raw; user-side columns in the user tower, item-side in the item tower."""
    from recstack.data import short_video_schema as schema

    dim, buckets = preset.embedding_dim, preset.hash_buckets
    cols: list[Feature] = []
    towers: dict[str, str] = {}
    for tower, categorical, numeric in (
        ("user", schema.USER_CATEGORICAL, schema.USER_NUMERIC),
        ("item", schema.ITEM_CATEGORICAL, schema.ITEM_NUMERIC),
    ):
        for name in categorical:
            if name in ENTITY_IDS:
                cols.append(SparseFeat(name, embedding_dim=dim, min_freq=1))
            else:
                cols.append(SparseFeat(name, buckets, embedding_dim=dim, use_hash=True))
            towers[name.lower()] = tower
        for name in numeric:
            cols.append(DenseFeat(name, normalization="standard"))
            towers[name.lower()] = tower
    for name in schema.LOCATION:
        cols.append(DenseFeat(name))  # raw degrees, -1.0 for unknown
        towers[name.lower()] = "user"
    return cols, towers


def build_features(config: FeaturesConfig, columns: Sequence[str]) -> tuple[list[Feature], dict[str, str]]:
    """(feature columns, {lower-cased name: "user" | "item"} for those given a tower)."""
    columns = [str(c) for c in columns]
    cols: list[Feature] = []
    towers: dict[str, str] = {}
    if config.preset is not None:
        cols, towers = preset_features(config.preset)
    taken: dict[str, str] = {f.name: "features.preset" for f in cols}
    for i, group in enumerate(config.sparse):
        where = f"features.sparse.{i}.names"
        for name in _match(group.names, columns, where, taken):
            cols.append(
                SparseFeat(
                    name,
                    group.hash_buckets if group.hash_buckets is not None else group.max_vocab,
                    embedding_dim=group.embedding_dim,
                    use_hash=group.hash_buckets is not None,
                    min_freq=group.min_freq,
                    n_bins=group.n_bins,
                )
            )
            if group.tower:
                towers[name.lower()] = group.tower
    for i, group in enumerate(config.dense):
        for name in _match(group.names, columns, f"features.dense.{i}.names", taken):
            cols.append(DenseFeat(name, normalization=group.normalization, fill_value=group.fill_value))
            if group.tower:
                towers[name.lower()] = group.tower
    for i, group in enumerate(config.varlen):
        for name in _match(group.names, columns, f"features.varlen.{i}.names", taken):
            inner = SparseFeat(
                name,
                group.hash_buckets,
                embedding_dim=group.embedding_dim,
                use_hash=group.hash_buckets is not None,
                min_freq=group.min_freq,
            )
            cols.append(VarLenSparseFeat(inner, maxlen=group.maxlen, combiner=group.combiner, sep=group.sep))
            if group.tower:
                towers[name.lower()] = group.tower
    if not cols:
        raise ConfigError(
            "features: no feature columns declared; list columns under features.sparse / dense / varlen (names or "
            "glob patterns) or use features.preset"
        )
    return cols, towers


def tower_columns(pipeline: FeaturePipeline, towers: dict[str, str]) -> tuple[list[Feature], list[Feature]]:
    """The fitted (user tower, item tower) columns; every feature must have a tower."""
    user, item, missing = [], [], []
    for feat in pipeline.feature_columns:
        side = towers.get(feat.name)
        if side == "user":
            user.append(feat)
        elif side == "item":
            item.append(feat)
        else:
            missing.append(feat.name)
    if missing:
        raise ConfigError(
            f"features: a two-tower model needs a tower for every feature; {missing[:5]} have none (add tower: user "
            "or tower: item to their group)"
        )
    if not user or not item:
        raise ConfigError("features: a two-tower model needs features in both towers (tower: user and tower: item)")
    return user, item
