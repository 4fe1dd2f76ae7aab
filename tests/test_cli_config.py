"""The run config: schema validation, error messages that name the key, ``--set`` overrides, the model registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from recstack.cli import main
from recstack.config import (
    ConfigError,
    apply_overrides,
    available_models,
    dump_config,
    load_config,
    register_model,
    validate,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def base() -> dict:
    return {
        "data": {"synthetic": {"generator": "ctr", "rows": 500}},
        "features": {"sparse": [{"names": ["C*"]}]},
        "model": {"name": "DeepFM"},
    }


def error_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate(raw, "cfg.yaml")
    return str(info.value)


def test_unknown_top_level_key_suggests_the_nearest():
    raw = base()
    raw["modle"] = raw.pop("model")
    message = error_of(raw)
    first = message.splitlines()[0]
    assert first.startswith("cfg.yaml: modle: unknown key; did you mean 'model'?")
    assert "valid keys here: data, features, model, trainer, metrics, output" in first


def test_unknown_nested_key_names_its_path_and_suggestion():
    raw = base()
    raw["trainer"] = {"optimzer": "adam"}
    raw["features"]["sparse"][0]["embeding_dim"] = 4
    lines = error_of(raw).splitlines()
    assert any(ln.startswith("cfg.yaml: trainer.optimzer: unknown key; did you mean 'optimizer'?") for ln in lines)
    assert any("features.sparse.0.embeding_dim: unknown key; did you mean 'embedding_dim'?" in ln for ln in lines)


def test_wrong_type_names_the_key_path_and_expected_type():
    raw = base()
    raw["trainer"] = {"epochs": "five", "batch_size": -3}
    lines = error_of(raw).splitlines()
    assert "cfg.yaml: trainer.epochs: expected an integer > 0, got 'five'" in lines[0]
    assert any(ln.startswith("cfg.yaml: trainer.batch_size: expected an integer > 0, got -3") for ln in lines)


def test_literal_and_union_types_are_described():
    raw = base()
    raw["trainer"] = {"optimizer": "adamw"}
    raw["features"]["sparse"][0]["embedding_dim"] = "big"
    message = error_of(raw)
    assert "trainer.optimizer: expected one of 'adam', 'adagrad', 'sgd', 'rmsprop', got 'adamw'" in message
    assert "features.sparse.0.embedding_dim: expected an integer > 0 or one of 'auto', got 'big'" in message


def test_unknown_model_lists_the_available_ones():
    raw = base()
    raw["model"]["name"] = "DeepFMM"
    message = error_of(raw)
    assert "model.name: unknown model 'DeepFMM' (did you mean 'DeepFM'?)" in message
    for name in ("DeepFM", "DCN", "TwoTower", "MatrixFactorizationModel"):
        assert name in message.split("available: ")[1]


def test_unknown_model_parameter_suggests_the_constructor_argument():
    raw = base()
    raw["model"]["params"] = {"dnn_hiden_units": [8]}
    assert (
        "model.params.dnn_hiden_units: DeepFM has no parameter 'dnn_hiden_units'; did you mean "
        "'dnn_hidden_units'?" in error_of(raw)
    )
    raw["model"]["params"] = {"seed": 3}
    assert "model.params.seed: set by recstack train" in error_of(raw)


def test_data_needs_exactly_one_source_and_a_valid_split():
    raw = base()
    raw["data"]["paths"] = "x.parquet"
    assert "give exactly one data source" in error_of(raw)
    raw = base()
    raw["data"]["split"] = {"method": "time"}
    assert "data.split: method 'time' needs time_column" in error_of(raw)


def test_set_overrides_are_typed_by_the_schema(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base()))
    config = load_config(
        path,
        [
            "trainer.epochs=5",
            "trainer.lr=1e-2",
            "model.params.dnn_hidden_units=[16, 8]",
            "features.sparse.0.embedding_dim=auto",
        ],
    )
    assert config.trainer.epochs == 5 and isinstance(config.trainer.epochs, int)
    assert config.trainer.lr == pytest.approx(0.01)
    assert config.model.params["dnn_hidden_units"] == [16, 8]
    assert config.features.sparse[0].embedding_dim == "auto"
    with pytest.raises(ConfigError, match=r"trainer\.epochs: expected an integer > 0, got 'many'"):
        load_config(path, ["trainer.epochs=many"])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        apply_overrides({}, ["trainer.epochs"])
    with pytest.raises(ConfigError, match="not an index of a list of 1 items"):
        apply_overrides(base(), ["features.sparse.3.names=[a]"])


def test_resolved_config_round_trips_through_yaml():
    config = validate(base())
    again = validate(yaml.safe_load(dump_config(config)))
    assert again == config
    assert again.trainer.strategy == "local"


def test_every_shipped_config_validates():
    names = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    assert len(names) >= 5
    for path in CONFIGS.glob("*.yaml"):
        load_config(path)


def test_registered_model_becomes_available():
    from recstack.models import DeepFM

    register_model(
        "DeepFMForConfigTest",
        DeepFM,
        "ranking",
        filled=("linear_feature_columns", "dnn_feature_columns", "seed", "device"),
    )
    assert "DeepFMForConfigTest" in available_models()
    raw = base()
    raw["model"] = {"name": "DeepFMForConfigTest", "params": {"dnn_hidden_units": [8]}}
    assert validate(raw).model.name == "DeepFMForConfigTest"


def test_cli_reports_config_errors_on_one_line_with_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    raw = base()
    raw["modle"] = raw.pop("model")
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"recstack train: error: {path}: modle: unknown key; did you mean 'model'?")
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_cli_reports_malformed_yaml_and_missing_files(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("data: [unclosed\n")
    assert main(["train", str(path)]) == 2
    assert "not valid YAML at line" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "absent.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
