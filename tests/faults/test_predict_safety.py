"""A model safe to use: a run that misses its goal is never served by default; predict refuses or warns plainly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.faults.conftest import store_uri
from tests.faults.test_bad_input import _assert_clear_error

IRIS_RUN = ["run", "--data", "sklearn:iris", "--max-iterations", "1", "--threads", "1",
            "--set", "model.family=linear"]


def _new_rows(folder):
    from sklearn.datasets import load_iris

    rows = load_iris(as_frame=True).frame.drop(columns="target")
    rows.to_csv(folder / "new.csv", index=False)
    return rows


def test_only_a_run_that_met_its_goal_becomes_champion(in_process, capsys, counts):
    from mlflow import MlflowClient

    from synthloop import registry
    from synthloop.cli import main

    rows = _new_rows(in_process)
    # 1. misses its goal (no model gains 0.99 over a 1/3 baseline): registered, but not champion, and predict refuses to pick it by default
    assert main([*IRIS_RUN, "--set", "goal.min_gain_over_baseline=0.99"]) == 0
    out = capsys.readouterr().out
    assert "version 1 is not made champion: its run missed the goal" in out, out
    client = MlflowClient(store_uri(in_process))
    assert registry.champion(client, "synthloop-model") is None
    assert client.get_model_version("synthloop-model", "1").tags["goal_met"] == "false"
    rc = main(["predict", "new.csv"])
    _assert_clear_error(rc, capsys.readouterr().err, counts, "no champion, because no run met its goal")
    assert not (in_process / "new.predictions.csv").exists()

    # 2. meets its goal: the first such version becomes champion, and the run says so
    assert main([*IRIS_RUN, "--goal", "accuracy >= 0.6"]) == 0
    assert "version 2 is the champion: `synthloop predict` uses it" in capsys.readouterr().out
    assert str(registry.champion(client, "synthloop-model").version) == "2"

    # 3. misses again: the champion stays
    assert main([*IRIS_RUN, "--set", "goal.min_gain_over_baseline=0.99", "--seed", "1"]) == 0
    assert "the champion stays version 2" in capsys.readouterr().out
    assert str(registry.champion(client, "synthloop-model").version) == "2"

    assert main(["predict", "new.csv"]) == 0
    err = capsys.readouterr().err
    assert "models:/synthloop-model@champion" in err and "warning" not in err, err
    assert all(f"{c}: " in err for c in ("0", "1", "2")), err

    # 4. input whose features are mostly missing or that is another table: a warning each
    holes = rows.copy()
    holes.iloc[:, 1:] = np.nan
    holes.to_csv(in_process / "holes.csv", index=False)
    assert main(["predict", "holes.csv"]) == 0
    err = capsys.readouterr().err
    assert "synthloop: warning: 75% of the feature values are missing" in err, err
    rows.assign(a=1, b=2, c=3, d=4, e=5).to_csv(in_process / "wide.csv", index=False)
    assert main(["predict", "wide.csv"]) == 0
    assert "5 of the 9 input columns are not features of the model" in capsys.readouterr().err


def test_predict_where_there_is_no_store_creates_nothing(in_process, capsys, counts):
    from synthloop.cli import main

    _new_rows(in_process)
    before = sorted(p.name for p in in_process.iterdir())
    rc = main(["predict", "new.csv"])
    _assert_clear_error(rc, capsys.readouterr().err, counts, f"no MLflow store at {in_process / 'mlruns'}")
    assert sorted(p.name for p in in_process.iterdir()) == before


def test_the_class_summary_names_every_class_or_counts_the_rest():
    from synthloop.cli_predict import SHOWN_CLASSES, class_summary

    assert class_summary(pd.Series(["a", "a", "b"]), ["a", "b", "c"]) == "predicted classes {a: 2, b: 1, c: 0}"
    many = [f"k{i}" for i in range(SHOWN_CLASSES + 3)]
    text = class_summary(pd.Series(many + ["k0"]), many)
    assert text.startswith("predicted classes {k0: 2, ") and text.endswith("(and 3 more classes: 3 rows)")
