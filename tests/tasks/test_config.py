"""The one config object: YAML, dotted overrides, and one clear message per bad value."""

from __future__ import annotations

import pytest

from synthloop.config import Config, GoalConfig
from synthloop.errors import ConfigError


def test_embedded_default_has_a_pool_and_a_reachable_goal():
    cfg = Config.load()
    assert cfg.data.source == "sklearn:digits" and cfg.data.initial_labelled == 60
    assert cfg.goal.metric == "accuracy" and cfg.goal.threshold == 0.95


def test_a_data_override_starts_from_plain_defaults():
    cfg = Config.load(None, {"data.source": "x.csv", "data.target": "y", "loop.max_iterations": 3})
    assert cfg.data.initial_labelled is None and cfg.goal.threshold is None and cfg.loop.max_iterations == 3


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 7\ndata:\n  source: a.parquet\n  target: label\ngoal: 'f1_macro >= 0.8'\n")
    cfg = Config.load(path, {"seed": 9})
    assert (cfg.seed, cfg.data.source, cfg.goal.metric, cfg.goal.threshold) == (9, "a.parquet", "f1_macro", 0.8)


@pytest.mark.parametrize("overrides, field", [
    ({"loop.max_iterations": 0}, "loop.max_iterations"),
    ({"loop.max_iterations": "many"}, "loop.max_iterations"),
    ({"goal.metric": "accuracy", "goal.threshold": 1.5}, "goal"),
    ({"data.val_fraction": 0.7}, "data.val_fraction"),
    ({"data.sauce": "x"}, "data.sauce"),
    ({"annotation.budget": -1}, "annotation.budget"),
])
def test_bad_values_name_the_field_in_one_line(overrides, field):
    with pytest.raises(ConfigError) as err:
        Config.load(None, {"data.source": "x.csv", **overrides})
    message = str(err.value)
    assert field in message and "\n" not in message


def test_missing_and_malformed_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.load(bad)


@pytest.mark.parametrize("text, metric, threshold", [("accuracy >= 0.9", "accuracy", 0.9),
                                                      ("rmse<=600", "rmse", 600.0), ("r2 > 0.5", "r2", 0.5),
                                                      ("roc_auc", "roc_auc", None), (" Log_Loss ", "log_loss", None)])
def test_goal_expressions(text, metric, threshold):
    goal = GoalConfig.parse(text)
    assert (goal.metric, goal.threshold) == (metric, threshold)


@pytest.mark.parametrize("text", ["accuracy <= 0.9", "speed >= 3", "accuracy is high", "auc"])
def test_bad_goal_expressions(text):
    with pytest.raises(ConfigError, match="goal"):
        GoalConfig.parse(text)


def test_a_tracker_does_not_leak_its_store_into_the_environment(tmp_path, monkeypatch):
    import os

    from synthloop.tracking import Tracker

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = Tracker(f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}", "e")
    second = Tracker(f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}", "e")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert first.uri != second.uri and second.uri.endswith("b/mlflow.db")


def test_a_bare_off_turns_the_leak_check_off_in_a_file_and_on_the_command_line(tmp_path):
    import yaml

    from synthloop.config import Config

    path = tmp_path / "c.yaml"
    path.write_text("data:\n  source: sklearn:iris\n  leak_check: off\n")
    assert Config.load(path).data.leak_check == "off"
    # `--set data.leak_check=off`: the CLI reads the value as YAML, as a file is read
    assert Config.load(None, {"data.leak_check": yaml.safe_load("off")}).data.leak_check == "off"
    assert Config.load(None, {"data.leak_check": "warn"}).data.leak_check == "warn"
