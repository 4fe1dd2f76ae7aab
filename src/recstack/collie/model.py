"""Collie's ``collie.model``: the models, their base templates, layers and trainers."""

from recstack.models.retrieval.implicit.base import BasePipeline
from recstack.models.retrieval.implicit.cml import CollaborativeMetricLearningModel
from recstack.models.retrieval.implicit.cold_start import ColdStartModel
from recstack.models.retrieval.implicit.collie_deepfm import DeepFM
from recstack.models.retrieval.implicit.collie_mf import MatrixFactorizationModel
from recstack.models.retrieval.implicit.hybrid import HybridModel
from recstack.models.retrieval.implicit.hybrid_pretrained import HybridPretrainedModel
from recstack.models.retrieval.implicit.mlp_mf import MLPMatrixFactorizationModel
from recstack.models.retrieval.implicit.multi_stage import MultiStagePipeline
from recstack.models.retrieval.implicit.neucf import NeuralCollaborativeFiltering
from recstack.models.retrieval.implicit.nonlinear_mf import NonlinearMatrixFactorizationModel
from recstack.models.retrieval.implicit.pair_layers import ScaledEmbedding, ZeroEmbedding
from recstack.training.collie_trainer import CollieMinimalTrainer, CollieTrainer

__all__ = [
    "BasePipeline",
    "ColdStartModel",
    "CollaborativeMetricLearningModel",
    "CollieMinimalTrainer",
    "CollieTrainer",
    "DeepFM",
    "HybridModel",
    "HybridPretrainedModel",
    "MLPMatrixFactorizationModel",
    "MatrixFactorizationModel",
    "MultiStagePipeline",
    "NeuralCollaborativeFiltering",
    "NonlinearMatrixFactorizationModel",
    "ScaledEmbedding",
    "ZeroEmbedding",
]
