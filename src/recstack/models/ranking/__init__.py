"""The DeepCTR-Torch ranking zoo on recstack's engine: same class names and constructor parameters."""

from recstack.models.ranking.afn import AFN
from recstack.models.ranking.autoint import AutoInt
from recstack.models.ranking.dcn import DCN
from recstack.models.ranking.dcnmix import DCNMix
from recstack.models.ranking.deepfm import DeepFM
from recstack.models.ranking.difm import DIFM
from recstack.models.ranking.fibinet import FiBiNET
from recstack.models.ranking.ifm import IFM
from recstack.models.ranking.onn import ONN
from recstack.models.ranking.wdl import WDL
from recstack.models.ranking.xdeepfm import xDeepFM

__all__ = ["AFN", "DCN", "DIFM", "IFM", "ONN", "WDL", "AutoInt", "DCNMix", "DeepFM", "FiBiNET", "xDeepFM"]
