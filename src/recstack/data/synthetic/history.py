"""A synthetic impression log with behaviour histories (:func:`make_history_dataset`), for DIN and DIEN: whether a
user clicks a candidate depends on how well it matches the categories of the items the user just interacted with."""

import numpy as np

from recstack.data.synthetic.ctr import _solve_intercept
from recstack.data.synthetic.sampling import _check_size, _sigmoid
from recstack.errors import ArgumentError
from recstack.features.columns import SparseFeat, VarLenSparseFeat

HISTORY_CLICK_RATE: float = 0.30  # the intercept is solved so that the mean click probability is this
HISTORY_INTERESTS: int = 2  # categories a row's current interest spans
HISTORY_OWN_INTEREST_RATE: float = 0.5  # share of rows whose current interest is the user's long-term one
HISTORY_ON_INTEREST_RATE: float = 0.85  # share of history items drawn from the current interest
HISTORY_MATCH_WEIGHT: float = 5.0  # logit per unit of recency-weighted category match
HISTORY_RECENCY: float = 0.9  # weight of the history item at position t is HISTORY_RECENCY ** t (latest first)
HISTORY_ITEM_BIAS: float = 0.3  # standard deviation of the per-item logit bias


def make_history_dataset(
    n_rows: int = 20_000,
    n_users: int = 2000,
    n_items: int = 500,
    n_categories: int = 20,
    maxlen: int = 20,
    seed: int = 0,
    negatives: bool = False,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Impressions ``x`` (model inputs, ids already encoded, 0 is padding) and 0/1 clicks ``y``.

    Inputs: ``user_id`` (``1..n_users``), ``item_id`` (the candidate, ``1..n_items``), ``cate_id`` (its category,
    ``1..n_categories``), ``hist_item_id`` and ``hist_cate_id`` (``[n_rows, maxlen]``, the latest item first,
    zero-padded past ``seq_length``), ``seq_length`` (``1..maxlen``) and, with ``negatives``, ``neg_hist_item_id``
    and ``neg_hist_cate_id`` (a uniformly sampled item per history position, for DIEN's auxiliary loss).

    Generative model
    ----------------
    Every item has a category and a logit bias ``N(0, HISTORY_ITEM_BIAS^2)``; every user a long-term interest of
    ``HISTORY_INTERESTS`` categories. A row's current interest is the user's (probability
    ``HISTORY_OWN_INTEREST_RATE``) or a fresh random one; its history items come from the current interest with
    probability ``HISTORY_ON_INTEREST_RATE`` (uniform otherwise), and the candidate is an item of the current
    interest or a uniform item with equal odds. With ``match`` the recency-weighted share of history items in the
    candidate's category (weights ``HISTORY_RECENCY ** t``), the click logit is
    ``intercept + HISTORY_MATCH_WEIGHT * match + bias[item]``, the intercept giving a mean click probability of
    ``HISTORY_CLICK_RATE``. The user id alone explains part of the interest; the history explains it all.

    Deterministic under ``seed``; vectorised. Raises ``TypeError`` / ``ValueError`` for bad sizes.
    """
    n_rows = _check_size("n_rows", n_rows)
    n_users = _check_size("n_users", n_users)
    n_items = _check_size("n_items", n_items)
    n_categories = _check_size("n_categories", n_categories)
    maxlen = _check_size("maxlen", maxlen)
    if n_categories < HISTORY_INTERESTS or n_items < n_categories:
        raise ArgumentError(
            f"make_history_dataset: needs n_categories >= {HISTORY_INTERESTS} and n_items >= n_categories, got "
            f"n_categories={n_categories}, n_items={n_items}"
        )
    rng = np.random.default_rng(seed)
    # items 1..n_items, every category non-empty; items of category c are by_cat[start[c] : start[c] + count[c]]
    item_cat = np.concatenate([np.arange(n_categories), rng.integers(0, n_categories, n_items - n_categories)])
    rng.shuffle(item_cat)
    by_cat = np.argsort(item_cat, kind="stable") + 1
    count = np.bincount(item_cat, minlength=n_categories)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    item_bias = HISTORY_ITEM_BIAS * rng.standard_normal(n_items + 1)
    user_interest = _random_interests(rng, n_users, n_categories)

    user = rng.integers(0, n_users, n_rows)
    fresh = _random_interests(rng, n_rows, n_categories)
    own = rng.random(n_rows) < HISTORY_OWN_INTEREST_RATE
    interest = np.where(own[:, None], user_interest[user], fresh)  # [n_rows, HISTORY_INTERESTS]

    def item_of(categories: np.ndarray) -> np.ndarray:
        return by_cat[start[categories] + (rng.random(categories.shape) * count[categories]).astype(np.int64)]

    def interest_items(shape: tuple[int, ...]) -> np.ndarray:
        pick = rng.integers(0, HISTORY_INTERESTS, shape)
        cats = np.take_along_axis(interest, pick.reshape(n_rows, -1), 1).reshape(shape)
        return item_of(cats)

    length = rng.integers(1, maxlen + 1, n_rows)
    on_interest = rng.random((n_rows, maxlen)) < HISTORY_ON_INTEREST_RATE
    hist = np.where(on_interest, interest_items((n_rows, maxlen)), rng.integers(1, n_items + 1, (n_rows, maxlen)))
    valid = np.arange(maxlen)[None, :] < length[:, None]
    hist = np.where(valid, hist, 0)
    hist_cate = np.where(valid, item_cat[np.maximum(hist, 1) - 1] + 1, 0)

    candidate = np.where(rng.random(n_rows) < 0.5, interest_items((n_rows,)), rng.integers(1, n_items + 1, n_rows))
    cand_cate = item_cat[candidate - 1] + 1
    weight = HISTORY_RECENCY ** np.arange(maxlen)[None, :] * valid
    match = ((hist_cate == cand_cate[:, None]) * weight).sum(1) / weight.sum(1)
    logit = HISTORY_MATCH_WEIGHT * match + item_bias[candidate]
    logit += _solve_intercept(logit, HISTORY_CLICK_RATE)
    y = (rng.random(n_rows) < _sigmoid(logit)).astype(np.int64)

    x = {
        "user_id": (user + 1).astype(np.int64),
        "item_id": candidate.astype(np.int64),
        "cate_id": cand_cate.astype(np.int64),
        "hist_item_id": hist.astype(np.int64),
        "hist_cate_id": hist_cate.astype(np.int64),
        "seq_length": length.astype(np.int64),
    }
    if negatives:
        neg = np.where(valid, rng.integers(1, n_items + 1, (n_rows, maxlen)), 0)
        x["neg_hist_item_id"] = neg.astype(np.int64)
        x["neg_hist_cate_id"] = np.where(valid, item_cat[np.maximum(neg, 1) - 1] + 1, 0).astype(np.int64)
    return x, y


def history_feature_columns(
    n_users: int = 2000,
    n_items: int = 500,
    n_categories: int = 20,
    maxlen: int = 20,
    embedding_dim: int = 8,
    history: bool = True,
    negatives: bool = False,
) -> list[SparseFeat | VarLenSparseFeat]:
    """The feature columns of :func:`make_history_dataset`: the histories share the candidate's tables
    (``embedding_name``) and the ``seq_length`` column; ``history=False`` leaves the sequences out."""
    columns: list[SparseFeat | VarLenSparseFeat] = [
        SparseFeat("user_id", n_users + 1, embedding_dim=embedding_dim),
        SparseFeat("item_id", n_items + 1, embedding_dim=embedding_dim),
        SparseFeat("cate_id", n_categories + 1, embedding_dim=embedding_dim),
    ]
    prefixes = (["hist_"] if history else []) + (["neg_hist_"] if history and negatives else [])
    for prefix in prefixes:
        for name, size in (("item_id", n_items + 1), ("cate_id", n_categories + 1)):
            sparse = SparseFeat(prefix + name, size, embedding_dim=embedding_dim, embedding_name=name)
            columns.append(VarLenSparseFeat(sparse, maxlen=maxlen, length_name="seq_length"))
    return columns


def _random_interests(rng: np.random.Generator, n: int, n_categories: int) -> np.ndarray:
    """``[n, HISTORY_INTERESTS]`` distinct categories per row."""
    return np.argsort(rng.random((n, n_categories)), axis=1)[:, :HISTORY_INTERESTS]
