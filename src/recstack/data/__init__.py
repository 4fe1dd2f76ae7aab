"""Datasets, loaders and synthetic data generators."""

from recstack.data.datasets import DataFrameDataset, IterableDataFrameDataset, to_tensors

__all__ = ["DataFrameDataset", "IterableDataFrameDataset", "to_tensors"]
