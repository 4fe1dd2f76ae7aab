import numpy as np
import pytest
import torch

from collie_data import heldout_auc, loader, planted_interactions
from recstack.collie import model as collie_model
from recstack.collie.model import (
    ColdStartModel,
    CollaborativeMetricLearningModel,
    CollieMinimalTrainer,
    CollieTrainer,
    DeepFM,
    HybridModel,
    HybridPretrainedModel,
    MatrixFactorizationModel,
    MLPMatrixFactorizationModel,
    NeuralCollaborativeFiltering,
    NonlinearMatrixFactorizationModel,
    ScaledEmbedding,
)
from recstack.data.interactions import ExplicitInteractions
from recstack.errors import ArgumentError, FormatVersionError, OverwriteError, SchemaError
from recstack.models import DeepFM as CTRDeepFM
from recstack.models.retrieval import mf as recstack_mf
from recstack.models.retrieval.mf import MatrixFactorizationCore


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return planted_interactions(seed=0)


# name -> (constructor, keyword arguments, floor of the held-out AUC after 10 epochs)
# measured on this data (seeds 0 and 1, 10 epochs): MF 0.83-0.87, CML 0.77-0.88, NeuCF 0.75-0.79, DeepFM 0.82-0.84,
# nonlinear MF 0.70-0.75, MLP MF 0.63-0.72 (an MLP learns a dot product slowly); untrained 0.48-0.52
MODELS = {
    "mf": (MatrixFactorizationModel, dict(embedding_dim=8, lr=3e-2), 0.7),
    "cml": (CollaborativeMetricLearningModel, dict(embedding_dim=8, lr=3e-2), 0.65),
    "neucf": (NeuralCollaborativeFiltering, dict(embedding_dim=8, num_layers=2, lr=3e-2), 0.7),
    "deepfm": (DeepFM, dict(embedding_dim=8, num_layers=2, lr=3e-2), 0.7),
    "nonlinear": (
        NonlinearMatrixFactorizationModel,
        dict(
            user_embedding_dim=16,
            item_embedding_dim=16,
            user_dense_layers_dims=[16, 8],
            item_dense_layers_dims=[16, 8],
            lr=3e-2,
        ),
        0.62,
    ),
    "mlp": (MLPMatrixFactorizationModel, dict(embedding_dim=8, num_layers=2, lr=1e-2), 0.6),
}


def pair_scores(model, n_users, n_items):
    users = torch.arange(n_users).repeat_interleave(n_items)
    items = torch.arange(n_items).repeat(n_users)
    with torch.no_grad():
        return model(users, items).reshape(n_users, n_items)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_learns_scores_in_full_and_round_trips(data, name, tmp_path):
    train, test, _ = data
    cls, kwargs, floor = MODELS[name]
    torch.manual_seed(0)
    model = cls(train=loader(train), val=loader(test, shuffle=False), **kwargs)
    before = heldout_auc(model, train, test)
    trainer = CollieTrainer(model, max_epochs=10, verbosity=0)
    history = trainer.fit(model)
    after = heldout_auc(model, train, test)
    assert len(history.history["val_loss"]) == 10 and model.hparams.num_epochs_completed == 10
    assert after > floor and after > before + 0.08, (before, after)
    model.eval()
    full = model.full_scores(torch.arange(train.num_users))
    assert full.shape == (train.num_users, train.num_items)
    torch.testing.assert_close(full, pair_scores(model, train.num_users, train.num_items), rtol=1e-4, atol=1e-5)
    path = tmp_path / "model.pth"
    model.save_model(path)
    loaded = cls(load_model_path=path)
    assert not loaded.training and loaded.num_items == train.num_items
    torch.testing.assert_close(loaded.full_scores(torch.arange(7)), full[:7], rtol=0, atol=0)


def test_both_mf_constructors_score_with_one_core(data):
    train, _, _ = data
    collie_mf = MatrixFactorizationModel(train=train, embedding_dim=6)
    ours = recstack_mf.MatrixFactorizationModel(train.num_users, train.num_items, embedding_dim=6, use_bias=True)
    assert isinstance(collie_mf.model, MatrixFactorizationCore) and isinstance(ours, MatrixFactorizationCore)
    with torch.no_grad():
        ours.user_weights().normal_()
        ours.item_weights().normal_()
        ours.bias.table.tables()[0].weight.normal_()
    # the same weights in Collie's model (which adds a user bias, zero here) give the same scores
    collie_mf.model.load_state_dict(ours.state_dict(), strict=False)
    users, items = torch.tensor([0, 3, 119]), torch.tensor([5, 0, 79])
    batch = {"user_id": users, "item_id": items}
    torch.testing.assert_close(collie_mf(users, items), ours(batch).detach(), rtol=0, atol=0)
    torch.testing.assert_close(collie_mf.full_scores(users), ours.full_scores(users), rtol=0, atol=0)
    torch.testing.assert_close(ours.full_scores(users)[torch.arange(3), items], ours(batch).detach())


def test_mf_helpers_follow_collie(data):
    train, test, _ = data
    model = MatrixFactorizationModel(train=train, val=test, embedding_dim=6)
    preds = model.get_item_predictions(user_id=2, unseen_items_only=True)
    seen = set(train.csr()[2].indices) | set(test.csr()[2].indices)
    assert set(preds.index) == set(range(train.num_items)) - seen
    assert preds.is_monotonic_decreasing
    users = model.get_user_predictions(item_id=4)
    assert len(users) == train.num_users and users.is_monotonic_decreasing
    sims = model.item_item_similarity(4)
    assert sims.index[0] == 4 and sims.iloc[0] == pytest.approx(1.0)
    assert model.user_user_similarity(9).index[0] == 9
    with pytest.raises(ArgumentError, match="user_id 120"):
        model.get_item_predictions(user_id=120)


def test_callable_loss_gets_collie_arguments_and_partial_credit_metadata(data):
    train, _, _ = data
    genre = torch.arange(train.num_items) % 4
    seen = {}

    def loss(positive_scores, negative_scores, **kwargs):
        seen.update(kwargs, pos=positive_scores.shape, neg=negative_scores.shape)
        return torch.relu(1 - positive_scores[:, None] + negative_scores).mean()

    model = MatrixFactorizationModel(
        train=loader(train), loss=loss, metadata_for_loss={"genre": genre}, metadata_for_loss_weights={"genre": 0.3}
    )
    CollieTrainer(model, max_epochs=1, verbosity=0).fit(model)
    batch = len(seen["positive_items"])
    assert seen["pos"] == (batch,) and seen["neg"] == (batch, 3) and seen["negative_items"].shape == (batch, 3)
    assert seen["num_items"] == train.num_items and seen["metadata_weights"] == {"genre": 0.3}
    assert torch.equal(seen["metadata"]["genre"], genre)
    # the named losses take the same arguments: partial credit trains too
    credited = MatrixFactorizationModel(
        train=loader(train), loss="bpr", metadata_for_loss={"genre": genre}, metadata_for_loss_weights={"genre": 0.3}
    )
    history = CollieTrainer(credited, max_epochs=2, verbosity=0).fit(credited)
    assert np.isfinite(history.history["loss"]).all()


def test_loss_choice_follows_collie(data):
    from recstack import losses

    train, _, _ = data
    assert MatrixFactorizationModel(train=train, loss="hinge").loss_function is losses.adaptive_hinge_loss
    assert MatrixFactorizationModel(train=train, loss="adaptive").loss_function is losses.adaptive_hinge_loss
    assert MatrixFactorizationModel(train=train, loss="bpr").loss_function is losses.adaptive_bpr_loss
    assert MatrixFactorizationModel(train=train, loss="warp").loss_function is losses.warp_loss
    one = planted_interactions(seed=0, negatives=1)[0]
    assert MatrixFactorizationModel(train=one, loss="hinge").loss_function is losses.hinge_loss
    with pytest.raises(SchemaError, match="warp.*more than one negative"):
        MatrixFactorizationModel(train=one, loss="warp")
    with pytest.raises(SchemaError, match="unknown loss 'hnige'"):
        MatrixFactorizationModel(train=train, loss="hnige")
    with pytest.raises(SchemaError, match="explicit ratings"):
        MatrixFactorizationModel(train=train, loss="mse")


def test_explicit_ratings_train_with_mse_and_y_range():
    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 60, 3000), rng.integers(0, 40, 3000)
    truth = rng.normal(size=(60, 3)) @ rng.normal(size=(40, 3)).T
    ratings = np.clip(np.round(3 + truth[users, items]), 1, 5)
    data = ExplicitInteractions(users=users, items=items, ratings=ratings, num_users=60, num_items=40)
    torch.manual_seed(0)
    model = MatrixFactorizationModel(
        train=loader(data, batch_size=256), embedding_dim=6, lr=3e-2, loss="mse", y_range=(1, 5), bias_optimizer=None
    )
    history = CollieTrainer(model, max_epochs=12, verbosity=0).fit(model)
    kept = data.mat.tocsr()
    seen_users, seen_items = kept.nonzero()
    preds = model(torch.as_tensor(seen_users), torch.as_tensor(seen_items)).detach().numpy()
    actual = np.asarray(kept[seen_users, seen_items]).ravel()
    assert preds.min() >= 1 and preds.max() <= 5
    assert np.mean((preds - actual) ** 2) < 0.6 * np.var(actual)
    assert history.history["loss"][-1] < history.history["loss"][0]
    with pytest.raises(SchemaError, match="explicit ratings take 'mse', 'mae'"):
        MatrixFactorizationModel(train=data, loss="hinge")


def test_hybrid_pretrained_freeze_and_unfreeze(data, tmp_path):
    train, test, genre = data
    metadata = np.eye(genre.max() + 1)[genre]
    torch.manual_seed(0)
    mf = MatrixFactorizationModel(train=loader(train), embedding_dim=8, lr=3e-2)
    CollieTrainer(mf, max_epochs=4, verbosity=0).fit(mf)
    hybrid = HybridPretrainedModel(
        train=loader(train),
        val=loader(test, shuffle=False),
        item_metadata=metadata,
        trained_model=mf,
        combined_layers_dims=[16],
        lr=1e-2,
    )
    torch.testing.assert_close(hybrid.user_embeddings.weight, mf.model.user_weights())
    frozen = hybrid.item_embeddings.weight.clone()
    head = hybrid.head.combined_layers[0].weight.clone()
    CollieTrainer(hybrid, max_epochs=3, verbosity=0).fit(hybrid)
    assert torch.equal(hybrid.item_embeddings.weight, frozen)  # frozen: not trained
    assert not torch.equal(hybrid.head.combined_layers[0].weight, head)
    assert heldout_auc(hybrid, train, test) > 0.65
    hybrid.unfreeze_embeddings()
    trainer = CollieTrainer(hybrid, max_epochs=4, verbosity=0)
    trainer.fit(hybrid)
    assert not torch.equal(hybrid.item_embeddings.weight, frozen)
    assert torch.equal(mf.model.item_weights(), frozen)  # the pre-trained model kept its own weights
    hybrid.save_model(tmp_path / "hybrid")
    with pytest.raises(OverwriteError, match="overwrite=True"):
        hybrid.save_model(tmp_path / "hybrid")
    loaded = HybridPretrainedModel(load_model_path=tmp_path / "hybrid")
    torch.testing.assert_close(loaded.full_scores(torch.arange(5)), hybrid.full_scores(torch.arange(5)))
    with pytest.raises(SchemaError, match="one row per item"):
        HybridPretrainedModel(train=train, item_metadata=metadata[:-1], trained_model=mf)


def test_hybrid_metadata_rows_past_the_items_are_dropped(data):
    # Collie's tutorials pass metadata for the whole catalogue (1682 movies) to models whose interactions
    # reach fewer item ids (1674): the extra rows are ignored, and row i stays item i's metadata
    train, _, genre = data
    metadata = np.eye(genre.max() + 1)[genre]
    catalogue = np.vstack([metadata, np.ones((3, metadata.shape[1]))])
    torch.manual_seed(0)
    mf = MatrixFactorizationModel(train=loader(train), embedding_dim=8)
    with pytest.warns(UserWarning, match=f"{len(catalogue)} rows for {train.num_items} items"):
        hybrid = HybridPretrainedModel(train=train, item_metadata=catalogue, trained_model=mf)
    torch.testing.assert_close(hybrid.item_metadata, torch.as_tensor(metadata, dtype=torch.float32))
    with pytest.warns(UserWarning, match="rows past item id"):
        staged = HybridModel(train=train, item_metadata=catalogue, embedding_dim=8)
    assert staged.full_scores(torch.arange(3)).shape == (3, train.num_items)


def test_hybrid_model_stages(data, tmp_path):
    train, test, genre = data
    metadata = np.eye(genre.max() + 1)[genre]
    torch.manual_seed(0)
    model = HybridModel(
        train=loader(train),
        val=loader(test, shuffle=False),
        item_metadata=metadata,
        embedding_dim=8,
        combined_layers_dims=[16],
        lr=3e-2,
        metadata_only_stage_lr=1e-2,
        all_stage_lr=1e-3,
    )
    trainer = CollieTrainer(model, max_epochs=6, verbosity=0)
    head = model.head.combined_layers[0].weight.clone()
    trainer.fit(model)
    assert model.stage == "matrix_factorization" and torch.equal(model.head.combined_layers[0].weight, head)
    assert heldout_auc(model, train, test) > 0.7
    model.advance_stage()
    embeddings = model.item_embeddings.weight.clone()
    trainer.max_epochs += 3
    trainer.fit(model)
    assert model.stage == "metadata_only" and model.hparams.num_epochs_completed == 9
    assert torch.equal(model.item_embeddings.weight, embeddings)
    assert not torch.equal(model.head.combined_layers[0].weight, head)
    model.advance_stage()
    trainer.max_epochs += 2
    trainer.fit(model)
    assert model.stage == "all" and not torch.equal(model.item_embeddings.weight, embeddings)
    assert heldout_auc(model, train, test) > 0.65
    with pytest.raises(ArgumentError, match="last stage"):
        model.advance_stage()
    model.eval()
    torch.testing.assert_close(
        model.full_scores(torch.arange(train.num_users)), pair_scores(model, train.num_users, train.num_items)
    )
    model.save_model(tmp_path / "hybrid")
    loaded = HybridModel(load_model_path=tmp_path / "hybrid")
    assert loaded.stage == "all"
    torch.testing.assert_close(loaded.full_scores(torch.arange(5)), model.full_scores(torch.arange(5)))


def test_cold_start_buckets_then_items(data, tmp_path):
    train, test, genre = data
    torch.manual_seed(0)
    model = ColdStartModel(
        train=loader(train),
        val=loader(test, shuffle=False),
        item_buckets=genre,
        embedding_dim=8,
        item_buckets_stage_lr=3e-2,
        no_buckets_stage_lr=3e-2,
    )
    trainer = CollieTrainer(model, max_epochs=4, verbosity=0)
    trainer.fit(model)
    scores = model.full_scores(torch.arange(3))
    same_bucket = np.flatnonzero(genre == genre[0])
    assert torch.equal(scores[:, same_bucket], scores[:, same_bucket[:1]].expand(-1, len(same_bucket)))
    model.advance_stage()
    assert model.stage == "no_buckets"
    torch.testing.assert_close(model.full_scores(torch.arange(3)), scores)  # items start from their buckets
    trainer.max_epochs += 6
    trainer.fit(model)
    assert heldout_auc(model, train, test) > 0.7
    sims = model.item_bucket_item_similarity(int(genre[0]))
    assert len(sims) == train.num_items and sims.is_monotonic_decreasing
    model.save_model(tmp_path / "cold.pth")
    loaded = ColdStartModel(load_model_path=tmp_path / "cold.pth")
    assert loaded.stage == "no_buckets"
    torch.testing.assert_close(loaded.full_scores(torch.arange(4)), model.full_scores(torch.arange(4)))
    with pytest.raises(SchemaError, match="one per item"):
        ColdStartModel(train=train, item_buckets=genre[:-1])


def test_trainers_and_bad_arguments(data, tmp_path):
    train, test, _ = data
    model = MatrixFactorizationModel(train=loader(train), val=loader(test, shuffle=False), embedding_dim=4, lr=1.0)
    minimal = CollieMinimalTrainer(model, max_epochs=30, early_stopping_patience=2, verbosity=0)
    history = minimal.fit(model)
    losses = history.history["val_loss"]
    assert len(losses) < 30  # a learning rate this large stops improving: early stopping ends the fit
    assert min(losses[-2:]) >= min(losses)
    with pytest.raises(ArgumentError, match="unknown argument"):
        CollieTrainer(model, max_epoch=3)
    with pytest.raises(ArgumentError, match="train must be given"):
        MatrixFactorizationModel()
    with pytest.raises(ArgumentError, match="unknown optimizer 'adamw'"):
        CollieTrainer(MatrixFactorizationModel(train=train, optimizer="adamw"), verbosity=0).fit()
    model.save_model(tmp_path / "mf.pth")
    with pytest.raises(FormatVersionError, match="holds a MatrixFactorizationModel"):
        DeepFM(load_model_path=tmp_path / "mf.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a model")
    with pytest.raises(Exception, match="junk.pth"):
        MatrixFactorizationModel(load_model_path=tmp_path / "junk.pth")


def test_collie_face_exports():
    assert collie_model.DeepFM is DeepFM and DeepFM is not CTRDeepFM
    assert collie_model.CollieTrainer is CollieTrainer
    from recstack import collie

    assert collie.model.MatrixFactorizationModel is MatrixFactorizationModel


def test_custom_architecture_from_the_docs(data):
    from recstack.collie.model import BasePipeline, ScaledEmbedding
    from recstack.models.retrieval.implicit.base import init_arguments

    class SimpleModel(BasePipeline):
        def __init__(self, train, val, embedding_dim):
            super().__init__(**init_arguments())

        def _setup_model(self, **kwargs):
            self.user_embeddings = ScaledEmbedding(self.hparams.num_users, self.hparams.embedding_dim)
            self.item_embeddings = ScaledEmbedding(self.hparams.num_items, self.hparams.embedding_dim)

        def forward(self, users, items):
            return torch.mul(self.user_embeddings(users), self.item_embeddings(items)).sum(axis=1)

    train, test, _ = data
    torch.manual_seed(0)
    model = SimpleModel(loader(train), loader(test, shuffle=False), embedding_dim=8)
    assert model.hparams.embedding_dim == 8 and model.user_embeddings.weight.std() < 0.3
    model.hparams.lr = 3e-2
    CollieTrainer(model, max_epochs=6, verbosity=0).fit(model)
    assert heldout_auc(model, train, test) > 0.7  # the default full_scores: forwards over the cross product


def test_trains_from_an_on_disk_parquet_file(data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recstack.data.interactions import ParquetInteractions

    train, test, _ = data
    coo = train.mat.tocoo()
    order = np.random.default_rng(0).permutation(coo.nnz)
    table = pa.table({"users": coo.row[order].astype(np.int64), "items": coo.col[order].astype(np.int64)})
    pq.write_table(table, tmp_path / "train.parquet", row_group_size=256)
    on_disk = ParquetInteractions(
        tmp_path / "train.parquet", num_negative_samples=3, num_users=train.num_users, num_items=train.num_items
    )
    torch.manual_seed(0)
    model = MatrixFactorizationModel(train=on_disk, embedding_dim=8, lr=3e-2)
    assert len(model.train_loader) == 2  # wrapped in the Parquet loader, 1024 rows a batch
    CollieTrainer(model, max_epochs=10, verbosity=0).fit(model)
    assert heldout_auc(model, train, test) > 0.65


def test_sparse_flag_updates_only_the_touched_rows(data):
    from recstack.training import CombinedOptimizer, RowSparseOptimizer

    train, test, _ = data
    torch.manual_seed(0)
    model = MatrixFactorizationModel(train=loader(train), embedding_dim=8, lr=3e-2, sparse=True, bias_optimizer=None)
    assert isinstance(model.configure_optimizers(), RowSparseOptimizer)
    dense = MatrixFactorizationModel(train=loader(train), embedding_dim=8, lr=3e-2)
    assert not any(isinstance(o, RowSparseOptimizer) for o in dense.configure_optimizers().optimizers)
    assert isinstance(dense.configure_optimizers(), CombinedOptimizer)  # embeddings (Adam) and biases (SGD)
    CollieTrainer(model, max_epochs=10, verbosity=0).fit(model)
    assert heldout_auc(model, train, test) > 0.7
    before = model.model.user_weights().detach().clone()
    optimizer = model.configure_optimizers()
    optimizer.zero_grad()
    batch = {
        "user_id": torch.tensor([0, 1]),
        "item_id": torch.tensor([3, 4]),
        "negative_item_id": torch.tensor([[5, 6, 7], [8, 9, 10]]),
    }
    model.train()
    model.training_step(batch)["loss"].backward()
    optimizer.step()
    changed = torch.nonzero((model.model.user_weights() != before).any(1)).reshape(-1)
    assert changed.tolist() == [0, 1]


def test_recstack_callbacks_checkpoint_a_collie_fit(data, tmp_path):
    from recstack.training import ModelCheckpoint, Trainer

    train, test, _ = data
    model = MatrixFactorizationModel(train=loader(train), val=loader(test, shuffle=False), embedding_dim=4)
    save = ModelCheckpoint(str(tmp_path / "mf-{epoch}.ckpt"), monitor="val_loss")
    CollieTrainer(model, max_epochs=2, callbacks=[save], verbosity=0).fit(model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mf-1.ckpt", "mf-2.ckpt"]
    resumed = MatrixFactorizationModel(train=loader(train), val=loader(test, shuffle=False), embedding_dim=4)
    epoch = Trainer(resumed, resumed.configure_optimizers(), verbose=0).load_checkpoint(tmp_path / "mf-2.ckpt")
    assert epoch == 2
    torch.testing.assert_close(resumed.full_scores(torch.arange(5)), model.full_scores(torch.arange(5)))


def test_embeddings_start_at_collies_scale(data):
    # Collie's ScaledEmbedding draws from N(0, 1 / (2.5 * dim)); starting at N(0, 1 / dim) instead cost the
    # tutorial's MatrixFactorizationModel about 0.004 AUC on MovieLens-100K
    train, _, _ = data
    torch.manual_seed(0)
    mf = MatrixFactorizationModel(train=train, embedding_dim=20)
    cml = CollaborativeMetricLearningModel(train=train, embedding_dim=20)
    for weights in (mf.model.user_weights(), mf.model.item_weights(), cml.item_embeddings.weight):
        assert abs(float(weights.detach().std()) - 0.02) < 0.002
    assert abs(float(ScaledEmbedding(2000, 20).weight.detach().std()) - 0.02) < 0.002
