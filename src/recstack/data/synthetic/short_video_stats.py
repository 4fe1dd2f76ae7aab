"""Per-entity numeric columns of the synthetic short-video log: user, item and creator statistics."""

from __future__ import annotations

import numpy as np

from recstack.data.short_video_schema import ITEM_NUMERIC, RAW_DTYPES, USER_NUMERIC
from recstack.data.synthetic.sampling import _binomial, _lognormal_counts, _ratio, _sigmoid, _softmax
from recstack.data.synthetic.short_video_vocab import WINDOW_START

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
