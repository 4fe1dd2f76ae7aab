"""Retrieval models: the two-tower model (seed 000 V1) and the matrix-factorization family."""

from recstack.models.retrieval.mf import MatrixFactorizationModel
from recstack.models.retrieval.tower import Tower
from recstack.models.retrieval.two_tower import TwoTowerModel

__all__ = ["MatrixFactorizationModel", "Tower", "TwoTowerModel"]
