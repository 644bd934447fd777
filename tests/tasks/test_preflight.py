"""The pre-check of a run: a large file is checked from its header only; a small one as the collect stage will."""

from __future__ import annotations

import pandas as pd
import pytest

from synthloop import preflight
from synthloop.config import Config
from synthloop.errors import ConfigError, DataError


def _frame(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame({"size": [i % 9 + 0.5 for i in range(n)], "colour": ["red", "blue", "green"] * (n // 3),
                         "species": ["rose", "tulip"] * (n // 2)})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_large_file_is_checked_from_its_header(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"flowers{suffix}"
    _frame().to_csv(path, index=False) if suffix == ".csv" else _frame().to_parquet(path)
    monkeypatch.setattr(preflight, "FULL_READ_BYTES", 10)
    found = preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "species"}))
    assert found == {"target": "species", "task": None, "columns": ["size", "colour", "species"], "full": False}
    with pytest.raises(DataError, match="target column 'specie' not found; close matches: 'species'"):
        preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "specie"}))
    with pytest.raises(DataError, match="'color' named in data.drop_columns"):
        preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "species",
                                               "data.drop_columns": ["color"]}))
    with pytest.raises(ConfigError, match="rmse is a regression metric"):  # a given task is checked against the goal
        preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "species",
                                               "data.task": "classification", "goal.metric": "rmse"}))


def test_a_small_file_is_checked_whole(tmp_path):
    path = tmp_path / "flowers.csv"
    _frame().to_csv(path, index=False)
    found = preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "species"}))
    assert found["full"] and found["task"] == "classification"
    _frame(6).to_csv(path, index=False)  # 3 rows per class cannot be split three ways
    with pytest.raises(DataError, match="flowers.csv"):
        preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "species"}))


def test_a_simulator_is_tried_on_few_rows_and_named_as_written():
    source = "simulate:classification?n_rows=1000000&n_features=3&n_informative=5"
    with pytest.raises(DataError) as exc:
        preflight.check_run(Config.load(None, {"data.source": source}))
    assert str(exc.value).startswith(source + ": ") and "n_informative" in str(exc.value)
    ok = preflight.check_run(Config.load(None, {"data.source": "simulate:regression?n_rows=1000000"}))
    assert ok["task"] == "regression" and ok["full"]
