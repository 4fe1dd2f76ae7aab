"""Reusable layers: embedding collection, DNN, prediction, interaction layers (DeepCTR-Torch names).

The compiled kernels the layers use live in `recstack.kernels`, behind its registry.
"""

from recstack.nn.afm import AFMLayer
from recstack.nn.afn import LogTransformLayer
from recstack.nn.attention import InteractingLayer
from recstack.nn.cin import CIN
from recstack.nn.conv import ConvLayer, KMaxPooling
from recstack.nn.core import DNN, Dice, PredictionLayer, activation_layer
from recstack.nn.cross import CrossNet, CrossNetMix
from recstack.nn.embedding import EmbeddingCollection, FusedTable, grow_embedding_table
from recstack.nn.interaction import FM, BiInteractionPooling
from recstack.nn.linear import DenseInputs, Linear
from recstack.nn.product import InnerProductLayer, OutterProductLayer
from recstack.nn.senet import BilinearInteraction, SENETLayer
from recstack.nn.sequence import (
    AGRUCell,
    AttentionSequencePoolingLayer,
    AUGRUCell,
    DynamicGRU,
    InterestEvolving,
    InterestExtractor,
    LocalActivationUnit,
)

__all__ = [
    "AFMLayer",
    "ConvLayer",
    "InnerProductLayer",
    "KMaxPooling",
    "OutterProductLayer",
    "BilinearInteraction",
    "LogTransformLayer",
    "SENETLayer",
    "CIN",
    "CrossNet",
    "CrossNetMix",
    "DNN",
    "FM",
    "BiInteractionPooling",
    "DenseInputs",
    "Dice",
    "EmbeddingCollection",
    "FusedTable",
    "InteractingLayer",
    "Linear",
    "PredictionLayer",
    "activation_layer",
    "grow_embedding_table",
    "AGRUCell",
    "AUGRUCell",
    "AttentionSequencePoolingLayer",
    "DynamicGRU",
    "InterestEvolving",
    "InterestExtractor",
    "LocalActivationUnit",
]
