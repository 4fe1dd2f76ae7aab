"""The DeepCTR-Torch ranking zoo on recstack's engine: same class names and constructor parameters."""

from recstack.models.ranking.afm import AFM
from recstack.models.ranking.afn import AFN
from recstack.models.ranking.autoint import AutoInt
from recstack.models.ranking.ccpm import CCPM
from recstack.models.ranking.dcn import DCN
from recstack.models.ranking.dcnmix import DCNMix
from recstack.models.ranking.deepfm import DeepFM
from recstack.models.ranking.difm import DIFM
from recstack.models.ranking.fibinet import FiBiNET
from recstack.models.ranking.ifm import IFM
from recstack.models.ranking.mlr import MLR
from recstack.models.ranking.nfm import NFM
from recstack.models.ranking.onn import ONN
from recstack.models.ranking.pnn import PNN
from recstack.models.ranking.wdl import WDL
from recstack.models.ranking.xdeepfm import xDeepFM

__all__ = [
    "AFM",
    "CCPM",
    "MLR",
    "NFM",
    "PNN",
    "AFN",
    "DCN",
    "DIFM",
    "IFM",
    "ONN",
    "WDL",
    "AutoInt",
    "DCNMix",
    "DeepFM",
    "FiBiNET",
    "xDeepFM",
]
