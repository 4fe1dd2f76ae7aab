"""Models: ranking (the DeepCTR-Torch zoo) and retrieval (two-tower, matrix factorization)."""

from recstack.models.base import BaseModel
from recstack.models.ranking import *  # noqa: F403
from recstack.models.ranking import __all__ as _ranking
from recstack.models.retrieval import *  # noqa: F403
from recstack.models.retrieval import __all__ as _retrieval

__all__ = ["BaseModel", *_ranking, *_retrieval]
