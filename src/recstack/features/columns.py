"""Feature columns with DeepCTR-Torch's names and signatures, plus per-feature preprocessing settings.

`SparseFeat`, `DenseFeat` and `VarLenSparseFeat` are namedtuples, as in DeepCTR-Torch, so code written for it
ports by changing imports. The extra trailing fields tell the `FeaturePipeline` how to build each feature
from a raw column; models read only the DeepCTR fields.

Id conventions shared by every sparse feature (0 is always padding):

* vocabulary features: 0 padding, 1 out-of-vocabulary, 2.. known values;
* hashed features (``use_hash=True``): the raw int64 xxh64 column hash; models reduce it into
  ``vocabulary_size`` buckets inside ``forward`` (see `recstack.features.hashing.bucketize_hashes`);
* discretized numeric features (``n_bins``): 1..n_bins, so ``vocabulary_size == n_bins + 1``.
"""

from __future__ import annotations

import numbers
from collections import namedtuple
from collections.abc import Iterable, Sequence

from recstack.errors import SchemaError

DEFAULT_GROUP_NAME = "default_group"
NORMALIZATIONS = (None, "standard", "minmax")
COMBINERS = ("mean", "sum", "max")


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{what}: name must be a non-empty string, got {name!r}")
    return name


def auto_embedding_dim(vocabulary_size: int) -> int:
    """DeepCTR's rule for ``embedding_dim='auto'``: 6 * vocabulary_size ** 0.25."""
    return 6 * int(pow(vocabulary_size, 0.25))


class SparseFeat(
    namedtuple(
        "SparseFeat",
        [
            "name",
            "vocabulary_size",
            "embedding_dim",
            "use_hash",
            "dtype",
            "embedding_name",
            "group_name",
            "min_freq",
            "n_bins",
            "fill_value",
        ],
    )
):
    """A categorical feature looked up in an embedding table.

    DeepCTR-Torch fields: ``name``, ``vocabulary_size`` (number of ids, or hash buckets when ``use_hash``),
    ``embedding_dim`` (int or ``"auto"``), ``use_hash``, ``dtype``, ``embedding_name`` (features with the same
    one share a table and a vocabulary), ``group_name``.

    Preprocessing fields: ``min_freq`` (values seen fewer times map to the out-of-vocabulary id),
    ``n_bins`` (the raw column is numeric: discretize it into this many quantile bins), ``fill_value``
    (what a null becomes before encoding: ``"NA"`` for strings, as in the production V1 spec, ``-1`` for discretized
    numbers). ``vocabulary_size=None`` lets the pipeline set it from the fitted vocabulary; a number given
    for a vocabulary feature caps the vocabulary at that many ids (most frequent values kept).
    """

    __slots__ = ()

    def __new__(
        cls,
        name: str,
        vocabulary_size: int | None = None,
        embedding_dim: int | str = 4,
        use_hash: bool = False,
        dtype: str = "int64",
        embedding_name: str | None = None,
        group_name: str = DEFAULT_GROUP_NAME,
        min_freq: int = 1,
        n_bins: int | None = None,
        fill_value: object = None,
    ) -> SparseFeat:
        _check_name(name, "SparseFeat")
        where = f"SparseFeat {name!r}"
        if vocabulary_size is not None:
            if isinstance(vocabulary_size, float) and vocabulary_size.is_integer():
                vocabulary_size = int(vocabulary_size)  # DeepCTR examples write 1e6
            if isinstance(vocabulary_size, numbers.Integral) and not isinstance(vocabulary_size, bool):
                vocabulary_size = int(vocabulary_size)  # and data[col].max() + 1, a NumPy integer
            if not isinstance(vocabulary_size, int) or isinstance(vocabulary_size, bool) or vocabulary_size < 1:
                raise SchemaError(f"{where}: vocabulary_size must be a positive int, got {vocabulary_size!r}")
        if use_hash and vocabulary_size is None:
            raise SchemaError(f"{where}: use_hash=True needs vocabulary_size (the number of hash buckets)")
        if n_bins is not None:
            if use_hash:
                raise SchemaError(f"{where}: n_bins (discretization) and use_hash cannot be combined")
            if not isinstance(n_bins, int) or n_bins < 2:
                raise SchemaError(f"{where}: n_bins must be an int >= 2, got {n_bins!r}")
            vocabulary_size = n_bins + 1
        if not isinstance(min_freq, int) or min_freq < 1:
            raise SchemaError(f"{where}: min_freq must be an int >= 1, got {min_freq!r}")
        if embedding_dim == "auto":
            if vocabulary_size is not None:
                embedding_dim = auto_embedding_dim(vocabulary_size)
        elif not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise SchemaError(
                f"{where}: embedding_dim must be a positive int or 'auto', got {embedding_dim!r}"
            )
        if embedding_name is None:
            embedding_name = name
        return super().__new__(
            cls,
            name,
            vocabulary_size,
            embedding_dim,
            use_hash,
            dtype,
            embedding_name,
            group_name,
            min_freq,
            n_bins,
            fill_value,
        )

    def __hash__(self) -> int:
        return self.name.__hash__()

    @property
    def uses_vocabulary(self) -> bool:
        """True when ids come from a fitted vocabulary (not hashing, not discretization)."""
        return not self.use_hash and self.n_bins is None


class DenseFeat(namedtuple("DenseFeat", ["name", "dimension", "dtype", "normalization", "fill_value"])):
    """A numeric feature fed to the model as float32, shape ``[N]`` (or ``[N, dimension]``).

    ``normalization``: ``None``, ``"standard"`` (zero mean, unit variance) or ``"minmax"`` (to [0, 1]);
    statistics are exact and update incrementally on ``partial_fit``. ``fill_value`` (default -1, as in
    the production V1 spec) replaces nulls before normalization. A column with ``dimension > 1`` holds lists or arrays.
    """

    __slots__ = ()

    def __new__(
        cls,
        name: str,
        dimension: int = 1,
        dtype: str = "float32",
        normalization: str | None = None,
        fill_value: float = -1.0,
    ) -> DenseFeat:
        _check_name(name, "DenseFeat")
        if not isinstance(dimension, int) or dimension < 1:
            raise SchemaError(f"DenseFeat {name!r}: dimension must be a positive int, got {dimension!r}")
        if normalization not in NORMALIZATIONS:
            raise SchemaError(
                f"DenseFeat {name!r}: normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        return super().__new__(cls, name, dimension, dtype, normalization, float(fill_value))

    def __hash__(self) -> int:
        return self.name.__hash__()


class VarLenSparseFeat(
    namedtuple(
        "VarLenSparseFeat",
        ["sparsefeat", "maxlen", "combiner", "length_name", "weight_name", "weight_norm", "sep"],
    )
):
    """A variable-length list of categorical values (a watch history, genres...), padded to ``maxlen``.

    Order is kept as given (put the latest first): sequences are truncated keeping the first ``maxlen``
    values and padded at the end with 0. ``length_name`` is the key of the lengths in a batch (default
    ``<name>_length``); ``weight_name`` names a list column of per-value weights aligned item by item.
    The raw column may hold lists, Arrow list arrays, or strings joined by ``sep``.
    """

    __slots__ = ()

    def __new__(
        cls,
        sparsefeat: SparseFeat,
        maxlen: int,
        combiner: str = "mean",
        length_name: str | None = None,
        weight_name: str | None = None,
        weight_norm: bool = True,
        sep: str = "|",
    ) -> VarLenSparseFeat:
        if not isinstance(sparsefeat, SparseFeat):
            raise SchemaError(
                f"VarLenSparseFeat: sparsefeat must be a SparseFeat, got {type(sparsefeat).__name__}"
            )
        where = f"VarLenSparseFeat {sparsefeat.name!r}"
        if not isinstance(maxlen, int) or maxlen < 1:
            raise SchemaError(f"{where}: maxlen must be a positive int, got {maxlen!r}")
        if combiner not in COMBINERS:
            raise SchemaError(f"{where}: combiner must be one of {COMBINERS}, got {combiner!r}")
        if sparsefeat.n_bins is not None:
            raise SchemaError(f"{where}: sequences of discretized numbers (n_bins) are not supported")
        if not isinstance(sep, str) or not sep:
            raise SchemaError(f"{where}: sep must be a non-empty string")
        return super().__new__(cls, sparsefeat, maxlen, combiner, length_name, weight_name, weight_norm, sep)

    @property
    def name(self) -> str:
        return self.sparsefeat.name

    @property
    def vocabulary_size(self) -> int | None:
        return self.sparsefeat.vocabulary_size

    @property
    def embedding_dim(self) -> int | str:
        return self.sparsefeat.embedding_dim

    @property
    def use_hash(self) -> bool:
        return self.sparsefeat.use_hash

    @property
    def dtype(self) -> str:
        return self.sparsefeat.dtype

    @property
    def embedding_name(self) -> str:
        return self.sparsefeat.embedding_name

    @property
    def group_name(self) -> str:
        return self.sparsefeat.group_name

    @property
    def length_key(self) -> str:
        """Batch key holding the sequence lengths."""
        return self.length_name or f"{self.name}_length"

    def __hash__(self) -> int:
        return self.name.__hash__()


Feature = SparseFeat | DenseFeat | VarLenSparseFeat


def get_feature_names(feature_columns: Iterable[Feature]) -> list[str]:
    """Names of the inputs a model over these columns reads, in order, without duplicates (DeepCTR)."""
    names: dict[str, None] = {}
    for feat in feature_columns:
        names[feat.name] = None
        if isinstance(feat, VarLenSparseFeat):
            if feat.length_name is not None:
                names[feat.length_name] = None
            if feat.weight_name is not None:
                names[feat.weight_name] = None
    return list(names)


def split_columns(
    feature_columns: Sequence[Feature],
) -> tuple[list[SparseFeat], list[DenseFeat], list[VarLenSparseFeat]]:
    """The sparse, dense and variable-length columns of a list, each in its original order."""
    sparse = [f for f in feature_columns if isinstance(f, SparseFeat)]
    dense = [f for f in feature_columns if isinstance(f, DenseFeat)]
    varlen = [f for f in feature_columns if isinstance(f, VarLenSparseFeat)]
    unknown = [f for f in feature_columns if not isinstance(f, (SparseFeat, DenseFeat, VarLenSparseFeat))]
    if unknown:
        raise SchemaError(
            f"feature columns must be SparseFeat, DenseFeat or VarLenSparseFeat, got {type(unknown[0]).__name__}"
        )
    return sparse, dense, varlen
