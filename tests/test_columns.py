import numpy as np
import pytest

from recstack.errors import SchemaError
from recstack.features import DenseFeat, SparseFeat, VarLenSparseFeat, get_feature_names


def test_deepctr_positional_signatures_and_defaults():
    f = SparseFeat("C1", 1000, 8, False, "int32", None, "g")
    assert (
        f.name,
        f.vocabulary_size,
        f.embedding_dim,
        f.use_hash,
        f.dtype,
        f.embedding_name,
        f.group_name,
    ) == (
        "C1",
        1000,
        8,
        False,
        "int32",
        "C1",
        "g",
    )
    d = DenseFeat("I1", 1)
    assert (d.name, d.dimension, d.dtype) == ("I1", 1, "float32")
    v = VarLenSparseFeat(SparseFeat("genres", 20, 4), maxlen=5)
    assert (v.combiner, v.length_name, v.name, v.vocabulary_size, v.embedding_name) == (
        "mean",
        None,
        "genres",
        20,
        "genres",
    )
    assert v.length_key == "genres_length"


def test_float_vocabulary_size_as_in_deepctr_examples():
    assert SparseFeat("C1", vocabulary_size=1e6, use_hash=True).vocabulary_size == 1_000_000


def test_numpy_integer_vocabulary_size_as_in_deepctr_examples():
    size = SparseFeat("C1", vocabulary_size=np.int64(291)).vocabulary_size  # data[col].max() + 1
    assert size == 291 and type(size) is int
    with pytest.raises(SchemaError, match="vocabulary_size must be a positive int"):
        SparseFeat("C1", vocabulary_size=True)


def test_auto_embedding_dim_and_discretized_size():
    assert SparseFeat("a", 10_000, embedding_dim="auto").embedding_dim == 6 * 10
    assert SparseFeat("age", n_bins=10).vocabulary_size == 11


def test_get_feature_names_includes_length_and_weight_names_once():
    cols = [
        SparseFeat("a", 10),
        DenseFeat("b"),
        VarLenSparseFeat(SparseFeat("h", 10), 4, length_name="h_len", weight_name="h_w"),
    ]
    assert get_feature_names(cols + cols) == ["a", "b", "h", "h_len", "h_w"]


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: SparseFeat("x", -1), "vocabulary_size"),
        (lambda: SparseFeat("x", use_hash=True), "use_hash=True needs vocabulary_size"),
        (lambda: SparseFeat("x", n_bins=1), "n_bins"),
        (lambda: SparseFeat("x", 10, min_freq=0), "min_freq"),
        (lambda: SparseFeat("", 10), "name"),
        (lambda: DenseFeat("x", normalization="zscore"), "normalization"),
        (lambda: VarLenSparseFeat(SparseFeat("x", 10), maxlen=0), "maxlen"),
        (lambda: VarLenSparseFeat(SparseFeat("x", 10), maxlen=3, combiner="avg"), "combiner"),
        (lambda: VarLenSparseFeat("x", maxlen=3), "SparseFeat"),
    ],
)
def test_bad_declarations_name_the_feature(make, fragment):
    with pytest.raises(SchemaError, match=fragment):
        make()
