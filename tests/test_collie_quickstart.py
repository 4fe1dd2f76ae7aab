"""Collie's quick start, imports swapped to ``recstack.collie``, on a slice of MovieLens 100K."""

import pytest
import torch

from recstack.errors import MissingDependencyError


class RandomScores:
    """A model that scores every item at random (the floor the quick start's model must clear)."""

    def __init__(self, num_items):
        self.num_items = num_items
        self.generator = torch.Generator().manual_seed(0)

    def full_scores(self, user_ids):
        return torch.rand(len(user_ids), self.num_items, generator=self.generator)


def test_quickstart_on_a_movielens_slice():
    from recstack.collie.cross_validation import stratified_split
    from recstack.collie.interactions import Interactions
    from recstack.collie.metrics import auc, evaluate_in_batches, mapk, mrr
    from recstack.collie.model import CollieTrainer, MatrixFactorizationModel
    from recstack.collie.movielens import read_movielens_df
    from recstack.collie.utils import convert_to_implicit

    torch.set_num_threads(1)
    torch.manual_seed(0)
    try:
        df = read_movielens_df()
    except MissingDependencyError as err:
        pytest.skip(f"MovieLens 100K is not installed: {err}")
    df = df[df["user_id"] < 150]  # the slice: 150 of 943 users, all their ratings

    # the quick start from here on (Collie 1.1.2 docs, "Quick Start: Implicit Data")
    df_imp = convert_to_implicit(df)
    interactions = Interactions(users=df_imp["user_id"], items=df_imp["item_id"], allow_missing_ids=True)
    train, val = stratified_split(interactions)
    model = MatrixFactorizationModel(train=train, val=val, embedding_dim=10, lr=1e-1, loss="adaptive", optimizer="adam")
    trainer = CollieTrainer(model, max_epochs=10, verbosity=0)
    trainer.fit(model)
    model.eval()
    auc_score, mrr_score, mapk_score = evaluate_in_batches(
        metric_list=[auc, mrr, mapk], test_interactions=val, model=model, verbose=False
    )

    floor = evaluate_in_batches([auc, mrr, mapk], val, RandomScores(model.num_items), verbose=False)
    # measured on this slice (torch seeds 0-2): AUC 0.80-0.81, MRR 0.19-0.22, MAP@10 0.036-0.042; a random
    # scorer 0.49-0.50, 0.025-0.039, 0.001-0.0025
    assert floor[0] == pytest.approx(0.5, abs=0.03)
    assert auc_score > floor[0] + 0.2
    assert mrr_score > 3 * floor[1]
    assert mapk_score > 3 * floor[2]
