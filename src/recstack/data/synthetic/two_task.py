"""A synthetic two-task log (:func:`make_two_task_dataset`): clicks, purchases and watch time with shared and
task-specific planted signal, for the multi-task models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recstack.data.synthetic.ctr import _solve_intercept
from recstack.data.synthetic.sampling import _check_size, _sigmoid
from recstack.features.columns import DenseFeat, SparseFeat

TWO_TASK_SEGMENTS: int = 8  # user_segment values
TWO_TASK_CATEGORIES: int = 16  # item_category values
TWO_TASK_HOURS: int = 24
TWO_TASK_LATENT_DIM: int = 4
TWO_TASK_CLICK_RATE: float = 0.30  # the click intercept is solved so that the mean click probability is this
TWO_TASK_CONVERSION_RATE: float = 0.30  # mean conversion probability of a click
TWO_TASK_SPARSE: tuple[str, ...] = ("user_id", "item_id", "user_segment", "item_category", "hour")
TWO_TASK_DENSE: tuple[str, ...] = ("price", "user_activity")
TWO_TASK_TARGETS: tuple[str, ...] = ("click", "purchase", "watch_time")


def make_two_task_dataset(n_rows: int = 50_000, n_users: int = 1000, n_items: int = 500, seed: int = 0) -> pd.DataFrame:
    """An impression log with two related outcomes per row and a planted signal for each.

    Columns: ``user_id`` (``[0, n_users)``), ``item_id`` (``[0, n_items)``), ``user_segment``,
    ``item_category``, ``hour`` (int64 ids), ``price``, ``user_activity`` (float32, standardized) and the
    targets ``click`` (0/1), ``purchase`` (0/1: clicked and converted, the CTCVR label) and ``watch_time``
    (float32, a regression target).

    Generative model
    ----------------
    Every user has a segment, an activity level and latent vectors; every item a category, a price and latent
    vectors (all ``N(0, 1)`` unless said; latent dot products are scaled by ``1/sqrt(TWO_TASK_LATENT_DIM)``).
    With ``shared = S[segment, category] + 0.5 <a_u, b_i>`` (the signal both tasks share; ``S ~ N(0, 1)``):

    * click logit = intercept + 1.2 shared + 0.6 <c_u, d_i> + 0.5 activity + h[hour] (``h ~ N(0, 0.3^2)``);
      the intercept gives a mean click probability of ``TWO_TASK_CLICK_RATE``;
    * conversion logit (given a click) = intercept + 1.2 shared + 0.6 <e_u, f_i> - 0.7 price, for a mean
      conversion probability of ``TWO_TASK_CONVERSION_RATE``; ``purchase = click * conversion``;
    * ``watch_time`` = 0.6 shared + 0.5 <e_u, f_i> - 0.3 price + 0.5 noise.

    Deterministic under ``seed``; vectorised (entity tables gathered by index). Raises ``ValueError``
    (``TypeError``) for non-positive (non-integer) sizes.
    """
    n_rows = _check_size("n_rows", n_rows)
    n_users = _check_size("n_users", n_users)
    n_items = _check_size("n_items", n_items)
    rng = np.random.default_rng(seed)
    k = TWO_TASK_LATENT_DIM
    scale = 1.0 / np.sqrt(k)
    segment = rng.integers(0, TWO_TASK_SEGMENTS, n_users)
    activity = rng.standard_normal(n_users)
    category = rng.integers(0, TWO_TASK_CATEGORIES, n_items)
    price = rng.standard_normal(n_items)
    a, b = rng.standard_normal((n_users, k)), rng.standard_normal((n_items, k))
    c, d = rng.standard_normal((n_users, k)), rng.standard_normal((n_items, k))
    e, f = rng.standard_normal((n_users, k)), rng.standard_normal((n_items, k))
    pair = rng.standard_normal((TWO_TASK_SEGMENTS, TWO_TASK_CATEGORIES))
    hour_effect = 0.3 * rng.standard_normal(TWO_TASK_HOURS)

    user = rng.integers(0, n_users, n_rows)
    item = rng.integers(0, n_items, n_rows)
    hour = rng.integers(0, TWO_TASK_HOURS, n_rows)
    shared = pair[segment[user], category[item]] + 0.5 * scale * np.einsum("ij,ij->i", a[user], b[item])
    click_own = scale * np.einsum("ij,ij->i", c[user], d[item])
    conv_own = scale * np.einsum("ij,ij->i", e[user], f[item])

    click_logit = 1.2 * shared + 0.6 * click_own + 0.5 * activity[user] + hour_effect[hour]
    click_logit += _solve_intercept(click_logit, TWO_TASK_CLICK_RATE)
    conv_logit = 1.2 * shared + 0.6 * conv_own - 0.7 * price[item]
    conv_logit += _solve_intercept(conv_logit, TWO_TASK_CONVERSION_RATE)
    click = rng.random(n_rows) < _sigmoid(click_logit)
    conversion = rng.random(n_rows) < _sigmoid(conv_logit)
    watch = 0.6 * shared + 0.5 * conv_own - 0.3 * price[item] + 0.5 * rng.standard_normal(n_rows)
    return pd.DataFrame(
        {
            "user_id": user.astype(np.int64),
            "item_id": item.astype(np.int64),
            "user_segment": segment[user].astype(np.int64),
            "item_category": category[item].astype(np.int64),
            "hour": hour.astype(np.int64),
            "price": price[item].astype(np.float32),
            "user_activity": activity[user].astype(np.float32),
            "click": click.astype(np.int64),
            "purchase": (click & conversion).astype(np.int64),
            "watch_time": watch.astype(np.float32),
        }
    )


def two_task_feature_columns(
    n_users: int = 1000, n_items: int = 500, embedding_dim: int = 8
) -> list[SparseFeat | DenseFeat]:
    """The feature columns of :func:`make_two_task_dataset` (its ids are already encoded)."""
    sizes = {
        "user_id": n_users,
        "item_id": n_items,
        "user_segment": TWO_TASK_SEGMENTS,
        "item_category": TWO_TASK_CATEGORIES,
        "hour": TWO_TASK_HOURS,
    }
    sparse = [SparseFeat(name, sizes[name], embedding_dim=embedding_dim) for name in TWO_TASK_SPARSE]
    return [*sparse, *(DenseFeat(name, 1) for name in TWO_TASK_DENSE)]
