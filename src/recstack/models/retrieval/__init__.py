"""Retrieval models: the two-tower model (the production V1 two-tower) and the matrix-factorization family."""

from recstack.models.retrieval.mf import MatrixFactorizationModel
from recstack.models.retrieval.tower import Tower
from recstack.models.retrieval.two_tower import TwoTowerModel

__all__ = ["MatrixFactorizationModel", "Tower", "TwoTowerModel"]
