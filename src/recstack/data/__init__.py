"""Datasets, loaders and synthetic data generators."""

from recstack.data.datasets import DataFrameDataset, IterableDataFrameDataset, to_tensors
from recstack.data.implicit import CSR, ImplicitSplit, load_ml1m_lcfn, read_user_item_lists
from recstack.data.synthetic import make_ctr_dataset, make_short_video_dataset, short_video_label
from recstack.data.synthetic.history import history_feature_columns, make_history_dataset
from recstack.data.synthetic.two_task import make_two_task_dataset, two_task_feature_columns
from recstack.data.vectors import make_clustered_vectors, make_noisy_queries

__all__ = [
    "CSR",
    "ImplicitSplit",
    "load_ml1m_lcfn",
    "read_user_item_lists",
    "DataFrameDataset",
    "IterableDataFrameDataset",
    "make_clustered_vectors",
    "make_ctr_dataset",
    "make_history_dataset",
    "history_feature_columns",
    "make_noisy_queries",
    "make_short_video_dataset",
    "make_two_task_dataset",
    "short_video_label",
    "to_tensors",
    "two_task_feature_columns",
]
