"""The synthetic short-video play log (:func:`make_short_video_dataset`) and its label (:func:`short_video_label`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recstack.data.short_video_schema import (
    LABEL_WATCH_FRACTION,
    LABEL_WATCH_SECONDS,
    RAW_DTYPES,
    TRAIN_CATEGORICAL,
    TRAIN_NUMERIC,
)
from recstack.data.synthetic.sampling import (
    _check_rate,
    _check_size,
    _fixed_width_strings,
    _gather_strings,
    _hex_matrix,
    _mix64,
    _null_mask,
    _null_positions,
    _sample_in_groups,
    _sigmoid,
)
from recstack.data.synthetic.short_video_stats import _creator_numeric, _item_numeric, _user_numeric
from recstack.data.synthetic.short_video_vocab import (
    _ANDROID_WEIGHTS,
    _CITIES,
    _CONNECTION_WEIGHTS,
    _CREATOR_TYPE_WEIGHTS,
    _FEED_SOURCE_WEIGHTS,
    _IOS_SHARE,
    _IOS_WEIGHTS,
    _ITEMS_PER_CREATOR,
    _LANGUAGE_WEIGHTS,
    _OWN_LANGUAGE_RATE,
    ANDROID_VERSIONS,
    CONNECTIONS,
    CREATOR_LEVELS,
    CREATOR_USER_TYPES,
    ENTITY_ID_COLUMNS,
    FEED_SOURCES,
    IOS_VERSIONS,
    ITEM_ZIPF_EXPONENT,
    LANGUAGES,
    LATENT_DIM,
    N_CLUSTERS,
    NULL_RATE,
    OS_PLATFORMS,
    OWN_CLUSTER_RATE,
    UNKNOWN_LOCATION_RATE,
    WINDOW_END,
    WINDOW_START,
)
from recstack.errors import SchemaError


def _uuid_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """n distinct uuid4-looking strings (splitmix64 of the index under a random key: a bijection)."""
    keys = rng.integers(0, 2**63, size=2, dtype=np.uint64)
    idx = np.arange(n, dtype=np.uint64)
    hex32 = np.concatenate(
        [_hex_matrix(_mix64(idx ^ keys[0]), 16), _hex_matrix(_mix64(idx ^ keys[1]), 16)], axis=1
    )
    hex32[:, 12] = ord("4")
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    parts = [
        hex32[:, :8],
        dash,
        hex32[:, 8:12],
        dash,
        hex32[:, 12:16],
        dash,
        hex32[:, 16:20],
        dash,
        hex32[:, 20:],
    ]
    return _fixed_width_strings(np.concatenate(parts, axis=1))


def _hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """n distinct 16-digit hex ids."""
    key = rng.integers(0, 2**63, dtype=np.uint64)
    return _fixed_width_strings(_hex_matrix(_mix64(np.arange(n, dtype=np.uint64) ^ key), 16))


def make_short_video_dataset(
    n_users: int = 2_000,
    n_items: int = 10_000,
    n_rows: int = 100_000,
    seed: int = 0,
    *,
    null_rate: float = NULL_RATE,
    cover_items: bool = False,
) -> pd.DataFrame:
    """Synthetic play events of a short-video app, with every raw column of the production two-tower spec.

    One row per play event, sorted by ``play_timestamp``. Columns, in the example batch's order:
    ``TRAIN_CATEGORICAL`` (strings), ``TRAIN_NUMERIC`` (with the spec's exact, partly mixed-case names,
    e.g. ``item_timespent_0To3``), ``play_timestamp``, ``latitude``, ``longitude``, ``e_watch_duration``,
    ``p_watch``; each with its dtype in :data:`recstack.data.short_video_schema.RAW_DTYPES`.

    Generative model
    ----------------
    * ``N_CLUSTERS`` interest clusters, each with a dominant language and a centroid in a ``LATENT_DIM``-
      dimensional space. Users get a cluster, a language (the cluster's with probability 0.85), a latent
      factor (0.8 x centroid + noise), an activity level (heavy-tailed: how many rows they own) and an
      engagement propensity. Creators (``n_items // 8``) get a cluster, a language, a quality and a
      popularity; items belong to creators (Zipf-like catalogue sizes), inherit their language and mostly
      their cluster, and get a factor, a quality (creator quality + noise), a Zipf popularity
      (rank^-``ITEM_ZIPF_EXPONENT`` x exp(0.6 quality + 0.3 creator popularity)), a video length
      (lognormal around 20 s) and an age (lognormal around 40 days).
    * A play picks its user by activity, then its item: with probability ``OWN_CLUSTER_RATE`` from the
      user's cluster (mostly among items in the user's language) by popularity, else by global popularity.
    * Affinity = 0.45 <user factor, item factor> + 0.5 [same language] + 0.7 item quality + 0.6 user
      propensity - 0.5 log(video_length / 20) + noise. The first-pass watch fraction is sigmoid(1.6 x
      affinity + c); above 0.9 the video counts as finished and replays (Poisson, rising with affinity)
      may follow. ``e_watch_duration`` = watched fraction x video_length (seconds) and
      ``p_watch = clip(e_watch_duration / video_length, 0, 1)``. The spec's label (:func:`short_video_label`)
      is positive for roughly a third of the rows.
    * Observable features carry the signal: ``user_lang`` / ``item_lang`` (language match), item_* ratios
      (quality), user_overall_* ratios and completion histograms (propensity), counts (popularity,
      activity). User columns are constant per user, item columns per item and creator columns per
      creator (up to the injected nulls).

    Nulls: every float feature column (NaN) and every categorical column but the entity ids (client_id,
    item_id, creator_id) is null in about ``null_rate`` of the rows, independently per cell. Integer columns
    (item_* / creator_* counts, as in the
    example batch) have no nulls, and neither do ``play_timestamp`` / ``e_watch_duration`` / ``p_watch``.
    Latitude / longitude use the spec's null convention directly: -1.0 for the ``UNKNOWN_LOCATION_RATE`` of
    users whose location is unknown, otherwise coordinates near an Indian city of their language.

    ``cover_items=True`` gives every item at least one play (a whole catalogue to embed and index): ``n_items``
    rows chosen at random get one item each, in random order (needs ``n_rows >= n_items``).

    Raises ``ValueError`` for non-positive sizes or a ``null_rate`` outside [0, 1).
    """
    n_users = _check_size("n_users", n_users)
    n_items = _check_size("n_items", n_items)
    n_rows = _check_size("n_rows", n_rows)
    if cover_items and n_rows < n_items:
        raise SchemaError(f"cover_items needs n_rows >= n_items, got {n_rows:,} rows for {n_items:,} items")
    null_rate = _check_rate("null_rate", null_rate)
    rng = np.random.default_rng(seed)
    n_langs = len(LANGUAGES)
    n_clusters = min(N_CLUSTERS, n_items)
    n_creators = max(1, n_items // _ITEMS_PER_CREATOR)

    # Clusters.
    cluster_weight = rng.dirichlet(np.full(n_clusters, 4.0))
    cluster_lang = rng.choice(n_langs, n_clusters, p=_LANGUAGE_WEIGHTS)
    centroids = rng.standard_normal((n_clusters, LATENT_DIM))

    def _lang_near(cluster: np.ndarray, keep: float) -> np.ndarray:
        other = rng.choice(n_langs, cluster.shape[0], p=_LANGUAGE_WEIGHTS)
        return np.where(rng.random(cluster.shape[0]) < keep, cluster_lang[cluster], other)

    # Users.
    u_cluster = rng.choice(n_clusters, n_users, p=cluster_weight)
    u_lang = _lang_near(u_cluster, 0.85)
    u_factor = (0.8 * centroids[u_cluster] + 0.6 * rng.standard_normal((n_users, LATENT_DIM))).astype(
        np.float32
    )
    u_activity = rng.standard_normal(n_users)
    u_propensity = rng.standard_normal(n_users)
    u_ios = rng.random(n_users) < _IOS_SHARE
    os_ver = np.where(
        u_ios,
        len(ANDROID_VERSIONS) + rng.choice(len(IOS_VERSIONS), n_users, p=_IOS_WEIGHTS),
        rng.choice(len(ANDROID_VERSIONS), n_users, p=_ANDROID_WEIGHTS),
    )
    u_connection = rng.choice(len(CONNECTIONS), n_users, p=_CONNECTION_WEIGHTS)
    u_feed = rng.choice(len(FEED_SOURCES), n_users, p=_FEED_SOURCE_WEIGHTS)
    city_lat = np.array([c[0] for lang in LANGUAGES for c in _CITIES[lang]])
    city_lon = np.array([c[1] for lang in LANGUAGES for c in _CITIES[lang]])
    city_count = np.array([len(_CITIES[lang]) for lang in LANGUAGES])
    city_start = np.cumsum(city_count) - city_count
    city = city_start[u_lang] + (rng.random(n_users) * city_count[u_lang]).astype(np.int64)
    known = rng.random(n_users) >= UNKNOWN_LOCATION_RATE
    u_lat = np.where(known, np.round(city_lat[city] + 0.15 * rng.standard_normal(n_users), 6), -1.0)
    u_lon = np.where(known, np.round(city_lon[city] + 0.15 * rng.standard_normal(n_users), 6), -1.0)
    user_num = _user_numeric(rng, u_activity, u_propensity)

    # Creators and items.
    c_cluster = rng.choice(n_clusters, n_creators, p=cluster_weight)
    c_lang = _lang_near(c_cluster, 0.8)
    c_quality = 0.7 * rng.standard_normal(n_creators)
    c_popularity = rng.standard_normal(n_creators)
    c_level = np.clip(
        np.rint(1.5 + 1.2 * c_popularity + 0.7 * rng.standard_normal(n_creators)), 0, len(CREATOR_LEVELS) - 1
    ).astype(np.int64)
    c_type = rng.choice(len(CREATOR_USER_TYPES), n_creators, p=_CREATOR_TYPE_WEIGHTS)
    c_catalogue_weight = np.exp(rng.standard_normal(n_creators))
    i_creator = rng.choice(n_creators, n_items, p=c_catalogue_weight / c_catalogue_weight.sum())
    i_cluster = np.where(
        rng.random(n_items) < 0.9, c_cluster[i_creator], rng.integers(0, n_clusters, n_items)
    )
    i_cluster[rng.permutation(n_items)[:n_clusters]] = np.arange(n_clusters)  # no cluster without items
    i_lang = c_lang[i_creator]
    i_factor = (0.8 * centroids[i_cluster] + 0.6 * rng.standard_normal((n_items, LATENT_DIM))).astype(
        np.float32
    )
    i_quality = c_quality[i_creator] + 0.5 * rng.standard_normal(n_items)
    i_rank = rng.permutation(n_items)
    i_log_pop = -ITEM_ZIPF_EXPONENT * np.log1p(i_rank) + 0.6 * i_quality + 0.3 * c_popularity[i_creator]
    i_weight = np.exp(i_log_pop - i_log_pop.max())
    i_length = np.clip(
        np.rint(30.0 * np.exp(np.log(20.0) + 0.7 * rng.standard_normal(n_items))) / 30.0, 3.0, 300.0
    )
    i_age = np.clip(np.exp(np.log(40.0) + 1.3 * rng.standard_normal(n_items)), 0.5, 1500.0)
    item_num = _item_numeric(rng, i_quality, i_log_pop, i_length, i_age)
    creator_num = _creator_numeric(
        rng,
        c_quality,
        c_popularity,
        np.bincount(i_creator, weights=item_num["item_view_uu"], minlength=n_creators).astype(np.int64),
        np.bincount(i_creator, minlength=n_creators),
    )

    # Play events.
    u_weight = np.exp(u_activity)
    r_user = rng.choice(n_users, n_rows, p=u_weight / u_weight.sum())
    r_ts = rng.integers(WINDOW_START, WINDOW_END, n_rows, dtype=np.int64)
    order = np.argsort(r_ts, kind="stable")
    r_user, r_ts = r_user[order], r_ts[order]
    branch = rng.random(n_rows)
    own_lang = branch < OWN_CLUSTER_RATE * _OWN_LANGUAGE_RATE
    own_cluster = branch < OWN_CLUSTER_RATE
    r_item = _sample_in_groups(
        rng, np.zeros(n_items, dtype=np.int64), i_weight, np.zeros(n_rows, dtype=np.int64), 1
    )
    in_cluster = _sample_in_groups(rng, i_cluster, i_weight, u_cluster[r_user], n_clusters)
    in_lang = _sample_in_groups(
        rng,
        i_cluster * n_langs + i_lang,
        i_weight,
        u_cluster[r_user] * n_langs + u_lang[r_user],
        n_clusters * n_langs,
    )
    in_cluster = np.where(own_lang & (in_lang >= 0), in_lang, in_cluster)
    r_item = np.where(own_cluster & (in_cluster >= 0), in_cluster, r_item)
    if cover_items:
        r_item[rng.choice(n_rows, n_items, replace=False)] = rng.permutation(n_items)
    r_creator = i_creator[r_item]

    # Watch outcome.
    dot = np.einsum("ij,ij->i", u_factor[r_user], i_factor[r_item]) / np.sqrt(LATENT_DIM)
    length = i_length[r_item]
    affinity = (
        0.45 * dot
        + 0.5 * (u_lang[r_user] == i_lang[r_item])
        + 0.7 * i_quality[r_item]
        + 0.6 * u_propensity[r_user]
        - 0.5 * np.log(length / 20.0)
        + 0.6 * rng.standard_normal(n_rows)
    )
    first_pass = _sigmoid(1.6 * affinity - 1.3)
    finished = first_pass > 0.9
    replays = rng.poisson(0.3 * np.exp(0.4 * np.clip(affinity, -5.0, 4.0)))
    watched = np.where(finished, 1.0 + replays + (replays > 0) * rng.random(n_rows), first_pass)
    e_watch = np.round(watched * length * np.exp(0.02 * rng.standard_normal(n_rows)), 3)
    p_watch = np.clip(e_watch / length, 0.0, 1.0).astype(np.float32)

    # Assemble, in the example batch's order.
    strings: dict[str, tuple[pa.Array, np.ndarray]] = {
        "client_id": (_uuid_strings(rng, n_users), r_user),
        "creator_id": (_hex_ids(rng, n_creators), r_creator),
        "item_id": (_hex_ids(rng, n_items), r_item),
        "item_lang": (pa.array(LANGUAGES), i_lang[r_item]),
        "user_lang": (pa.array(LANGUAGES), u_lang[r_user]),
        "user_connection": (pa.array(CONNECTIONS), u_connection[r_user]),
        "user_feed_source": (pa.array(FEED_SOURCES), u_feed[r_user]),
        "creator_level": (pa.array(CREATOR_LEVELS), c_level[r_creator]),
        "creator_user_type": (pa.array(CREATOR_USER_TYPES), c_type[r_creator]),
        "user_os_platform": (pa.array(OS_PLATFORMS), u_ios[r_user].astype(np.int64)),
        "user_os_ver": (pa.array(ANDROID_VERSIONS + IOS_VERSIONS), os_ver[r_user]),
    }
    data: dict[str, Any] = {}
    for name in TRAIN_CATEGORICAL:
        vocab, index = strings[name]
        # A play event always knows its user, item and creator: the entity ids are never null.
        rate = 0.0 if name in ENTITY_ID_COLUMNS else null_rate
        data[name] = _gather_strings(vocab, index, _null_mask(rng, n_rows, rate))
    for name in TRAIN_NUMERIC:
        if name in user_num:
            col = user_num[name][r_user]
        elif name in creator_num:
            col = creator_num[name][r_creator]
        else:
            col = item_num[name][r_item]
        if col.dtype.kind == "f":
            col[_null_positions(rng, n_rows, null_rate)] = np.nan
        data[name] = col
    data["play_timestamp"] = r_ts
    data["latitude"] = u_lat[r_user]
    data["longitude"] = u_lon[r_user]
    data["e_watch_duration"] = e_watch
    data["p_watch"] = p_watch
    frame = pd.DataFrame(data)  # consolidated: callers can add columns without a fragmentation warning
    if list(frame.columns) != list(RAW_DTYPES):  # pragma: no cover - guards the schema transcription
        raise SchemaError("synthetic short-video columns do not match short_video_schema.RAW_DTYPES")
    return frame


def _column_ci(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name]
    matches = [c for c in df.columns if isinstance(c, str) and c.lower() == name]
    if len(matches) != 1:
        found = "none" if not matches else f"several: {matches}"
        raise SchemaError(
            f"short_video_label needs exactly one column named {name!r} (any case), found {found}"
        )
    return df[matches[0]]


def _as_float(column: pd.Series) -> np.ndarray:
    column = pd.to_numeric(column)
    kind = column.dtype.kind if isinstance(column.dtype, np.dtype) else ""
    return column.to_numpy(dtype=column.dtype if kind == "f" else np.float64, na_value=np.nan)


def short_video_label(df: pd.DataFrame) -> np.ndarray:
    """The spec's training label: 1.0 where ``p_watch > 0.85`` or ``e_watch_duration > 60`` s, else 0.0.

    Column names are matched case-insensitively (``P_WATCH`` works as well as ``p_watch``); nulls count as
    "not satisfied". Returns a float32 array of 0/1 with one entry per row.
    """
    p_watch = _as_float(_column_ci(df, "p_watch"))
    seconds = _as_float(_column_ci(df, "e_watch_duration"))
    with np.errstate(invalid="ignore"):  # thresholds compare in the column's own float precision
        label = (p_watch > LABEL_WATCH_FRACTION) | (seconds > LABEL_WATCH_SECONDS)
    return label.astype(np.float32)
