"""Multi-task ranking models with DeepCTR-Torch's names and parameters: SharedBottom, ESMM, MMOE, PLE."""

from recstack.models.multitask.base import MultiTaskModel
from recstack.models.multitask.esmm import ESMM
from recstack.models.multitask.mmoe import MMOE
from recstack.models.multitask.ple import PLE
from recstack.models.multitask.sharedbottom import SharedBottom

__all__ = ["ESMM", "MMOE", "PLE", "MultiTaskModel", "SharedBottom"]
