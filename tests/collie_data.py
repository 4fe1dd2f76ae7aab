"""Small implicit data with a planted signal for the Collie-style model tests."""

import numpy as np
import torch

from recstack.data.interactions import Interactions, InteractionsDataLoader


def planted_interactions(seed=0, n_users=120, n_items=80, rank=3, per_user=16, n_test=4, negatives=3):
    """Users pick items by latent taste plus item popularity; ``n_test`` picks per user held out.

    Returns (train, test, genre) where ``genre`` [n_items] is each item's strongest latent factor (a bucket
    that carries signal).
    """
    rng = np.random.default_rng(seed)
    item_factors = rng.normal(size=(n_items, rank))
    taste = 2.0 * rng.normal(size=(n_users, rank)) @ item_factors.T + 0.5 * rng.normal(size=n_items)
    chosen = np.argsort(-(taste + rng.gumbel(size=taste.shape)), axis=1)[:, :per_user]
    users = np.repeat(np.arange(n_users)[:, None], per_user, 1)
    held = np.zeros_like(chosen, dtype=bool)
    held[:, :n_test] = True

    def make(mask):
        return Interactions(
            users=users[mask],
            items=chosen[mask],
            num_users=n_users,
            num_items=n_items,
            num_negative_samples=negatives,
            allow_missing_ids=True,
            seed=seed,
        )

    return make(~held), make(held), np.argmax(item_factors, 1)


def loader(interactions, batch_size=128, shuffle=True):
    return InteractionsDataLoader(interactions=interactions, batch_size=batch_size, shuffle=shuffle)


def heldout_auc(model, train, test):
    """Mean over users of the AUC of held-out items against items the user never picked (train items left out)."""
    scores = model.full_scores(torch.arange(train.num_users)).cpu().numpy()
    train_csr, test_csr = train.csr(), test.csr()
    aucs = []
    for user in range(train.num_users):
        pos = test_csr[user].indices
        if len(pos) == 0:
            continue
        neg = np.setdiff1d(np.arange(train.num_items), np.concatenate([pos, train_csr[user].indices]))
        s = scores[user]
        aucs.append(((s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])).mean())
    return float(np.mean(aucs))
