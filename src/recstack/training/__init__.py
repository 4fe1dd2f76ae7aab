"""The Trainer, callbacks and optimizers."""

from recstack.training.callbacks import (
    Callback,
    EarlyStopping,
    FullRankingEvaluation,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
)
from recstack.training.optim import CombinedOptimizer, RowSparseOptimizer, build_optimizer
from recstack.training.trainer import Trainer

__all__ = [
    "Callback",
    "CombinedOptimizer",
    "EarlyStopping",
    "FullRankingEvaluation",
    "History",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "RowSparseOptimizer",
    "Trainer",
    "build_optimizer",
]
