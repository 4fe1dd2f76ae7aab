"""Models: ranking (the DeepCTR-Torch zoo); retrieval and multi-task models come next."""

from recstack.models.base import BaseModel
from recstack.models.ranking import *  # noqa: F403
from recstack.models.ranking import __all__ as _ranking

__all__ = ["BaseModel", *_ranking]
