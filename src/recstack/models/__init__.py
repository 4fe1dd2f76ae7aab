"""Models: ranking (the DeepCTR-Torch zoo and WideAndDeep with crossed features), multi-task ranking and retrieval
(two-tower, matrix factorization)."""

from recstack.models.base import BaseModel
from recstack.models.multitask import *  # noqa: F403
from recstack.models.multitask import __all__ as _multitask
from recstack.models.ranking import *  # noqa: F403
from recstack.models.ranking import __all__ as _ranking
from recstack.models.ranking.wide_deep import WideAndDeep
from recstack.models.retrieval import *  # noqa: F403
from recstack.models.retrieval import __all__ as _retrieval
from recstack.models.sequence import DIEN, DIN

__all__ = ["BaseModel", *_ranking, "WideAndDeep", *_multitask, *_retrieval, "DIN", "DIEN"]
