"""Feature columns, hashing, vocabularies, numeric statistics, sequences and the FeaturePipeline."""

from recstack.features.columns import (
    DEFAULT_GROUP_NAME,
    DenseFeat,
    Feature,
    SparseFeat,
    VarLenSparseFeat,
    get_feature_names,
    split_columns,
)
from recstack.features.hashing import bucketize_hashes, column_seed, hash_values
from recstack.features.numeric import QuantileDiscretizer, RunningStats
from recstack.features.pipeline import FeaturePipeline
from recstack.features.vocab import OOV_ID, PAD_ID, Vocabulary, VocabularyUpdate

__all__ = [
    "DEFAULT_GROUP_NAME",
    "OOV_ID",
    "PAD_ID",
    "DenseFeat",
    "Feature",
    "FeaturePipeline",
    "QuantileDiscretizer",
    "RunningStats",
    "SparseFeat",
    "VarLenSparseFeat",
    "Vocabulary",
    "VocabularyUpdate",
    "bucketize_hashes",
    "column_seed",
    "get_feature_names",
    "hash_values",
    "split_columns",
]
