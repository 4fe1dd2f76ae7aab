"""Behaviour-sequence ranking models: DIN and DIEN (DeepCTR-Torch's names and parameters)."""

from recstack.models.sequence.dien import DIEN
from recstack.models.sequence.din import DIN

__all__ = ["DIN", "DIEN"]
