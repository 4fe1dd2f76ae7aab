"""Collie's ``MultiStagePipeline``: models that train in stages, each stage with its own optimizers over a
named part of the model.

``optimizer_config_list`` holds one dict per optimizer: ``lr``, ``optimizer`` (a name or a torch optimizer
class), ``parameter_prefix_list`` (the parameter-name prefixes it trains) and ``stage``; the stages run in the
order they first appear. ``configure_optimizers`` builds only the current stage's optimizers (fresh at each
fit), so parameters of other stages do not move. ``advance_stage()`` / ``set_stage(name)`` switch stages; a
loaded model starts in the last stage.
"""

from __future__ import annotations

from typing import Any

import torch

from recstack.errors import ArgumentError
from recstack.models.retrieval.implicit.base import BasePipeline, combine_optimizers


class MultiStagePipeline(BasePipeline):
    """Base class of multi-stage models; subclasses give ``optimizer_config_list`` and may react to stage
    changes in ``_on_stage_change(old, new)``."""

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        lr_scheduler_func: Any = None,  # noqa: ANN401
        weight_decay: float = 0.0,
        optimizer_config_list: list[dict[str, Any]] | None = None,
        loss: Any = "hinge",  # noqa: ANN401
        metadata_for_loss: dict[str, torch.Tensor] | None = None,
        metadata_for_loss_weights: dict[str, float] | None = None,
        load_model_path: Any = None,  # noqa: ANN401
        map_location: Any = None,  # noqa: ANN401
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if load_model_path is None:
            if not optimizer_config_list:
                raise ArgumentError(f"{name}: optimizer_config_list must list at least one stage's optimizer")
            for config in optimizer_config_list:
                missing = {"lr", "optimizer", "parameter_prefix_list", "stage"} - set(config)
                if missing:
                    raise ArgumentError(f"{name}: an optimizer_config_list entry lacks {sorted(missing)}: {config}")
        # the configs may hold optimizer classes, which a saved model does not keep: they live as attributes
        self._optimizer_configs = list(optimizer_config_list or [])
        stages = list(dict.fromkeys(c["stage"] for c in self._optimizer_configs))
        super().__init__(
            train=train,
            val=val,
            lr_scheduler_func=lr_scheduler_func,
            weight_decay=weight_decay,
            loss=loss,
            metadata_for_loss=metadata_for_loss,
            metadata_for_loss_weights=metadata_for_loss_weights,
            load_model_path=load_model_path,
            map_location=map_location,
            stage_list=stages,
            stage=stages[0] if stages else None,
            **kwargs,
        )
        if load_model_path is not None:
            self.hparams.stage = self.hparams.stage_list[-1]

    @property
    def stage(self) -> str:
        """The current stage."""
        return str(self.hparams.stage)

    def set_stage(self, stage: str) -> None:
        """Switch to ``stage`` (one of ``hparams.stage_list``)."""
        if stage not in self.hparams.stage_list:
            raise ArgumentError(f"{type(self).__name__}: unknown stage {stage!r}; stages: {self.hparams.stage_list}")
        old = self.hparams.get("stage")
        self.hparams.stage = stage
        if old != stage:
            self._on_stage_change(old, stage)

    def advance_stage(self) -> None:
        """Move to the next stage of ``hparams.stage_list``."""
        stages = self.hparams.stage_list
        index = stages.index(self.hparams.stage)
        if index + 1 >= len(stages):
            raise ArgumentError(f"{type(self).__name__}: already in the last stage {stages[-1]!r}")
        self.set_stage(stages[index + 1])

    def _on_stage_change(self, old: str | None, new: str) -> None:
        """Hook run when the stage changes (e.g. to copy weights into the next stage's layers)."""

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The current stage's optimizers over the parameters their prefixes name (combined into one)."""
        self._reset_tables()
        self._move_any_external_data_to_device()
        optimizers = []
        for config in self._optimizer_configs:
            if config["stage"] != self.stage:
                continue
            named = self._trainable(prefixes=list(config["parameter_prefix_list"]))
            if named:
                optimizers.append(self._optimizer_over(config["optimizer"], named, config["lr"]))
        if not optimizers:
            raise ArgumentError(f"{type(self).__name__}: stage {self.stage!r} has no trainable parameters")
        return combine_optimizers(optimizers)

    def _saved_hparams(self) -> dict[str, Any]:
        saved = super()._saved_hparams()
        saved["stage"] = self.stage
        return saved
