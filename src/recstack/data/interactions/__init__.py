"""Collie-style interactions: implicit and explicit datasets, negative sampling, and batch loaders.

In memory (`Interactions`, `ExplicitInteractions`) or read from disk in blocks (`HDF5Interactions`,
`ParquetInteractions`); every loader yields whole batches built with one gather.
"""

from recstack.data.interactions.blocks import BlockSampler
from recstack.data.interactions.explicit import ExplicitInteractions
from recstack.data.interactions.hdf5 import HDF5Interactions, HDF5InteractionsDataLoader
from recstack.data.interactions.interactions import BaseInteractions, Interactions
from recstack.data.interactions.loaders import (
    ApproximateNegativeSamplingInteractionsDataLoader,
    BaseInteractionsDataLoader,
    BatchIndexSampler,
    InteractionsDataLoader,
)
from recstack.data.interactions.parquet import ParquetInteractions, ParquetInteractionsDataLoader
from recstack.data.interactions.sampling import ExactNegativeSampler

__all__ = [
    "ApproximateNegativeSamplingInteractionsDataLoader",
    "BaseInteractions",
    "BaseInteractionsDataLoader",
    "BatchIndexSampler",
    "BlockSampler",
    "ExactNegativeSampler",
    "ExplicitInteractions",
    "HDF5Interactions",
    "HDF5InteractionsDataLoader",
    "Interactions",
    "InteractionsDataLoader",
    "ParquetInteractions",
    "ParquetInteractionsDataLoader",
]
