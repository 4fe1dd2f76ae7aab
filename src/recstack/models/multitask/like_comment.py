"""The like / comment engagement ranker: one shared DNN, one logistic head per engagement, blended by probit.

The embeddings of the user, item and context features go through a DNN shared by the tasks; a linear head per
task gives its logit (``p(like)``, ``p(comment)``), each trained with its own binary cross-entropy (summed, or
weighted with ``compile(loss_weights=...)``). For ranking the probabilities are blended after mapping each to the
standard normal scale: ``score = sum_t w_t * probit(p_t)`` (`BlendedRanking.rank_score`), so a rare engagement
(comments) weighs as much as a frequent one (likes) per standard deviation, whatever the content type's base rates.
"""

from collections.abc import Sequence

from recstack.features.columns import Feature
from recstack.models.multitask.blending import BlendedRanking
from recstack.models.multitask.sharedbottom import SharedBottom


class LikeCommentModel(BlendedRanking, SharedBottom):
    """A shared DNN (``dnn_hidden_units``) and a linear head per task; output ``[B, T]`` probabilities.

    Defaults: tasks ``like`` and ``comment`` (binary). Any binary or regression tasks may be named; it is
    `SharedBottom` with single-layer towers.
    """

    def __init__(
        self,
        dnn_feature_columns: Sequence[Feature],
        dnn_hidden_units: Sequence[int] = (32, 16),
        l2_reg_embedding: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        dnn_dropout: float = 0.0,
        dnn_activation: str = "relu",
        dnn_use_bn: bool = False,
        task_types: Sequence[str] = ("binary", "binary"),
        task_names: Sequence[str] = ("like", "comment"),
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        super().__init__(
            dnn_feature_columns,
            bottom_dnn_hidden_units=dnn_hidden_units,
            tower_dnn_hidden_units=(),
            l2_reg_embedding=l2_reg_embedding,
            l2_reg_dnn=l2_reg_dnn,
            init_std=init_std,
            seed=seed,
            dnn_dropout=dnn_dropout,
            dnn_activation=dnn_activation,
            dnn_use_bn=dnn_use_bn,
            task_types=task_types,
            task_names=task_names,
            device=device,
            gpus=gpus,
        )
