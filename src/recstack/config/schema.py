"""The run configuration of ``recstack train``: one pydantic model per YAML section, unknown keys rejected."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

Tower = Literal["user", "item"]


class Section(BaseModel):
    """A config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


# ---- data -----------------------------------------------------------------------------------------------


class SyntheticData(Section):
    """Rows from one of recstack's synthetic generators (planted signal, deterministic for a seed)."""

    generator: Literal["ctr", "short_video"]
    rows: PositiveInt = 20_000
    seed: int = 0
    users: PositiveInt | None = Field(None, description="short_video: users (default rows / 40, at least 200)")
    items: PositiveInt | None = Field(None, description="short_video: items (default rows / 15, at least 500)")
    n_dense: PositiveInt = Field(13, description="ctr: numeric columns I1..In")
    n_sparse: PositiveInt = Field(26, description="ctr: categorical columns C1..Cn")


class UserItemLists(Section):
    """A pre-split implicit-feedback folder: train.txt and valid.txt (and test.txt) of ``user item item ...`` lines."""

    path: str


class MovieLens100K(Section):
    """MovieLens-100K in RecBole's atomic files (ml-100k.inter / .user / .item); label = rating >= threshold."""

    path: str | None = Field(None, description="folder holding the files (default: the installed recbole wheel's)")
    rating_threshold: float = 4.0


class SplitConfig(Section):
    """How the validation rows are chosen: a random fraction, the last fraction, or the latest by a time column."""

    validation: float = Field(0.1, gt=0.0, lt=1.0)
    method: Literal["random", "last", "time"] = "random"
    time_column: str | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _time_needs_column(self) -> SplitConfig:
        if self.method == "time" and not self.time_column:
            raise ValueError("method 'time' needs time_column (the column whose latest rows become validation)")
        if self.method != "time" and self.time_column:
            raise ValueError(f"time_column is only used with method: time (method is {self.method!r})")
        return self


SOURCES = ("paths", "synthetic", "user_item_lists", "movielens_100k")


class DataConfig(Section):
    """Where the rows come from (exactly one source), the label, and the validation split."""

    paths: list[str] | None = Field(None, description="Parquet or CSV files or glob patterns")
    format: Literal["auto", "parquet", "csv"] = "auto"
    synthetic: SyntheticData | None = None
    user_item_lists: UserItemLists | None = None
    movielens_100k: MovieLens100K | None = None
    label: str = "label"
    label_threshold: float | None = Field(None, description="label = (label column >= this), when set")
    split: SplitConfig | None = Field(None, description="default: a random 10% for validation")

    @field_validator("paths", mode="before")
    @classmethod
    def _one_path(cls, value: Any) -> Any:  # noqa: ANN401
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        given = [name for name in SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            what = f"got {len(given)}: {given}" if given else "got none"
            raise ValueError(f"give exactly one data source among {list(SOURCES)}; {what}")
        if self.user_item_lists is not None and self.split is not None:
            raise ValueError("user_item_lists folders are already split (train.txt / valid.txt): remove data.split")
        return self


# ---- features -------------------------------------------------------------------------------------------


class SparseGroup(Section):
    """Categorical columns embedded from a vocabulary, hash buckets, or quantile bins of a number."""

    names: list[str] = Field(min_length=1, description="column names or glob patterns (C*)")
    embedding_dim: PositiveInt | Literal["auto"] = 8
    hash_buckets: PositiveInt | None = Field(None, description="hash values into this many buckets (no vocabulary)")
    min_freq: PositiveInt = Field(1, description="rarer values map to the out-of-vocabulary id")
    max_vocab: PositiveInt | None = Field(None, description="keep at most this many ids (most frequent values)")
    n_bins: int | None = Field(None, ge=2, description="the column is numeric: this many quantile bins")
    tower: Tower | None = None

    @model_validator(mode="after")
    def _one_encoding(self) -> SparseGroup:
        if self.hash_buckets is not None and self.n_bins is not None:
            raise ValueError("hash_buckets and n_bins cannot be combined: hash a categorical or bin a number")
        return self


class DenseGroup(Section):
    """Numeric columns, optionally normalized; nulls become ``fill_value``."""

    names: list[str] = Field(min_length=1)
    normalization: Literal["standard", "minmax"] | None = None
    fill_value: float = -1.0
    tower: Tower | None = None


class VarLenGroup(Section):
    """Sequence columns (lists, or strings joined by ``sep``) pooled into one embedding."""

    names: list[str] = Field(min_length=1)
    maxlen: PositiveInt
    combiner: Literal["mean", "sum", "max"] = "mean"
    sep: str = Field("|", min_length=1)
    embedding_dim: PositiveInt | Literal["auto"] = 8
    hash_buckets: PositiveInt | None = None
    min_freq: PositiveInt = 1
    tower: Tower | None = None


class FeaturePreset(Section):
    """A named feature set; ``short_video_v1``: the production V1 two-tower features, towers assigned."""

    name: Literal["short_video_v1"]
    hash_buckets: PositiveInt = 10_000
    embedding_dim: PositiveInt = 16


class FeaturesConfig(Section):
    """The model's input columns and their preprocessing (fitted on the training rows only)."""

    preset: FeaturePreset | None = None
    sparse: list[SparseGroup] = []
    dense: list[DenseGroup] = []
    varlen: list[VarLenGroup] = []


# ---- model, trainer, output -------------------------------------------------------------------------------


class ModelConfig(Section):
    """A model class from the registry (`recstack.config.available_models`) and its constructor arguments."""

    name: str
    params: dict[str, Any] = {}
    user_id: str = Field("user_id", description="retrieval: the user id column")
    item_id: str = Field("item_id", description="retrieval: the item id column")


class EarlyStoppingConfig(Section):
    monitor: str
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = Field(2, ge=0)
    restore_best_weights: bool = True


class CallbacksConfig(Section):
    early_stopping: EarlyStoppingConfig | None = None
    checkpoint_every: PositiveInt = Field(1, description="save a resumable checkpoint every this many epochs")


class TrainerConfig(Section):
    epochs: PositiveInt = 1
    batch_size: PositiveInt = 256
    optimizer: Literal["adam", "adagrad", "sgd", "rmsprop"] = "adam"
    lr: PositiveFloat | None = Field(None, description="default: the optimizer's (adam 1e-3)")
    loss: Literal["binary_crossentropy", "mse", "mae"] | None = Field(None, description="ranking models only")
    device: str = "cpu"
    strategy: Literal["local"] = "local"
    seed: int = 1024
    threads: PositiveInt | None = Field(None, description="torch threads (default: torch's choice)")
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)


class OutputConfig(Section):
    dir: str = "runs"
    name: str | None = Field(None, description="run directory name (default: the config file's name)")


class TaskConfig(Section):
    """One task of a multi-task model: its name, its label column and type, how its label is made and weighed."""

    name: str = Field(min_length=1, description="the task's name: its metrics are logged as NAME_auc, NAME_rmse...")
    column: str = Field(min_length=1, description="the label column (numeric)")
    type: Literal["binary", "regression"]
    threshold: float | None = Field(None, description="binary: label = (column >= this); else 0/1 values")
    loss: Literal["binary_crossentropy", "mse", "mae"] | None = Field(
        None, description="default: binary_crossentropy for binary tasks, mse for regression tasks"
    )
    weight: float = Field(1.0, ge=0.0, description="the task's weight in the training loss")

    @model_validator(mode="after")
    def _threshold_is_binary(self) -> TaskConfig:
        if self.threshold is not None and self.type != "binary":
            raise ValueError(f"threshold makes a binary label; task {self.name!r} has type {self.type!r}")
        if self.loss == "binary_crossentropy" and self.type != "binary":
            raise ValueError(f"task {self.name!r} is a regression task: its loss must be 'mse' or 'mae'")
        return self


class RunConfig(Section):
    """A whole ``recstack train`` configuration."""

    data: DataConfig
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    model: ModelConfig
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    metrics: list[str] = Field(
        [],
        description="ranking: auc, logloss...; multi-task: per task, e.g. auc for binary and rmse for regression "
        "tasks; retrieval: recall@K, ndcg@K...",
    )
    output: OutputConfig = Field(default_factory=OutputConfig)
    tasks: list[TaskConfig] | None = Field(
        None, description="multi-task models: two or more tasks, each a label column with its type"
    )

    @field_validator("tasks")
    @classmethod
    def _tasks_distinct(cls, tasks: list[TaskConfig] | None) -> list[TaskConfig] | None:
        if tasks is not None:
            if len(tasks) < 2:
                raise ValueError(f"a multi-task model needs two or more tasks, got {len(tasks)}")
            names = [t.name for t in tasks]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"task names must be distinct; repeated: {repeated}")
        return tasks
