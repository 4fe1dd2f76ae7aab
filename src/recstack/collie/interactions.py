"""Collie's ``collie.interactions``: datasets and data loaders of user-item interactions."""

from recstack.data.interactions import (
    ApproximateNegativeSamplingInteractionsDataLoader,
    BaseInteractions,
    ExplicitInteractions,
    HDF5Interactions,
    HDF5InteractionsDataLoader,
    Interactions,
    InteractionsDataLoader,
    ParquetInteractions,
    ParquetInteractionsDataLoader,
)

__all__ = [
    "ApproximateNegativeSamplingInteractionsDataLoader",
    "BaseInteractions",
    "ExplicitInteractions",
    "HDF5Interactions",
    "HDF5InteractionsDataLoader",
    "Interactions",
    "InteractionsDataLoader",
    "ParquetInteractions",
    "ParquetInteractionsDataLoader",
]
