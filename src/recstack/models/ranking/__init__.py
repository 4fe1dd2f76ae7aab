"""The DeepCTR-Torch ranking zoo on recstack's engine: same class names and constructor parameters."""

from recstack.models.ranking.deepfm import DeepFM
from recstack.models.ranking.wdl import WDL

__all__ = ["WDL", "DeepFM"]
