"""Search spaces, trial ranking and the choice of where trials run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthloop.design import (FIRST_POINTS, SEARCH_SPACES, rank_trials, run_trial, search_plan, skewed_positive,
                              trial_label)
from synthloop.models import FAMILIES, ModelSpec, default_spec
from synthloop.parallel import DaskAddressError, check_address, plan_trials, worker_fit_threads
from synthloop.types import Schema


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_s_drawn_points_are_distinct_designs_from_its_space(family):
    y = np.arange(300) % 2
    plan = search_plan(_schema(), y, trials=60, seed=0, families=(family,))
    assert len(plan) >= 3 and len(plan) == len(set(map(repr, plan)))
    assert all(p.family == family for p in plan)
    assert all(plan[0].params[k] == v for k, v in FIRST_POINTS[family].items())  # the family's first point leads
    for p in plan:
        for name, values in SEARCH_SPACES[family].items():
            assert p.params[name] in values
        if family == "linear":  # the same strength for LogisticRegression (C) and Ridge (alpha)
            assert p.params["alpha"] == pytest.approx(1.0 / p.params["C"])


def test_a_regression_s_extra_trees_start_with_every_feature_a_classification_s_with_half():
    y_reg, y_cls = np.linspace(0, 1, 300), np.arange(300) % 2
    first = {task: next(p for p in search_plan(_schema(task), y, trials=24, seed=0) if p.family == "extra_trees")
             for task, y in (("regression", y_reg), ("classification", y_cls))}
    assert first["regression"].params["max_features"] == 1.0
    assert first["classification"].params["max_features"] == 0.5


def _schema(task="classification", cats=0):
    kinds = {f"x{i}": "numeric" for i in range(3)} | {f"c{i}": "categorical" for i in range(cats)}
    return Schema("y", task, kinds, classes=(0, 1) if task == "classification" else None)


def test_search_plan_starts_with_the_current_design_and_every_family_then_draws_up_to_the_budget():
    current = default_spec("xgboost")
    y = np.arange(200) % 2
    plan = search_plan(_schema(), y, current=current, trials=20, seed=0)
    assert plan[0] == current and len(plan) == 20 and len(set(map(repr, plan))) == 20
    assert {p.family for p in plan[1:1 + len(FAMILIES)]} == set(FAMILIES)
    assert search_plan(_schema(), y, current=current, trials=20, seed=0) == plan  # seeded
    boosting = [p for p in plan if p.family == "xgboost" and p != current]
    assert all(p.params["early_stopping_rounds"] for p in boosting), "CV fits stop early on their held-out fold"
    assert not any(p.params.get("native_categorical") or p.params.get("target_transform") for p in plan)


def test_categorical_columns_and_a_skewed_positive_target_add_native_and_log_candidates():
    rng = np.random.default_rng(0)
    skewed = rng.lognormal(3, 1, 500)
    plan = search_plan(_schema("regression", cats=2), skewed, trials=12, seed=0)
    assert any(p.params.get("native_categorical") for p in plan if p.family == "xgboost")
    assert any(p.params.get("native_categorical") for p in plan if p.family == "hist_gradient_boosting")
    assert any(p.params.get("target_transform") == "log1p" for p in plan)
    symmetric = search_plan(_schema("regression"), rng.normal(size=500), trials=12, seed=0)
    assert not any(p.params.get("target_transform") for p in symmetric)
    assert skewed_positive(skewed) and not skewed_positive(rng.normal(size=500))
    assert not skewed_positive(skewed - 100)  # negative values: no log


def _trial(family, score, label=None):
    return {"spec": ModelSpec(family, {}), "score": score, "std": 0.0, "label": label or f"{family}-{score}",
            "folds": 3}


def test_choice_is_the_best_other_family_and_runner_up_the_next_best():
    trials = [_trial("xgboost", 0.95), _trial("linear", 0.90), _trial("random_forest", 0.93),
              _trial("random_forest", float("nan"))]
    out = rank_trials(trials, current_family="xgboost")
    assert out["ranked"][0]["spec"].family == "xgboost"
    assert out["choice"]["score"] == 0.93 and out["choice"]["spec"].family == "random_forest"
    assert out["runner_up"]["score"] == 0.95
    assert np.isnan(out["ranked"][-1]["score"])
    assert rank_trials(trials[:1], "xgboost")["choice"] is trials[0]  # nothing else to choose


def test_a_family_that_is_clearly_best_is_tuned_not_swapped_for_a_worse_one():
    """Seen on a linear regression problem: the current linear design led CV by 0.998 to 0.79 and was still
    swapped for xgboost. With the current design given, the choice is the best other design of any family."""
    current = ModelSpec("linear", {"C": 1.0})
    trials = [{"spec": current, "score": 0.9976, "std": 0.001, "label": "linear-C1", "folds": 3},
              {"spec": ModelSpec("linear", {"C": 10.0}), "score": 0.9981, "std": 0.001, "label": "linear-C10", "folds": 3},
              {"spec": ModelSpec("xgboost", {"max_depth": 3}), "score": 0.7949, "std": 0.02, "label": "xgb", "folds": 3}]
    out = rank_trials(trials, current_family="linear", current=current)
    assert out["choice"]["label"] == "linear-C10"
    assert rank_trials(trials, current_family="linear")["choice"]["label"] == "xgb"  # family-only: a swap
    assert rank_trials(trials[:1], "linear", current)["choice"] is trials[0]  # nothing else to choose


def test_the_current_design_stays_when_cross_validation_says_it_is_the_best():
    """Seen on a linear regression problem with 100 rows: the diagnosis said "underfits", no other linear setting
    was drawn, and the search swapped linear (CV r2 0.998) for xgboost (0.809); validation fell from 0.998 to 0.843."""
    current = ModelSpec("linear", {"C": 1.0})
    trials = [{"spec": current, "score": 0.9978, "std": 0.001, "label": "linear-C1", "folds": 5},
              {"spec": ModelSpec("xgboost", {"max_depth": 3}), "score": 0.8092, "std": 0.02, "label": "xgb", "folds": 5},
              {"spec": ModelSpec("random_forest", {}), "score": float("nan"), "std": 0.0, "label": "rf", "folds": 5}]
    out = rank_trials(trials, current_family="linear", current=current)
    assert out["choice"]["label"] == "linear-C1"
    assert out["runner_up"]["label"] == "xgb"
    trials[1]["score"] = 0.999  # once another design is better by CV, it is chosen
    assert rank_trials(trials, current_family="linear", current=current)["choice"]["label"] == "xgb"


def test_a_trial_runs_in_process_with_its_threads_and_scores_higher_for_a_better_design():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(150, 3)), columns=["a", "b", "c"])
    y = (X.a > 0).astype(int).to_numpy()
    schema = Schema("y", "classification", {c: "numeric" for c in X.columns}, classes=(0, 1))
    good = run_trial(default_spec("linear"), schema, X, y, metric="accuracy", threads=1, seed=0)
    bad = run_trial(default_spec("linear"), schema, X, rng.permutation(y), metric="accuracy", threads=1, seed=0)
    assert good["worker"] == "in-process" and good["threads"] == 1 and good["label"] == "linear-C1"
    assert good["score"] > 0.9 > 0.7 > bad["score"]


def test_plan_forks_when_cores_allow_serial_when_small_or_switched_off_local_without_forks(monkeypatch):
    small = plan_trials(8, 100, 5, cores=2)
    assert small.mode == "forks" and small.slots == 2 and small.fit_threads == 1  # small fits: one thread each
    assert "forks start in milliseconds" in small.describe() and "2 at a time" in small.describe()
    assert plan_trials(8, 100, 5, cores=2, threads=1).mode == "serial"  # --threads 1 keeps to one core
    assert plan_trials(8, 400_000, 10, cores=2, parallel=False).fit_threads == 2  # big fits keep the cores
    assert plan_trials(1, 10**6, 50, cores=8).mode == "serial"
    assert plan_trials(8, 10**5, 50, cores=1).mode == "serial"
    assert plan_trials(8, 10**5, 50, cores=4, parallel=False).mode == "serial"
    big = plan_trials(8, 10**5, 50, cores=2)
    assert big.mode == "forks" and big.slots == 2 and big.fit_threads == 1
    few = plan_trials(3, 10**5, 50, cores=8)
    assert few.slots == 3 and few.fit_threads == 2  # slots × fit threads never exceed the cores
    monkeypatch.setenv("SYNTHLOOP_FORKED_TRIALS", "0")
    assert plan_trials(8, 100, 5, cores=2).mode == "serial"
    assert plan_trials(8, 100, 5, cores=2).fit_threads == 1
    assert "small search" in plan_trials(8, 100, 5, cores=2).reason
    big = plan_trials(8, 10**5, 50, cores=2)
    assert big.mode == "local" and big.n_workers == 2 and big.fit_threads == 1
    few = plan_trials(3, 10**5, 50, cores=8)
    assert few.n_workers == 3 and few.fit_threads == 2  # workers × fit threads never exceed the cores
    assert few.runner_kwargs()["cluster_kwargs"]["threads_per_worker"] == 1
    remote = plan_trials(4, 50, 2, address="tcp://10.0.0.5:8786")
    assert remote.mode == "address" and remote.runner_kwargs() == {"address": "tcp://10.0.0.5:8786"}


def _forked_search_rows():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 4)), columns=[f"x{i}" for i in range(4)])
    y = ((X.x0 + X.x1 * X.x2 + rng.normal(scale=0.5, size=400)) > 0).astype(int).to_numpy()
    schema = Schema("y", "classification", {c: "numeric" for c in X.columns}, classes=(0, 1))
    candidates = search_plan(schema, y, trials=6, seed=0)
    return schema, X, y, candidates


def test_trials_in_forks_score_as_one_after_another_and_run_in_other_processes():
    import os

    from synthloop.tasks.train import run_trials_here

    schema, X, y, candidates = _forked_search_rows()
    here = run_trials_here(candidates, schema, X, y, metric="accuracy", threads=1, seed=0, folds=3, slots=1)
    forked = run_trials_here(candidates, schema, X, y, metric="accuracy", threads=1, seed=0, folds=3, slots=2)
    assert [t["label"] for t in forked] == [t["label"] for t in here]  # the candidates' order
    assert np.allclose([t["score"] for t in forked], [t["score"] for t in here])
    assert np.allclose(forked[0]["oof"], here[0]["oof"])  # out-of-fold predictions come back for the ensemble
    assert {t["worker"] for t in here} == {"in-process"}
    pids = {t["pid"] for t in forked}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert all(t["worker"] == f"fork {t['pid']}" for t in forked)


def _dies_on_the_third(index):
    import os

    from synthloop.tasks.train import _FORK_WORK, _forked_trial_of

    if index == 2:
        os._exit(3)  # as a fork the kernel kills for lack of memory
    return _forked_trial_of(_FORK_WORK, index)


def test_a_fork_that_dies_leaves_its_trials_to_this_process(monkeypatch):
    import synthloop.tasks.train as train

    schema, X, y, candidates = _forked_search_rows()
    monkeypatch.setattr(train, "_forked_trial", _dies_on_the_third)  # the forks inherit it
    trials = train.run_trials_here(candidates, schema, X, y, metric="accuracy", threads=1, seed=0, folds=3, slots=2)
    assert [t["label"] for t in trials] == [trial_label(c) for c in candidates]
    assert trials[2]["worker"] == "in-process" and np.isfinite(trials[2]["score"])


@pytest.mark.parametrize("bad", ["10.0.0.5:8786", "tcp://host", "http://x:1", "tcp://a b:1"])
def test_malformed_dask_address_is_refused(bad):
    with pytest.raises(DaskAddressError):
        check_address(bad)


def test_config_and_cli_take_the_dask_address():
    from synthloop.cli import _overrides, _parser
    from synthloop.config import Config
    from synthloop.errors import ConfigError

    args = _parser().parse_args(["run", "--dask-address", "tcp://127.0.0.1:8786"])
    cfg = Config.load(None, _overrides(args))
    assert cfg.dask.address == "tcp://127.0.0.1:8786" and cfg.dask.parallel_trials is True
    with pytest.raises(ConfigError, match="dask.address"):
        Config.load(None, {"dask.address": "localhost"})


def test_outside_a_dask_worker_the_fit_keeps_the_given_threads():
    assert worker_fit_threads(3) == (3, "in-process")


def test_help_and_argument_errors_import_no_heavy_library():
    """`synthloop --help` must answer at once: Prefect, MLflow, xgboost, scikit-learn, pandas, Dask load
    only inside the commands that need them (a fresh interpreter, so nothing is imported already)."""
    import subprocess
    import sys

    code = ("import sys\nfrom synthloop import cli\nfor argv in (['--help'], ['run', '--model', 'bogus']):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = ('prefect', 'mlflow', 'xgboost', 'sklearn', 'pandas', 'numpy', 'dask', 'distributed', 'pydantic')\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_rare_class_and_a_design_that_cannot_fit_do_not_end_the_search():
    from synthloop.design import choose_design

    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = (X.a > 0).astype(int).to_numpy().copy()
    y[:3] = 2  # a class of three rows, fewer than the five folds
    schema = Schema("y", "classification", {c: "numeric" for c in X.columns}, classes=(0, 1, 2))
    good = run_trial(default_spec("xgboost", n_estimators=20), schema, X, y, metric="accuracy", threads=1, seed=0)
    assert np.isfinite(good["score"]) and good["oof"].shape == (200, 3)
    broken = run_trial(ModelSpec("linear", {"C": -1.0}), schema, X, y, metric="accuracy", threads=1, seed=0)
    assert np.isnan(broken["score"]) and "C" in broken["error"]
    out = choose_design([good, broken], schema, y, "accuracy")
    assert out["choice"]["spec"].family == "xgboost" and out["ensemble"] is None


def test_a_linear_model_does_not_extrapolate_past_the_rows_it_was_fitted_on():
    from synthloop.models import TrainRangeClipper, fit_model, predict

    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"area": rng.lognormal(7, 0.3, n), "rare_flag": (np.arange(n) < 3).astype(float),
                      "x2": rng.normal(size=n)})
    y = 100 * X["area"].to_numpy() + rng.normal(0, 50, n)
    schema = Schema("y", "regression", {"area": "numeric", "rare_flag": "numeric", "x2": "numeric"})
    fitted = fit_model(default_spec("linear"), schema, X, y)
    huge = X.iloc[:1].assign(area=X["area"].max() * 5)
    pred, _ = predict(fitted.pipeline, huge, "regression")
    # The slope would give ~5x the largest price; clipped to train's 99.5 % quantile it stays inside what y held.
    assert pred[0] <= y.max() * 1.05
    clip = TrainRangeClipper().fit(X.to_numpy())
    assert clip.upper_[0] == pytest.approx(np.quantile(X["area"], 0.995))
    # A column with few values keeps them all: three rare 1s are not folded into the 0s.
    assert (clip.lower_[1], clip.upper_[1]) == (0.0, 1.0)
    assert clip.transform(X.to_numpy())[:3, 1].tolist() == [1.0, 1.0, 1.0]
    nan_row = np.array([[np.nan, 0.0, 0.0]])
    assert np.isnan(clip.transform(nan_row)[0, 0])  # missing stays missing for the imputer's indicator


def test_a_logistic_model_keeps_its_train_rows_as_they_are_and_clips_only_beyond_them():
    from synthloop.models import TrainRangeClipper, build_preprocessor

    def clipper(task):
        pre = build_preprocessor(_schema(task), "linear")
        num = dict((name, step) for name, step, _ in pre.transformers)["num"]
        return next(s for s in num.named_steps.values() if isinstance(s, TrainRangeClipper))

    assert clipper("classification").q == 0.0  # extreme train values (a denial's debt ratio) keep their signal
    assert clipper("regression").q == TrainRangeClipper.REGRESSION_Q > 0
    X = np.random.default_rng(1).normal(size=(300, 2))
    clip = TrainRangeClipper(q=0.0).fit(X)
    assert np.array_equal(clip.transform(X), X)
    assert clip.transform(np.array([[1e6, -1e6]])).tolist() == [[X[:, 0].max(), X[:, 1].min()]]
