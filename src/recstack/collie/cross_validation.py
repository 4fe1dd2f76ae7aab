"""Collie's ``collie.cross_validation``: train / validation / test splits of interactions."""

from recstack.data.splits import random_split, stratified_split, temporal_split

__all__ = ["random_split", "stratified_split", "temporal_split"]
