"""Synthetic datasets: recstack's embedded default data for demos, tests and benchmarks.

Two generators, both vectorised (per-entity tables built with NumPy, then gathered by index: no per-row
Python loops), deterministic under ``seed`` and with a planted, learnable signal:

* :func:`make_short_video_dataset`: play events of a short-video app with every raw column of the
  production two-tower spec (:mod:`recstack.data.short_video_schema`), including its mixed-case numerical
  column names, and the watch outcome (``e_watch_duration``, ``p_watch``) the label is derived from
  (:func:`short_video_label`).
* :func:`make_ctr_dataset`: a Criteo-like click log (``label``, dense ``I1..``, hex-string ``C1..``)
  whose click probability contains pairwise feature interactions, so that a model with feature crosses
  (a factorization machine) clearly beats logistic regression.

Both make 1,000,000 rows in a few seconds on a laptop-class CPU.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recstack.data.short_video_schema import (
    ITEM_NUMERIC,
    LABEL_WATCH_FRACTION,
    LABEL_WATCH_SECONDS,
    RAW_DTYPES,
    STRING_DTYPE,
    TRAIN_CATEGORICAL,
    TRAIN_NUMERIC,
    USER_NUMERIC,
)
from recstack.errors import SchemaError

__all__ = [
    "make_short_video_dataset",
    "short_video_label",
    "make_ctr_dataset",
    "LANGUAGES",
    "CONNECTIONS",
    "OS_PLATFORMS",
    "ANDROID_VERSIONS",
    "IOS_VERSIONS",
    "FEED_SOURCES",
    "CREATOR_LEVELS",
    "CREATOR_USER_TYPES",
    "N_CLUSTERS",
    "LATENT_DIM",
    "NULL_RATE",
    "UNKNOWN_LOCATION_RATE",
    "OWN_CLUSTER_RATE",
    "ITEM_ZIPF_EXPONENT",
    "WINDOW_START",
    "WINDOW_END",
    "CTR_CARDINALITIES",
    "CTR_ZIPF_EXPONENT",
    "CTR_DENSE_NULL_RATE",
    "CTR_DENSE_NULL_COLUMNS",
    "CTR_SPARSE_NULL_RATE",
    "CTR_SPARSE_NULL_COLUMNS",
    "CTR_FIRST_ORDER_COLUMNS",
    "CTR_INTERACTION_PAIRS",
    "CTR_DENSE_CROSS",
    "CTR_LATENT_DIM",
    "CTR_POSITIVE_RATE",
]

# ---------------------------------------------------------------------------------------------------------
# Short-video vocabularies and knobs
# ---------------------------------------------------------------------------------------------------------

LANGUAGES: tuple[str, ...] = ("hi", "en", "ta", "te", "bn", "mr", "or", "kn", "ml", "gu", "pa")
_LANGUAGE_WEIGHTS = np.array([0.38, 0.12, 0.08, 0.08, 0.07, 0.07, 0.03, 0.05, 0.04, 0.04, 0.04])
CONNECTIONS: tuple[str, ...] = ("4G", "wifi", "3G", "2G", "5G")
_CONNECTION_WEIGHTS = np.array([0.58, 0.25, 0.09, 0.03, 0.05])
OS_PLATFORMS: tuple[str, ...] = ("android", "ios")
_IOS_SHARE = 0.08
ANDROID_VERSIONS: tuple[str, ...] = ("8.1.0", "9", "10", "11", "12", "13")
_ANDROID_WEIGHTS = np.array([0.05, 0.10, 0.22, 0.30, 0.23, 0.10])
IOS_VERSIONS: tuple[str, ...] = ("14.8.1", "15.6.1", "15.7", "16.0.3", "16.1", "16.1.1")
_IOS_WEIGHTS = np.array([0.05, 0.15, 0.15, 0.20, 0.25, 0.20])
FEED_SOURCES: tuple[str, ...] = ("for_you", "trending", "following", "explore", "notification", "deeplink")
_FEED_SOURCE_WEIGHTS = np.array([0.55, 0.15, 0.12, 0.10, 0.05, 0.03])
# The example batch's hashed values decode (xxhash, as the spec describes) to user_connection "4G",
# user_os_platform "android", user_os_ver "12", item/user_lang "or" and creator_level "5" / null: the
# vocabularies below contain those production spellings.
CREATOR_LEVELS: tuple[str, ...] = ("0", "1", "2", "3", "4", "5")
CREATOR_USER_TYPES: tuple[str, ...] = ("ugc", "verified", "influencer", "brand", "ops")
_CREATOR_TYPE_WEIGHTS = np.array([0.70, 0.12, 0.10, 0.05, 0.03])

N_CLUSTERS: int = 20  # interest clusters (at most n_items of them are used)
LATENT_DIM: int = 16  # dimension of the latent user / item factors
NULL_RATE: float = 0.05  # default share of nulls in every float and string feature column
UNKNOWN_LOCATION_RATE: float = 0.30  # share of users whose latitude / longitude is -1.0
OWN_CLUSTER_RATE: float = 0.70  # share of plays drawn from the user's own interest cluster
_OWN_LANGUAGE_RATE = 0.80  # ... and among those, share drawn from the user's language within the cluster
ITEM_ZIPF_EXPONENT: float = 0.8  # item popularity ~ rank^-0.8 (times a quality / creator-popularity term)
_ITEMS_PER_CREATOR = 8
WINDOW_END: int = 1_669_852_800  # 2022-12-01 00:00:00 UTC: the spec trains on 7 days until 11/30
WINDOW_START: int = WINDOW_END - 7 * 86_400

# (latitude, longitude) of a few cities per language, used for users whose location is known.
_CITIES: dict[str, tuple[tuple[float, float], ...]] = {
    "hi": ((28.61, 77.21), (26.85, 80.95), (26.91, 75.79), (25.59, 85.14), (23.26, 77.41)),
    "en": ((12.97, 77.59), (19.08, 72.88), (28.61, 77.21), (17.39, 78.49)),
    "ta": ((13.08, 80.27), (11.02, 76.96), (9.93, 78.12)),
    "te": ((17.39, 78.49), (16.51, 80.65), (17.69, 83.22)),
    "bn": ((22.57, 88.36), (26.73, 88.40), (23.24, 87.86)),
    "mr": ((19.08, 72.88), (18.52, 73.86), (21.15, 79.09)),
    "or": ((20.30, 85.82), (20.46, 85.88), (19.31, 84.79)),
    "kn": ((12.97, 77.59), (12.30, 76.64), (15.36, 75.12)),
    "ml": ((9.93, 76.27), (8.52, 76.94), (11.26, 75.78)),
    "gu": ((23.02, 72.57), (21.17, 72.83), (22.31, 73.18)),
    "pa": ((30.73, 76.78), (30.90, 75.86), (31.63, 74.87)),
}

_USER_GROUPS: tuple[str, ...] = ("overall_short", "overall_mid", "overall_life", "creator_life", "tpv_life")
_PCC_BINS: tuple[str, ...] = ("0_5", "5_20", "20_40", "40_60", "60_70", "70_80", "80_90", "90_100")
_TIMESPENT_BINS: tuple[str, ...] = (
    "le_5sec",
    "gt_5sec",
    "gt_10sec",
    "gt_20sec",
    "gt_30sec",
    "gt_60sec",
    "gt_120sec",
)
_ITEM_TIMESPENT: tuple[str, ...] = tuple(c for c in ITEM_NUMERIC if c.startswith("item_timespent_"))
# Upper edges (seconds) of the item_timespent_* buckets, the last one being open ("Gt60").
_ITEM_TIMESPENT_EDGES = np.array([3, 6, 9, 12, 15, 18, 21, 24, 30, 40, 60, 120], dtype=np.float64)
_VIEW_HISTOGRAM: tuple[str, ...] = tuple(
    c for c in ITEM_NUMERIC if c.startswith(("creator_viewle", "creator_viewgt"))
)
_VIEW_HISTOGRAM_CENTERS = np.log([10, 35, 75, 300, 750, 5e3, 3e4, 7.5e4, 3e5, 7.5e5, 3e6, 5e7, 2e8])

_INT32_MAX = np.iinfo(np.int32).max

# ---------------------------------------------------------------------------------------------------------
# Criteo-like CTR knobs
# ---------------------------------------------------------------------------------------------------------

# Number of possible values of C1..C26 (cycled when n_sparse > 26): small (3-30), medium (~100-15k) and
# large (> 100k, three of them near 1M), loosely modelled on the Criteo Kaggle columns.
CTR_CARDINALITIES: tuple[int, ...] = (
    1460,
    583,
    1_000_000,
    500_000,
    305,
    24,
    12_517,
    633,
    3,
    93_145,
    5683,
    900_000,
    3194,
    27,
    14_992,
    400_000,
    10,
    5652,
    2173,
    4,
    1_000_000,
    18,
    15,
    286_181,
    105,
    142_572,
)
CTR_ZIPF_EXPONENT: float = 1.1  # values of every categorical column follow a bounded Zipf law
CTR_DENSE_NULL_RATE: float = 0.10
CTR_DENSE_NULL_COLUMNS: tuple[int, ...] = (0, 2, 9, 11)  # I1, I3, I10, I12
CTR_SPARSE_NULL_RATE: float = 0.03
CTR_SPARSE_NULL_COLUMNS: tuple[int, ...] = (18, 19, 21, 24, 25)  # C19, C20, C22, C25, C26
CTR_FIRST_ORDER_COLUMNS: tuple[int, ...] = tuple(range(13))  # C1..C13 have a per-value logit effect
# Pairs (i, j) of 0-based categorical columns whose latent vectors interact: <z_Ci[v_i], z_Cj[v_j]> is
# added to the logit. They involve 8 low / medium-cardinality columns: C1 C2 C5 C6 C8 C14 C17 C23.
CTR_INTERACTION_PAIRS: tuple[tuple[int, int], ...] = (
    (5, 13),
    (5, 16),
    (13, 22),
    (16, 22),
    (0, 5),
    (1, 13),
    (4, 16),
    (7, 22),
    (0, 1),
)
CTR_DENSE_CROSS: tuple[int, int] = (1, 8)  # standardized log1p(I2) times a per-value weight of C9
CTR_LATENT_DIM: int = 4
CTR_POSITIVE_RATE: float = 0.25  # the intercept is solved so that the mean click probability is this
_CTR_DENSE_LOG_MEDIAN = np.array([0.7, 3.0, 2.3, 1.8, 8.0, 4.5, 1.5, 2.4, 4.0, 0.4, 1.0, 0.2, 2.0])
_CTR_DENSE_LOG_SPREAD = np.array([1.2, 1.8, 1.3, 1.0, 2.0, 1.8, 1.6, 1.2, 1.3, 0.8, 1.0, 1.0, 1.4])
_CTR_DENSE_WEIGHTS = np.array([0.30, -0.25, 0.20, 0.15, -0.20, 0.10])
_CTR_FIRST_ORDER_SCALE = 0.45
_CTR_LATENT_SCALE = 0.8
_CTR_DENSE_CROSS_SCALE = 0.8

# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


ENTITY_ID_COLUMNS = ("client_id", "item_id", "creator_id")


def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        size = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if size <= 0:
        raise ValueError(f"{name} must be a positive integer, got {size}")
    return size


def _check_rate(name: str, value: float) -> float:
    rate = float(value)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return rate


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a bijection of uint64, so distinct inputs give distinct random-looking ids."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _fmix32(x: np.ndarray) -> np.ndarray:
    """MurmurHash3 finaliser: a bijection of uint32."""
    x = x.astype(np.uint32, copy=True)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return x


def _hex_matrix(values: np.ndarray, n_digits: int) -> np.ndarray:
    """(n, n_digits) uint8 matrix of the lowercase hex digits of ``values`` (most significant first)."""
    shifts = (np.arange(n_digits - 1, -1, -1, dtype=np.uint64) * np.uint64(4))[None, :]
    return _HEX_DIGITS[(values.astype(np.uint64)[:, None] >> shifts) & np.uint64(0xF)]


def _fixed_width_strings(chars: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Arrow string array whose i-th value is the bytes of row i of the uint8 matrix ``chars``."""
    n, width = chars.shape
    offsets = np.arange(n + 1, dtype=np.int64) * width
    data = pa.py_buffer(np.ascontiguousarray(chars, dtype=np.uint8))
    if valid is None:
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), data)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    null_count = int(n - np.count_nonzero(valid))
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), data, bitmap, null_count)


def _string_column(values: pa.Array) -> pd.api.extensions.ExtensionArray:
    return pd.array(values, dtype=STRING_DTYPE)


def _gather_strings(
    vocab: pa.Array, index: np.ndarray, null: np.ndarray | None
) -> pd.api.extensions.ExtensionArray:
    """Rows ``vocab[index]`` as a pandas ``str`` array, null where ``null`` is True."""
    return _string_column(vocab.take(pa.array(index, mask=null)))


def _null_positions(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Row positions to null out so that each row is null with probability ``rate``, independently.

    Draws Binomial(n, -log(1 - rate)) positions with replacement: a row escapes all of them with
    probability exp(-(-log(1 - rate))) = 1 - rate. Much cheaper than a uniform draw per row.
    """
    if rate <= 0.0:
        return np.empty(0, dtype=np.int64)
    return rng.integers(0, n, rng.binomial(n, -np.log1p(-rate)))


def _null_mask(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[_null_positions(rng, n, rate)] = True
    return mask


def _sample_in_groups(
    rng: np.random.Generator,
    item_group: np.ndarray,
    weights: np.ndarray,
    row_group: np.ndarray,
    n_groups: int,
) -> np.ndarray:
    """For each row r, an item of group ``row_group[r]`` drawn with probability proportional to ``weights``.

    Items are sorted by group and their weights accumulated once; a row draws a uniform number inside its
    group's slice of the cumulative sum and looks it up with one vectorised ``searchsorted``. Rows whose
    group has no item get -1.
    """
    order = np.argsort(item_group, kind="stable")
    cum = np.cumsum(weights[order])
    counts = np.bincount(item_group, minlength=n_groups)
    ends = np.cumsum(counts)
    starts = ends - counts
    lo = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    hi = np.where(counts > 0, cum[np.maximum(ends - 1, 0)], 0.0)
    target = lo[row_group] + rng.random(row_group.shape[0]) * (hi - lo)[row_group]
    pos = np.searchsorted(cum, target, side="right")
    pos = np.clip(pos, starts[row_group], np.maximum(ends[row_group] - 1, starts[row_group]))
    out = order[np.minimum(pos, order.shape[0] - 1)]
    return np.where(counts[row_group] > 0, out, -1)


def _binomial(rng: np.random.Generator, n: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    return rng.binomial(np.asarray(n, dtype=np.int64), np.clip(p, 0.0, 1.0))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den == 0."""
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(den.shape, dtype=np.float64), where=den > 0)


def _lognormal_counts(rng: np.random.Generator, log_median: np.ndarray, spread: float) -> np.ndarray:
    noise = rng.standard_normal(np.shape(log_median))
    return np.maximum(np.rint(np.exp(log_median + spread * noise)), 0).astype(np.int64)


# ---------------------------------------------------------------------------------------------------------
# Short video: entity tables
# ---------------------------------------------------------------------------------------------------------


def _user_numeric(
    rng: np.random.Generator, activity: np.ndarray, propensity: np.ndarray
) -> dict[str, np.ndarray]:
    """The 132 user_* columns, one value per user.

    Five nested history windows share the user's activity (how much they watch) and engagement
    propensity (how completely they watch and how often they engage; the same propensity raises the
    user's watch fraction in the play events). Per window: ``total_plays``; timespent and completion
    (``pcc``) histograms that partition the plays; engagement counts drawn as binomials of the plays; and
    ``*_ctr`` ratios of those, rounded to 2 decimals as in the example batch.
    """
    n = activity.shape[0]
    life = _lognormal_counts(rng, 6.6 + 1.1 * activity, 0.4)
    mid = _binomial(rng, life, _sigmoid(-1.2 + 0.5 * rng.standard_normal(n)))
    plays = {
        "overall_life": life,
        "overall_mid": mid,
        "overall_short": _binomial(rng, mid, _sigmoid(-0.5 + 0.4 * rng.standard_normal(n))),
        "creator_life": _binomial(rng, life, _sigmoid(-0.6 + 0.6 * rng.standard_normal(n))),
        "tpv_life": rng.poisson(np.exp(-0.5 + 0.5 * activity)),
    }
    base_rates = {  # logit of each per-play rate: intercept, propensity slope, per-user spread
        "total_engaged": (-0.2, 0.9, 0.25),
        "lp": (-0.9, 0.7, 0.3),
        "loop": (-0.6, 0.5, 0.5),
        "like": (-4.6, 0.4, 0.7),
        "share": (-5.5, 0.3, 1.0),
        "comment": (-7.0, 0.2, 1.0),
        "download": (-4.5, 0.3, 1.0),
        "dislike": (-8.0, -0.4, 1.0),
    }
    user_logit = {k: a + b * propensity + s * rng.standard_normal(n) for k, (a, b, s) in base_rates.items()}
    pcc_logits = np.log([0.06, 0.16, 0.12, 0.10, 0.05, 0.05, 0.08, 0.38])
    pcc_slope = np.array([-0.6, -0.4, -0.2, 0.0, 0.1, 0.2, 0.3, 0.6])
    ts_logits = np.log([0.25, 0.15, 0.30, 0.12, 0.12, 0.05, 0.01])
    ts_slope = np.array([-0.5, -0.2, 0.0, 0.2, 0.3, 0.4, 0.4])
    pcc_p = _softmax(pcc_logits[None, :] + propensity[:, None] * pcc_slope[None, :])
    ts_p = _softmax(ts_logits[None, :] + propensity[:, None] * ts_slope[None, :])

    out: dict[str, np.ndarray] = {}
    for group in _USER_GROUPS:
        total = plays[group]
        jitter = {k: v + 0.15 * rng.standard_normal(n) for k, v in user_logit.items()}
        counts = {k: _binomial(rng, total, _sigmoid(v)) for k, v in jitter.items()}
        stats: dict[str, np.ndarray] = {
            "total_plays": total,
            "total_engaged": counts["total_engaged"],
            "loop": counts["loop"],
            "like": counts["like"],
            "share": counts["share"],
            "comment": counts["comment"],
            "download": counts["download"],
            "dislike": counts["dislike"],
            "lp_ctr": np.round(_ratio(counts["lp"], total), 2),
            "ctr": np.round(_ratio(counts["total_engaged"], total), 2),
            "like_ctr": np.round(_ratio(counts["like"], total), 2),
            "download_ctr": np.round(_ratio(counts["download"], total), 2),
        }
        pcc = rng.multinomial(total, pcc_p)
        ts = rng.multinomial(total, ts_p)
        stats.update({f"pcc_{b}": pcc[:, k] for k, b in enumerate(_PCC_BINS)})
        stats.update({f"timespent_{b}": ts[:, k] for k, b in enumerate(_TIMESPENT_BINS)})
        prefix = f"user_{group}_"
        for name in USER_NUMERIC:
            if name.startswith(prefix):
                out[name] = stats[name[len(prefix) :]].astype(RAW_DTYPES[name])
    return out


def _windows(rng: np.random.Generator, total: np.ndarray, fractions: list[np.ndarray]) -> list[np.ndarray]:
    """Nested binomial thinning: counts in shrinking windows, each <= the previous one."""
    out = []
    prev, prev_f = total, np.ones_like(fractions[0])
    for f in fractions:
        prev = _binomial(rng, prev, _ratio(f, prev_f))
        prev_f = f
        out.append(prev)
    return out


def _item_numeric(
    rng: np.random.Generator,
    quality: np.ndarray,
    log_pop: np.ndarray,
    video_length: np.ndarray,
    age_days: np.ndarray,
) -> dict[str, np.ndarray]:
    """video_length and the 51 item_* columns, one value per item.

    Lifetime unique views grow with the item's popularity (the same weight that drives how often it is
    played) and its age; engagement / like / share / download / comment counts are binomial thinnings
    whose rates rise with the item's quality (the quality also raises the watch fraction of its plays), so
    ``item_ctr`` / ``item_like_ctr`` reflect quality with noise. Windowed counts (24h <= 3d <= 7d <= 15d <=
    lifetime) follow an exponential decay of daily views with age plus a small long-tail trickle.
    """
    n = quality.shape[0]
    tau = np.exp(np.log(5.0) + 0.5 * rng.standard_normal(n))  # days until views decay by 1/e
    grown = 1.0 - np.exp(-age_days / tau)
    # The most popular item has ~1M lifetime views; views are proportional to the popularity weight.
    views = np.maximum(_lognormal_counts(rng, 14.0 + (log_pop - log_pop.max()) + np.log(grown), 0.4), 1)
    ctr_logit = 0.55 + 0.6 * quality + 0.15 * rng.standard_normal(n)
    like_logit = -4.3 + 0.6 * quality + 0.3 * rng.standard_normal(n)
    share_logit = -7.0 + 0.8 * quality + 0.5 * rng.standard_normal(n)
    download_logit = -6.5 + 0.5 * quality + 0.5 * rng.standard_normal(n)
    comment_logit = -8.5 + 0.5 * quality + 0.8 * rng.standard_normal(n)
    engaged = _binomial(rng, views, _sigmoid(ctr_logit))
    likes = _binomial(rng, views, _sigmoid(like_logit))
    shares = _binomial(rng, views, _sigmoid(share_logit))
    downloads = _binomial(rng, views, _sigmoid(download_logit))
    comments = _binomial(rng, views, _sigmoid(comment_logit))
    out: dict[str, np.ndarray] = {
        "video_length": video_length.astype(np.float32),
        "item_like_uu": likes,
        "item_share_uu": shares,
        "item_download_uu": downloads,
        "item_view_uu": views,
        "item_comment_uu": comments,
        "item_engagement_uu": engaged,
        "item_download_ctr": _ratio(downloads, views),
        "item_share_ctr": _ratio(shares, views),
        "item_like_ctr": _ratio(likes, views),
        "item_ctr": _ratio(engaged, views),
        "item_publish_date_in_epoch": np.rint((WINDOW_START - age_days * 86_400.0) * 1000.0),
    }
    # Watch-time histogram: skips pile up in the first bucket, the rest centres on the expected watch time.
    expected_watch = video_length * _sigmoid(0.3 + 0.8 * quality)
    centers = np.log(
        np.concatenate([[1.5], (_ITEM_TIMESPENT_EDGES[:-2] + _ITEM_TIMESPENT_EDGES[1:-1]) / 2, [90.0]])
    )
    logits = -((centers[None, :] - np.log(expected_watch)[:, None]) ** 2) / 2.0
    logits[:, 0] += 1.0 - 0.5 * quality
    hist = rng.multinomial(views, _softmax(logits))
    out.update({name: hist[:, k] for k, name in enumerate(_ITEM_TIMESPENT)})
    # Windows: share of lifetime views that fell in the last w days (exponential decay + trickle).
    days = {"24h": 1.0, "3d": 3.0, "7d": 7.0, "15d": 15.0}
    frac = {
        k: np.minimum(
            1.0,
            _ratio(np.exp(-np.maximum(age_days - w, 0.0) / tau) - np.exp(-age_days / tau), grown)
            + 0.03 * w / (age_days + w),
        )
        for k, w in days.items()
    }
    order = ["15d", "7d", "3d", "24h"]
    view_w = dict(zip(order, _windows(rng, views, [frac[k] for k in order])))
    ctr_suffix = {"24h": "24hr", "3d": "3d", "7d": "7d", "15d": "15d"}
    for k in days:
        v = view_w[k]
        eng = _binomial(rng, v, _sigmoid(ctr_logit + 0.1 * rng.standard_normal(n)))
        like = _binomial(rng, v, _sigmoid(like_logit + 0.1 * rng.standard_normal(n)))
        share = _binomial(rng, v, _sigmoid(share_logit + 0.1 * rng.standard_normal(n)))
        out[f"item_view_{k}"] = v
        out[f"item_engagement_{k}"] = eng
        out[f"item_like_{k}"] = like
        out[f"item_share_{k}"] = share
        out[f"item_ctr_{ctr_suffix[k]}"] = _ratio(eng, v)
        out[f"item_like_ctr_{ctr_suffix[k]}"] = _ratio(like, v)
        out[f"item_share_ctr_{ctr_suffix[k]}"] = _ratio(share, v)
    return {name: out[name].astype(RAW_DTYPES[name]) for name in ITEM_NUMERIC if name in out}


def _creator_numeric(
    rng: np.random.Generator,
    quality: np.ndarray,
    popularity: np.ndarray,
    item_views: np.ndarray,
    n_items_posted: np.ndarray,
) -> dict[str, np.ndarray]:
    """The 66 creator_* columns, one value per creator.

    ``creator_cv`` (content views) adds the lifetime views of the creator's catalogue items to views of
    items outside the catalogue (driven by the creator's popularity); the other counts are binomial
    thinnings with quality-driven rates; windows (12d >= 7d >= 3d >= 24h) are nested thinnings; the
    completion / timespent histograms partition ``creator_cv``; the ``viewle*`` histogram spreads the
    creator's posted videos over view-count buckets around a popularity-driven median.
    """
    n = quality.shape[0]
    cv = item_views + _lognormal_counts(rng, 7.0 + 1.2 * popularity, 0.5)
    cv = np.minimum(cv, _INT32_MAX // 2)
    ctr = _sigmoid(0.25 + 0.6 * quality + 0.1 * rng.standard_normal(n))
    pv_rate = _sigmoid(0.2 + 0.3 * rng.standard_normal(n))
    like_rate = _sigmoid(-4.3 + 0.6 * quality + 0.3 * rng.standard_normal(n))
    share_rate = _sigmoid(-7.0 + 0.8 * quality + 0.6 * rng.standard_normal(n))
    comment_rate = _sigmoid(-8.5 + 0.8 * rng.standard_normal(n))
    download_rate = _sigmoid(-6.5 + 0.5 * quality + 0.6 * rng.standard_normal(n))
    lc = _binomial(rng, cv, like_rate)
    sc = _binomial(rng, cv, share_rate)
    dl = _binomial(rng, cv, download_rate)
    out: dict[str, np.ndarray] = {
        "creator_cv": cv,
        "creator_pv": _binomial(rng, cv, pv_rate),
        "creator_lp": _binomial(rng, cv, 0.6 * ctr),
        "creator_lc": lc,
        "creator_sc": sc,
        "creator_cc": _binomial(rng, cv, comment_rate),
        "creator_dl": dl,
        "creator_ctr": ctr,
        "creator_download_ctr": _ratio(dl, cv),
        "creator_share_ctr": _ratio(sc, cv),
        "creator_like_ctr": _ratio(lc, cv),
    }
    f12 = _sigmoid(-1.5 + rng.standard_normal(n))
    f7 = f12 * _sigmoid(0.3 + 0.5 * rng.standard_normal(n))
    f3 = f7 * _sigmoid(0.0 + 0.5 * rng.standard_normal(n))
    f1 = f3 * _sigmoid(-0.8 + 0.5 * rng.standard_normal(n))
    windows = ["12d", "7d", "3d", "24h"]
    cv_w = dict(zip(windows, _windows(rng, cv, [f12, f7, f3, f1])))
    for w in windows:
        out[f"creator_cv_{w}"] = cv_w[w]
        out[f"creator_pv_{w}"] = _binomial(rng, cv_w[w], pv_rate)
        out[f"creator_lc_{w}"] = _binomial(rng, cv_w[w], like_rate)
        out[f"creator_sc_{w}"] = _binomial(rng, cv_w[w], share_rate)
        out[f"creator_dl_{w}"] = _binomial(rng, cv_w[w], download_rate)
        out[f"creator_ctr_{w}"] = np.clip(ctr + 0.03 * rng.standard_normal(n), 0.0, 1.0)
    posted = n_items_posted + rng.poisson(2.0, n)
    out["creator_videoposted"] = posted
    out["creator_nsfwposted"] = _binomial(rng, posted, _sigmoid(-2.5 + rng.standard_normal(n)))
    out["creator_daysvideoposted"] = np.minimum(
        posted, 1 + _binomial(rng, 11, _sigmoid(rng.standard_normal(n)))
    )
    pcc_slope = np.array([-0.6, -0.4, -0.2, 0.0, 0.1, 0.2, 0.3, 0.6])
    pcc_p = _softmax(
        np.log([0.10, 0.20, 0.10, 0.08, 0.03, 0.04, 0.05, 0.40])[None, :]
        + quality[:, None] * pcc_slope[None, :]
    )
    pcc = rng.multinomial(cv, pcc_p)
    pcc_names = [c for c in ITEM_NUMERIC if c.startswith("creator_pcc")]
    out.update({name: pcc[:, k] for k, name in enumerate(pcc_names)})
    ts_p = _softmax(
        np.log([0.40, 0.15, 0.25, 0.10, 0.07, 0.02, 0.01])[None, :]
        + quality[:, None] * np.array([-0.5, -0.2, 0.0, 0.2, 0.3, 0.4, 0.4])[None, :]
    )
    ts = rng.multinomial(cv, ts_p)
    out.update({f"creator_timespent_{b}": ts[:, k] for k, b in enumerate(_TIMESPENT_BINS)})
    median_log_views = 6.0 + 1.2 * popularity
    view_p = _softmax(-((_VIEW_HISTOGRAM_CENTERS[None, :] - median_log_views[:, None]) ** 2) / (2 * 1.5**2))
    hist = rng.multinomial(posted, view_p)
    out.update({name: hist[:, k] for k, name in enumerate(_VIEW_HISTOGRAM)})
    return {name: out[name].astype(RAW_DTYPES[name]) for name in ITEM_NUMERIC if name in out}


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


# ---------------------------------------------------------------------------------------------------------
# Criteo-like CTR data
# ---------------------------------------------------------------------------------------------------------


def _zipf_ranks(rng: np.random.Generator, n: int, cardinality: int, exponent: float) -> np.ndarray:
    """Ranks in [0, cardinality) with P(rank = k) ~ (k + 1)^-exponent (continuous bounded power law)."""
    u = rng.random(n)
    a = 1.0 - exponent
    x = (1.0 + u * ((cardinality + 1.0) ** a - 1.0)) ** (1.0 / a)
    return np.minimum(x.astype(np.int64) - 1, cardinality - 1)


def _solve_intercept(logit: np.ndarray, target: float) -> float:
    """b such that mean(sigmoid(logit + b)) == target (Newton's method; the mean is monotone in b)."""
    b = float(np.log(target / (1.0 - target)))
    for _ in range(30):
        p = _sigmoid(logit + b)
        gap = float(p.mean()) - target
        if abs(gap) < 1e-7:
            break
        b -= gap / max(float((p * (1.0 - p)).mean()), 1e-6)
    return b


def make_ctr_dataset(
    n_rows: int = 100_000, seed: int = 0, n_dense: int = 13, n_sparse: int = 26
) -> pd.DataFrame:
    """A Criteo-like click log with a planted signal that rewards feature crosses.

    Columns: ``label`` (int64 0/1), ``I1..I{n_dense}`` (float32 heavy-tailed non-negative counts) and
    ``C1..C{n_sparse}`` (pandas ``str``: 8-digit lowercase hex, like Criteo's hashed values).

    Generative model
    ----------------
    * Column ``Cj`` has ``CTR_CARDINALITIES[(j - 1) % 26]`` possible values (3 .. ~1M); a row's value has
      Zipf rank k ~ (k + 1)^-``CTR_ZIPF_EXPONENT`` and is written as the hex of a per-column bijective
      32-bit hash of k (distinct ranks give distinct strings). ``CTR_SPARSE_NULL_COLUMNS`` are null in
      ``CTR_SPARSE_NULL_RATE`` of the rows.
    * Dense ``Id`` = floor(exp(m_d + s_d (0.6 a + 0.8 e)) - 1) with a shared per-row activity a and
      independent e (both standard normal), so counts are heavy-tailed, correlated and >= 0;
      ``CTR_DENSE_NULL_COLUMNS`` are NaN in ``CTR_DENSE_NULL_RATE`` of the rows.
    * Click logit = intercept
      + sum over ``CTR_FIRST_ORDER_COLUMNS`` of a per-value effect w_j[v] ~ N(0, 0.45^2)
      + sum over I1..I6 of beta_d x standardized log1p(I_d)
      + sum over ``CTR_INTERACTION_PAIRS`` (i, j) of <z_i[v_i], z_j[v_j]>, with ``CTR_LATENT_DIM``-dim
        latent vectors z ~ N(0, 0.8^2 I) per value (a factorization machine's exact form)
      + standardized log1p(I2) x g[v_C9] with g ~ N(0, 0.8^2) (``CTR_DENSE_CROSS``),
      where null / NaN inputs contribute 0. The intercept is solved so that the mean click probability is
      ``CTR_POSITIVE_RATE``; ``label`` ~ Bernoulli(sigmoid(logit)). Interactions (and effects) whose columns
      are absent for the requested ``n_dense`` / ``n_sparse`` are skipped.

    Raises ``ValueError`` for non-positive sizes.
    """
    n_rows = _check_size("n_rows", n_rows)
    n_dense = _check_size("n_dense", n_dense)
    n_sparse = _check_size("n_sparse", n_sparse)
    rng = np.random.default_rng(seed)
    logit = np.zeros(n_rows, dtype=np.float64)
    data: dict[str, Any] = {}

    # Dense counts.
    activity = rng.standard_normal(n_rows)
    dense_z: dict[int, np.ndarray] = {}
    for d in range(n_dense):
        m, s = _CTR_DENSE_LOG_MEDIAN[d % 13], _CTR_DENSE_LOG_SPREAD[d % 13]
        noise = 0.6 * activity + 0.8 * rng.standard_normal(n_rows)
        values = np.floor(np.maximum(np.exp(m + s * noise) - 1.0, 0.0)).astype(np.float32)
        if d in CTR_DENSE_NULL_COLUMNS:
            values[_null_positions(rng, n_rows, CTR_DENSE_NULL_RATE)] = np.nan
        data[f"I{d + 1}"] = values
        logv = np.log1p(values.astype(np.float64))
        seen = logv[~np.isnan(logv)]
        if seen.size:
            logv = (logv - seen.mean()) / (seen.std() + 1e-9)
        dense_z[d] = np.nan_to_num(logv, nan=0.0)
        if d < len(_CTR_DENSE_WEIGHTS):
            logit += _CTR_DENSE_WEIGHTS[d] * dense_z[d]

    # Categorical values.
    ranks: dict[int, np.ndarray] = {}
    present: dict[int, np.ndarray] = {}
    salts = rng.integers(0, 2**32, size=n_sparse, dtype=np.uint64)
    for j in range(n_sparse):
        card = CTR_CARDINALITIES[j % len(CTR_CARDINALITIES)]
        rank = _zipf_ranks(rng, n_rows, card, CTR_ZIPF_EXPONENT)
        valid = np.ones(n_rows, dtype=bool)
        if j in CTR_SPARSE_NULL_COLUMNS:
            valid = ~_null_mask(rng, n_rows, CTR_SPARSE_NULL_RATE)
        hashed = _fmix32((rank.astype(np.uint64) + salts[j]) & np.uint64(0xFFFFFFFF))
        data[f"C{j + 1}"] = _string_column(_fixed_width_strings(_hex_matrix(hashed, 8), valid))
        ranks[j], present[j] = rank, valid
        if j in CTR_FIRST_ORDER_COLUMNS:
            effect = _CTR_FIRST_ORDER_SCALE * rng.standard_normal(card)
            logit += np.where(valid, effect[rank], 0.0)

    # Pairwise interactions between latent vectors of values.
    latent: dict[int, np.ndarray] = {}
    for i, j in CTR_INTERACTION_PAIRS:
        if i >= n_sparse or j >= n_sparse:
            continue
        for c in (i, j):
            if c not in latent:
                card = CTR_CARDINALITIES[c % len(CTR_CARDINALITIES)]
                table = _CTR_LATENT_SCALE * rng.standard_normal((card, CTR_LATENT_DIM))
                latent[c] = np.where(present[c][:, None], table[ranks[c]], 0.0)
        logit += np.einsum("ij,ij->i", latent[i], latent[j])
    d, c = CTR_DENSE_CROSS
    if d < n_dense and c < n_sparse:
        weight = _CTR_DENSE_CROSS_SCALE * rng.standard_normal(CTR_CARDINALITIES[c % len(CTR_CARDINALITIES)])
        logit += dense_z[d] * np.where(present[c], weight[ranks[c]], 0.0)

    logit += _solve_intercept(logit, CTR_POSITIVE_RATE)
    label = (rng.random(n_rows) < _sigmoid(logit)).astype(np.int64)
    return pd.DataFrame({"label": label, **data}, copy=False)
