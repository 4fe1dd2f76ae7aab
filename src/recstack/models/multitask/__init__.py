"""Multi-task ranking models: DeepCTR-Torch's SharedBottom, ESMM, MMOE and PLE (same names and parameters), and the
production rankers DCNv2 (watch probability and watch time) and LikeCommentModel (like and comment)."""

from recstack.models.multitask.base import MultiTaskModel
from recstack.models.multitask.blending import BlendedRanking
from recstack.models.multitask.dcnv2 import DCNv2
from recstack.models.multitask.esmm import ESMM
from recstack.models.multitask.like_comment import LikeCommentModel
from recstack.models.multitask.mmoe import MMOE
from recstack.models.multitask.ple import PLE
from recstack.models.multitask.sharedbottom import SharedBottom

__all__ = ["DCNv2", "ESMM", "MMOE", "PLE", "BlendedRanking", "LikeCommentModel", "MultiTaskModel", "SharedBottom"]
