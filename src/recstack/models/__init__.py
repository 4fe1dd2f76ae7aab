"""Models: ranking (the DeepCTR-Torch zoo); retrieval and multi-task models come next."""

from recstack.models.base import BaseModel
from recstack.models.ranking import WDL, DeepFM

__all__ = ["WDL", "BaseModel", "DeepFM"]
