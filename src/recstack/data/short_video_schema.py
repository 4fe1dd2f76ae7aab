"""Column schema of the short-video two-tower dataset (the production V1 spec).

Everything here is transcribed from the V1 spec and its example input batch and hard-coded: the package
never reads the spec at run time.

* Numerical feature names are kept EXACTLY as the spec writes them, including the twelve mixed-case
  ``item_timespent_*To*`` / ``item_timespent_Gt60`` columns: the spec's pipeline lower-cases column names
  ("Convert feature names to lower case") before hashing / imputing, and the raw data must exercise that.
* :data:`DTYPES` is keyed by the LOWER-CASED names, exactly as the example batch shows them, and gives the
  NumPy dtype the batch holds (categoricals are int64 there because they arrive already xxhash-ed).
* :data:`RAW_DTYPES` is keyed by the raw (spec-case) column names and gives the dtype of the raw table that
  :func:`recstack.data.synthetic.make_short_video_dataset` produces: identical to :data:`DTYPES` except
  that categorical columns are strings (pandas ``str``) before hashing.

Nulls, per the spec: numerical features are imputed by -1, categorical ones by the string "NA" before
hashing, and latitude / longitude by -1.0.
"""

from __future__ import annotations

__all__ = [
    "USER_NUMERIC",
    "USER_CATEGORICAL",
    "LOCATION",
    "ITEM_NUMERIC",
    "ITEM_CATEGORICAL",
    "TRAIN_NUMERIC",
    "TRAIN_CATEGORICAL",
    "EXTRA_COLUMNS",
    "BATCH_COLUMNS",
    "DTYPES",
    "RAW_DTYPES",
    "STRING_DTYPE",
    "LABEL_WATCH_FRACTION",
    "LABEL_WATCH_SECONDS",
]

# "V1 Numerical features for user tower", in the spec's order (132 names).
USER_NUMERIC: tuple[str, ...] = (
    "user_overall_short_loop", "user_overall_short_like", "user_overall_short_share",
    "user_overall_short_comment", "user_overall_short_download", "user_overall_short_timespent_le_5sec",
    "user_overall_short_timespent_gt_5sec", "user_overall_short_timespent_gt_10sec",
    "user_overall_short_timespent_gt_20sec", "user_overall_short_timespent_gt_30sec",
    "user_overall_short_timespent_gt_60sec", "user_overall_short_timespent_gt_120sec",
    "user_overall_short_pcc_0_5", "user_overall_short_pcc_5_20", "user_overall_short_pcc_20_40",
    "user_overall_short_pcc_40_60", "user_overall_short_pcc_60_70", "user_overall_short_pcc_70_80",
    "user_overall_short_pcc_80_90", "user_overall_short_pcc_90_100", "user_overall_short_dislike",
    "user_overall_short_lp_ctr", "user_overall_short_total_engaged", "user_overall_short_total_plays",
    "user_overall_short_ctr", "user_overall_short_like_ctr", "user_overall_short_download_ctr",
    "user_overall_mid_loop", "user_overall_mid_like", "user_overall_mid_share", "user_overall_mid_comment",
    "user_overall_mid_download", "user_overall_mid_timespent_le_5sec", "user_overall_mid_timespent_gt_5sec",
    "user_overall_mid_timespent_gt_10sec", "user_overall_mid_timespent_gt_20sec",
    "user_overall_mid_timespent_gt_30sec", "user_overall_mid_timespent_gt_60sec",
    "user_overall_mid_timespent_gt_120sec", "user_overall_mid_pcc_0_5", "user_overall_mid_pcc_5_20",
    "user_overall_mid_pcc_20_40", "user_overall_mid_pcc_40_60", "user_overall_mid_pcc_60_70",
    "user_overall_mid_pcc_70_80", "user_overall_mid_pcc_80_90", "user_overall_mid_pcc_90_100",
    "user_overall_mid_dislike", "user_overall_mid_lp_ctr", "user_overall_mid_total_engaged",
    "user_overall_mid_total_plays", "user_overall_mid_ctr", "user_overall_mid_like_ctr",
    "user_overall_mid_download_ctr", "user_overall_life_like", "user_overall_life_share",
    "user_overall_life_comment", "user_overall_life_download", "user_overall_life_timespent_le_5sec",
    "user_overall_life_timespent_gt_5sec", "user_overall_life_timespent_gt_10sec",
    "user_overall_life_timespent_gt_20sec", "user_overall_life_timespent_gt_30sec",
    "user_overall_life_timespent_gt_60sec", "user_overall_life_timespent_gt_120sec",
    "user_overall_life_pcc_0_5", "user_overall_life_pcc_5_20", "user_overall_life_pcc_20_40",
    "user_overall_life_pcc_40_60", "user_overall_life_pcc_60_70", "user_overall_life_pcc_70_80",
    "user_overall_life_pcc_80_90", "user_overall_life_pcc_90_100", "user_overall_life_dislike",
    "user_overall_life_lp_ctr", "user_overall_life_total_engaged", "user_overall_life_total_plays",
    "user_overall_life_ctr", "user_overall_life_like_ctr", "user_overall_life_download_ctr",
    "user_creator_life_like", "user_creator_life_share", "user_creator_life_comment",
    "user_creator_life_download", "user_creator_life_timespent_le_5sec",
    "user_creator_life_timespent_gt_5sec", "user_creator_life_timespent_gt_10sec",
    "user_creator_life_timespent_gt_20sec", "user_creator_life_timespent_gt_30sec",
    "user_creator_life_timespent_gt_60sec", "user_creator_life_timespent_gt_120sec",
    "user_creator_life_pcc_0_5", "user_creator_life_pcc_5_20", "user_creator_life_pcc_20_40",
    "user_creator_life_pcc_40_60", "user_creator_life_pcc_60_70", "user_creator_life_pcc_70_80",
    "user_creator_life_pcc_80_90", "user_creator_life_pcc_90_100", "user_creator_life_dislike",
    "user_creator_life_lp_ctr", "user_creator_life_total_engaged", "user_creator_life_total_plays",
    "user_creator_life_ctr", "user_creator_life_like_ctr", "user_creator_life_download_ctr",
    "user_tpv_life_like", "user_tpv_life_share", "user_tpv_life_comment", "user_tpv_life_download",
    "user_tpv_life_timespent_le_5sec", "user_tpv_life_timespent_gt_5sec",
    "user_tpv_life_timespent_gt_10sec", "user_tpv_life_timespent_gt_20sec",
    "user_tpv_life_timespent_gt_30sec", "user_tpv_life_timespent_gt_60sec",
    "user_tpv_life_timespent_gt_120sec", "user_tpv_life_pcc_0_5", "user_tpv_life_pcc_5_20",
    "user_tpv_life_pcc_20_40", "user_tpv_life_pcc_40_60", "user_tpv_life_pcc_60_70",
    "user_tpv_life_pcc_70_80", "user_tpv_life_pcc_80_90", "user_tpv_life_pcc_90_100",
    "user_tpv_life_dislike", "user_tpv_life_lp_ctr", "user_tpv_life_total_engaged",
    "user_tpv_life_total_plays", "user_tpv_life_ctr", "user_tpv_life_like_ctr",
    "user_tpv_life_download_ctr",
)

# "V1 Categorical (string) features for user tower".
USER_CATEGORICAL: tuple[str, ...] = (
    "client_id", "user_lang", "user_connection", "user_feed_source", "user_os_platform", "user_os_ver",
)

# "V1 Location features for user tower" (null imputed by -1.0).
LOCATION: tuple[str, ...] = ("latitude", "longitude")

# The item- and creator-side numerical features: "V1 All numerical features used in training" minus
# USER_NUMERIC, in the spec's order (118 names; the spec lists these first, then the user ones).
ITEM_NUMERIC: tuple[str, ...] = (
    "video_length", "item_like_uu", "item_share_uu", "item_download_uu", "item_view_uu", "item_comment_uu",
    "item_engagement_uu", "item_timespent_0To3", "item_timespent_3To6", "item_timespent_6To9",
    "item_timespent_9To12", "item_timespent_12To15", "item_timespent_15To18", "item_timespent_18To21",
    "item_timespent_21To24", "item_timespent_24To30", "item_timespent_30To40", "item_timespent_40To60",
    "item_timespent_Gt60", "item_view_24h", "item_engagement_24h", "item_view_3d", "item_engagement_3d",
    "item_view_7d", "item_engagement_7d", "item_view_15d", "item_engagement_15d", "item_download_ctr",
    "item_share_ctr", "item_like_ctr", "item_ctr", "item_ctr_24hr", "item_ctr_3d", "item_ctr_7d",
    "item_ctr_15d", "item_like_24h", "item_share_24h", "item_like_3d", "item_share_3d", "item_like_7d",
    "item_share_7d", "item_like_15d", "item_share_15d", "item_like_ctr_24hr", "item_like_ctr_3d",
    "item_like_ctr_7d", "item_like_ctr_15d", "item_share_ctr_24hr", "item_share_ctr_3d",
    "item_share_ctr_7d", "item_share_ctr_15d", "item_publish_date_in_epoch", "creator_cv", "creator_pv",
    "creator_lp", "creator_lc", "creator_sc", "creator_cc", "creator_dl", "creator_ctr_12d",
    "creator_ctr_24h", "creator_ctr_3d", "creator_ctr_7d", "creator_cv_12d", "creator_cv_24h",
    "creator_cv_3d", "creator_cv_7d", "creator_dl_12d", "creator_dl_24h", "creator_dl_3d", "creator_dl_7d",
    "creator_lc_12d", "creator_lc_24h", "creator_lc_3d", "creator_lc_7d", "creator_pv_12d",
    "creator_pv_24h", "creator_pv_3d", "creator_pv_7d", "creator_sc_12d", "creator_sc_24h", "creator_sc_3d",
    "creator_sc_7d", "creator_videoposted", "creator_nsfwposted", "creator_pcc05", "creator_pcc520",
    "creator_pcc2040", "creator_pcc4060", "creator_pcc6070", "creator_pcc7080", "creator_pcc8090",
    "creator_pcc90100", "creator_viewle20", "creator_viewle50", "creator_viewle100", "creator_viewle500",
    "creator_viewle1000", "creator_viewle10000", "creator_viewle50000", "creator_viewle100000",
    "creator_viewle500000", "creator_viewle1000000", "creator_viewle5000000", "creator_viewle100000000",
    "creator_viewgt100000000", "creator_daysvideoposted", "creator_timespent_le_5sec",
    "creator_timespent_gt_5sec", "creator_timespent_gt_10sec", "creator_timespent_gt_20sec",
    "creator_timespent_gt_30sec", "creator_timespent_gt_60sec", "creator_timespent_gt_120sec",
    "creator_ctr", "creator_download_ctr", "creator_share_ctr", "creator_like_ctr",
)

# "V1 All numerical features used in training", in the spec's order (250 names, mixed case kept).
TRAIN_NUMERIC: tuple[str, ...] = ITEM_NUMERIC + USER_NUMERIC

# "V1 All categorical (string) features used in training", in the spec's order.
TRAIN_CATEGORICAL: tuple[str, ...] = (
    "client_id", "creator_id", "item_id", "item_lang", "user_lang", "user_connection", "user_feed_source",
    "creator_level", "creator_user_type", "user_os_platform", "user_os_ver",
)

# Categorical features of the item tower: TRAIN_CATEGORICAL minus USER_CATEGORICAL.
ITEM_CATEGORICAL: tuple[str, ...] = (
    "item_id", "creator_id", "item_lang", "creator_level", "creator_user_type",
)

# Columns of the example batch that are not features: event time (epoch seconds), watch time (seconds)
# and watch fraction (the label is derived from the last two).
EXTRA_COLUMNS: tuple[str, ...] = ("play_timestamp", "e_watch_duration", "p_watch")

# Every key of the example batch, lower-cased, in the batch's order (266 names).
BATCH_COLUMNS: tuple[str, ...] = (
    TRAIN_CATEGORICAL
    + tuple(c.lower() for c in TRAIN_NUMERIC)
    + ("play_timestamp",)
    + LOCATION
    + ("e_watch_duration", "p_watch")
)

# Training label of the spec: "watch percentage > 0.85 or watch time > 60s".
LABEL_WATCH_FRACTION: float = 0.85
LABEL_WATCH_SECONDS: float = 60.0

# pandas' default string dtype (Arrow-backed ``str`` in pandas 3): categorical columns of the raw table.
STRING_DTYPE: str = "str"

# creator_* columns the example batch holds as int32 (the others are int64, or float32 for the ctr ones).
_CREATOR_INT32_PREFIXES: tuple[str, ...] = (
    "creator_videoposted", "creator_nsfwposted", "creator_pcc", "creator_view", "creator_daysvideoposted",
    "creator_timespent_",
)
_CREATOR_INT32_EXACT: frozenset[str] = frozenset(
    {"creator_cv", "creator_lp", "creator_lc", "creator_sc", "creator_cc", "creator_dl"}
)
_FIXED_DTYPES: dict[str, str] = {
    "video_length": "float32",
    "item_publish_date_in_epoch": "float64",
    "play_timestamp": "int64",
    "latitude": "float64",
    "longitude": "float64",
    "e_watch_duration": "float64",
    "p_watch": "float32",
}


def _batch_dtype(name: str) -> str:
    """NumPy dtype of a (lower-cased) column of the example batch.

    The rules reproduce the batch exactly (tests/test_synthetic.py checks them against the production example
    batch in tests/data): hashed categoricals are int64; ``*ctr*`` columns are float32; user_* counts are
    float64 (they come from left joins, hence nullable upstream); item_* counts are int64; creator_* counts
    are int32 for the lifetime totals / histograms and int64 for ``creator_pv`` and the windowed ones.
    """
    if name in _FIXED_DTYPES:
        return _FIXED_DTYPES[name]
    if name in TRAIN_CATEGORICAL:
        return "int64"
    if "ctr" in name:
        return "float32"
    if name.startswith("user_"):
        return "float64"
    if name.startswith("item_"):
        return "int64"
    if name.startswith("creator_"):
        if name in _CREATOR_INT32_EXACT or name.startswith(_CREATOR_INT32_PREFIXES):
            return "int32"
        return "int64"
    raise KeyError(f"no dtype rule for column {name!r}")


# NumPy dtype name of every column of the example batch, keyed by the lower-cased name (266 entries).
DTYPES: dict[str, str] = {name: _batch_dtype(name) for name in BATCH_COLUMNS}

# dtype of every column of the raw table, keyed by the raw (spec-case) name: DTYPES with string
# categoricals.
RAW_DTYPES: dict[str, str] = {
    **{name: STRING_DTYPE for name in TRAIN_CATEGORICAL},
    **{name: DTYPES[name.lower()] for name in TRAIN_NUMERIC},
    "play_timestamp": DTYPES["play_timestamp"],
    **{name: DTYPES[name] for name in LOCATION},
    "e_watch_duration": DTYPES["e_watch_duration"],
    "p_watch": DTYPES["p_watch"],
}
