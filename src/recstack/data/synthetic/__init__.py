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

The package: `sampling` (helpers both generators share), `short_video_vocab` (the short-video vocabularies and
knobs), `short_video_stats` (its per-user, per-item and per-creator numeric columns), `short_video` and `ctr`
(the generators).
"""

from recstack.data.synthetic.ctr import (
    CTR_CARDINALITIES,
    CTR_DENSE_CROSS,
    CTR_DENSE_NULL_COLUMNS,
    CTR_DENSE_NULL_RATE,
    CTR_FIRST_ORDER_COLUMNS,
    CTR_INTERACTION_PAIRS,
    CTR_LATENT_DIM,
    CTR_POSITIVE_RATE,
    CTR_SPARSE_NULL_COLUMNS,
    CTR_SPARSE_NULL_RATE,
    CTR_ZIPF_EXPONENT,
    make_ctr_dataset,
)
from recstack.data.synthetic.short_video import make_short_video_dataset, short_video_label
from recstack.data.synthetic.short_video_vocab import (
    ANDROID_VERSIONS,
    CONNECTIONS,
    CREATOR_LEVELS,
    CREATOR_USER_TYPES,
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
