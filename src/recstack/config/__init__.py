"""Run configurations for ``recstack train``: the YAML schema, loading with overrides, and the model registry."""

from recstack.config.errors import ConfigError
from recstack.config.loading import apply_overrides, dump_config, load_config, read_yaml, validate
from recstack.config.registry import ModelEntry, available_models, model_entry, register_model
from recstack.config.schema import RunConfig

__all__ = [
    "ConfigError",
    "ModelEntry",
    "RunConfig",
    "apply_overrides",
    "available_models",
    "dump_config",
    "load_config",
    "model_entry",
    "read_yaml",
    "register_model",
    "validate",
]
