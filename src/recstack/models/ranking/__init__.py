"""The DeepCTR-Torch ranking zoo on recstack's engine: same class names and constructor parameters."""

from recstack.models.ranking.autoint import AutoInt
from recstack.models.ranking.dcn import DCN
from recstack.models.ranking.dcnmix import DCNMix
from recstack.models.ranking.deepfm import DeepFM
from recstack.models.ranking.wdl import WDL
from recstack.models.ranking.xdeepfm import xDeepFM

__all__ = ["DCN", "WDL", "AutoInt", "DCNMix", "DeepFM", "xDeepFM"]
