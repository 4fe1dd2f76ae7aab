import numpy as np
import pytest
import torch

from recstack.errors import SchemaError
from recstack.features import DenseFeat, SparseFeat, VarLenSparseFeat, bucketize_hashes, hash_values
from recstack.nn import EmbeddingCollection, Linear, embedding_ops, grow_embedding_table
from recstack.nn.embedding_ops import UniqueCache, share_unique_cache


def _columns():
    return [
        SparseFeat("a", 10, 4),
        SparseFeat("b", 100, 4, use_hash=True),
        VarLenSparseFeat(SparseFeat("h", 10, 4, embedding_name="a"), 3, weight_name="hw", weight_norm=False),
        VarLenSparseFeat(SparseFeat("m", 7, 4), 3, combiner="max"),
        DenseFeat("d"),
    ]


def _batch():
    hashed = hash_values(["x", "y", "z"], "b")
    return {
        "a": torch.tensor([1, 2, 9]),
        "b": torch.from_numpy(hashed).reshape(3, 1),  # [B, 1] as a production caller sends it
        "h": torch.tensor([[1, 2, 0], [3, 0, 0], [0, 0, 0]]),
        "h_length": torch.tensor([2, 1, 0]),
        "hw": torch.tensor([[1.0, 3.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
        "m": torch.tensor([[1, 5, 0], [6, 0, 0], [0, 0, 0]]),
        "d": torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64),
    }


def _rows(ec, table, ids):
    group = ec.groups[0]
    k = group.table_names.index(table)
    return group.weight[group.table_offsets[k] + torch.as_tensor(ids)]


def test_lookup_matches_the_rows_it_should_read():
    ec = EmbeddingCollection(_columns(), init_std=1.0)
    b = _batch()
    out = ec(b)
    assert out.shape == (3, 4, 4)
    torch.testing.assert_close(out[:, 0], _rows(ec, "a", [1, 2, 9]))
    # hashed ids are reduced into their buckets exactly as features.bucketize_hashes does
    buckets = bucketize_hashes(b["b"].numpy().reshape(-1), 100)
    assert (buckets >= 0).all() and (buckets < 100).all()
    torch.testing.assert_close(out[:, 1], _rows(ec, "b", buckets))
    # weighted sum / count (mean) of the valid items; the sequence shares table "a"
    rows_a = _rows(ec, "a", [1, 2, 3])
    torch.testing.assert_close(out[0, 2], (1.0 * rows_a[0] + 3.0 * rows_a[1]) / 2)
    torch.testing.assert_close(out[1, 2], 2.0 * rows_a[2])
    torch.testing.assert_close(out[2, 2], torch.zeros(4))  # empty sequence pools to zeros
    rows_m = _rows(ec, "m", [1, 5, 6])
    torch.testing.assert_close(out[0, 3], torch.maximum(rows_m[0], rows_m[1]))
    torch.testing.assert_close(out[2, 3], torch.zeros(4))


def test_scripted_collection_and_linear_equal_eager():
    ec = EmbeddingCollection(_columns() + [SparseFeat("c", 5, 8)])
    b = {**_batch(), "c": torch.tensor([0, 4, 2])}
    scripted = torch.jit.script(ec)
    torch.testing.assert_close(scripted.flat(b), ec.flat(b), rtol=0, atol=1e-6)
    lin = Linear(_columns())
    torch.testing.assert_close(torch.jit.script(lin)(b), lin(b), rtol=0, atol=1e-6)


def test_mixed_widths_need_flat_and_name_the_widths():
    ec = EmbeddingCollection([SparseFeat("a", 10, 4), SparseFeat("c", 5, 8)])
    assert ec.flat({"a": torch.tensor([1]), "c": torch.tensor([2])}).shape == (1, 12)
    with pytest.raises(SchemaError, match=r"different embedding_dim \[4, 8\]"):
        ec.common_dim()


def test_shared_embedding_name_must_agree():
    with pytest.raises(SchemaError, match="sharing embedding_name 'a'"):
        EmbeddingCollection([SparseFeat("a", 10, 4), SparseFeat("x", 11, 4, embedding_name="a")])
    with pytest.raises(SchemaError, match="no vocabulary_size"):
        EmbeddingCollection([SparseFeat("a")])


def test_growing_a_table_keeps_every_trained_row():
    ec = EmbeddingCollection(_columns())
    b = _batch()
    before = ec(b).detach().clone()
    grow_embedding_table(ec.groups[0], "a", 25)
    torch.testing.assert_close(ec(b), before)
    b["a"] = torch.tensor([24, 2, 9])  # a new id is now valid
    assert torch.isfinite(ec(b)).all()
    with pytest.raises(SchemaError, match="cannot shrink"):
        grow_embedding_table(ec.groups[0], "a", 3)


def test_row_sparse_gather_gives_the_same_forward_and_gradient():
    torch.manual_seed(0)
    dense = EmbeddingCollection(_columns(), init_std=1.0)
    sparse = EmbeddingCollection(_columns(), init_std=1.0)
    sparse.load_state_dict(dense.state_dict())
    for t in sparse.tables():
        t.row_sparse = True
    b = _batch()
    w = torch.randn(3, 4, 4)
    (dense(b) * w).sum().backward()
    (sparse(b) * w).sum().backward()
    table = sparse.tables()[0]
    ((ids, rows),) = table.take_pending()
    expect = dense.tables()[0].weight.grad
    torch.testing.assert_close(rows.grad, expect[ids])
    untouched = torch.ones(len(expect), dtype=torch.bool)
    untouched[ids] = False
    assert (expect[untouched] == 0).all()
    np.testing.assert_array_equal(ids.numpy(), np.unique(ids.numpy()))


def _count_unique_calls(monkeypatch) -> list[int]:
    """Count the sorts (unique_inverse calls) from here on."""
    calls: list[int] = []
    real = embedding_ops.unique_inverse

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(embedding_ops, "unique_inverse", counting)
    return calls


@pytest.mark.parametrize(
    ("n", "high"),
    [(1, 5), (9, 3), (5000, 10), (106_496, 85_000_000), (20_000, 2**32)],
    ids=["one", "tiny", "few-values", "batch-4096-26-fields", "keys-up-to-2^32"],
)
def test_unique_inverse_equals_torch_unique(n, high):
    g = torch.Generator().manual_seed(n)
    ids = torch.randint(0, high, (n,), generator=g)
    ids[: n // 2] = ids[n // 2 : 2 * (n // 2)]  # every value of the first half appears twice
    uniq, inverse = embedding_ops.unique_inverse(ids)
    want_uniq, want_inverse = torch.unique(ids, return_inverse=True)
    assert torch.equal(uniq, want_uniq) and torch.equal(inverse, want_inverse)


@pytest.mark.parametrize(
    "ids",
    [
        torch.tensor([3, -1, 3]),  # negative: outside the compiled sort's range
        torch.tensor([2**40, 5, 2**40]),
        torch.tensor([4, 1, 4], dtype=torch.int32),
        torch.empty(0, dtype=torch.int64),
    ],
    ids=["negative", "beyond-2^32", "int32", "empty"],
)
def test_unique_inverse_falls_back_to_torch_outside_its_range(ids):
    uniq, inverse = embedding_ops.unique_inverse(ids)
    want_uniq, want_inverse = torch.unique(ids, return_inverse=True)
    assert torch.equal(uniq, want_uniq) and torch.equal(inverse, want_inverse)


def test_unique_rows_reuses_only_an_equal_index(monkeypatch):
    calls = _count_unique_calls(monkeypatch)
    unique_rows = UniqueCache()
    index = torch.tensor([7, 3, 7, 9, 3])
    uniq, inverse = unique_rows(index)
    assert uniq.tolist() == [3, 7, 9] and inverse.tolist() == [1, 0, 1, 2, 0]
    again = unique_rows(index.clone())  # equal values in another tensor: the same result, no second sort
    assert again[0] is uniq and again[1] is inverse and len(calls) == 1
    for other in (torch.tensor([7, 3, 7, 9, 4]), torch.tensor([7, 3, 7, 9]), index.int()):
        u, inv = unique_rows(other)
        assert u.dtype == other.dtype and torch.equal(u[inv], other)
    assert len(calls) == 4


def test_linear_part_and_embeddings_share_one_unique_per_batch(monkeypatch):
    """The wide part and the embeddings look up the same rows: one sort per batch, both tables get their rows."""
    linear = Linear(_columns(), init_std=1.0)
    emb = EmbeddingCollection(_columns(), init_std=1.0)
    for t in list(linear.sparse.tables()) + list(emb.tables()):
        t.row_sparse = True
    share_unique_cache(list(linear.sparse.tables()) + list(emb.tables()))
    calls = _count_unique_calls(monkeypatch)
    b = _batch()
    (linear(b).sum() + emb(b).sum()).backward()
    assert len(calls) == 1
    ((ids_lin, rows_lin),) = linear.sparse.tables()[0].take_pending()
    ((ids_emb, rows_emb),) = emb.tables()[0].take_pending()
    assert torch.equal(ids_lin, ids_emb)
    assert rows_lin.grad.shape == (len(ids_lin), 1) and rows_emb.grad.shape == (len(ids_emb), 4)


def test_tables_of_one_optimizer_share_a_cache_that_is_not_pickled():
    import pickle

    from recstack.training import RowSparseOptimizer

    linear = Linear(_columns(), init_std=1.0)
    emb = EmbeddingCollection(_columns(), init_std=1.0)
    other = EmbeddingCollection(_columns(), init_std=1.0)
    RowSparseOptimizer(list(linear.sparse.tables()) + list(emb.tables()))
    caches = {id(t.unique_cache) for t in list(linear.sparse.tables()) + list(emb.tables())}
    assert len(caches) == 1 and id(other.tables()[0].unique_cache) not in caches
    cache = emb.tables()[0].unique_cache
    cache(torch.tensor([3, 1, 3]))
    assert pickle.loads(pickle.dumps(cache))._last is None


def test_row_sparse_unscale_restores_gradients_and_flags_overflow():
    # float16 AMP scales the loss; the gathered rows are not optimizer params, so GradScaler cannot see them
    from recstack.training import RowSparseOptimizer

    torch.manual_seed(0)
    ec = EmbeddingCollection(_columns(), init_std=1.0)
    opt = RowSparseOptimizer(ec.tables())
    w = torch.randn(3, 4, 4)
    (ec(_batch()) * w).sum().backward()
    plain = [rows.grad.clone() for t in ec.tables() for _, rows in t.pending()]
    assert plain
    opt.zero_grad()
    (ec(_batch()) * w * 1024.0).sum().backward()
    assert opt.unscale_(1 / 1024.0)
    scaled_back = [rows.grad for t in ec.tables() for _, rows in t.pending()]
    for a, b in zip(plain, scaled_back, strict=True):
        torch.testing.assert_close(b, a)
    scaled_back[0][0, 0] = float("inf")
    assert not opt.unscale_(1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_lookup_gradient_equals_torch_embedding(dtype):
    from recstack.nn.embedding_ops import _RowLookup

    torch.manual_seed(1)
    table = torch.randn(50, 16, dtype=dtype, requires_grad=True)
    index = torch.randint(0, 50, (300, 26))  # many repeated rows: their gradients must add up
    g = torch.randn(300, 26, 16, dtype=dtype)
    ours = _RowLookup.apply(table, index)
    theirs = torch.nn.functional.embedding(index, table)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    (grad_ours,) = torch.autograd.grad(ours, table, g)
    (grad_theirs,) = torch.autograd.grad(theirs, table, g)
    torch.testing.assert_close(grad_ours, grad_theirs)
    assert (grad_theirs.abs().sum(1) > 0).sum() > 40  # most rows touched, several times each


def test_training_lookups_use_the_compiled_row_gradient():
    cols = [SparseFeat("a", 10, 4), SparseFeat("b", 20, 4)]
    coll = EmbeddingCollection(cols)
    batch = {"a": torch.tensor([1, 2, 1]), "b": torch.tensor([3, 3, 4])}
    names = []
    fn = coll(batch).grad_fn
    while fn is not None:
        names.append(type(fn).__name__)
        fn = fn.next_functions[0][0] if fn.next_functions else None
    assert "_RowLookupBackward" in names and "EmbeddingBackward0" not in names
    with torch.no_grad():
        assert coll(batch).grad_fn is None
