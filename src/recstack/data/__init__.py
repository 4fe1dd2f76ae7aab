"""Datasets, loaders and synthetic data generators."""

from recstack.data.datasets import DataFrameDataset, IterableDataFrameDataset, to_tensors
from recstack.data.synthetic import make_ctr_dataset, make_short_video_dataset, short_video_label

__all__ = [
    "DataFrameDataset",
    "IterableDataFrameDataset",
    "make_ctr_dataset",
    "make_short_video_dataset",
    "short_video_label",
    "to_tensors",
]
