"""Design and train: cross-validated design trials on train, then the fit with its loss curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from synthloop.faults import inject
from synthloop.memory import release_freed_memory
from synthloop.models import ModelSpec, fit_model
from synthloop.types import Schema, Trained, TrainingSet
from synthloop.tasks.cache import RESULTS, STAGE_CACHE


@task(name="train", task_run_name="train-it{iteration}", cache_policy=STAGE_CACHE, persist_result=True,
      result_serializer=RESULTS)
def train_model(data: TrainingSet, spec: ModelSpec, schema: Schema, X_val: pd.DataFrame, y_val: np.ndarray,
                iteration: int, threads: int, seed: int, init_model=None) -> Trained:
    """Fit the design on the training set, recording training and validation loss per round.

    Args:
        data: Real and synthetic training rows with their origin.
        spec: The design.
        schema: Column kinds and task.
        X_val, y_val: Validation rows, for the loss curve (and early stopping on fewer than 1,000 training rows;
            from there on boosting stops early on a tenth of the training rows, so validation stays unbiased).
        iteration: Loop iteration.
        threads: Threads the fit may use.
        seed: Random seed.
        init_model: A pre-trained pipeline to fine-tune (xgboost continues boosting, a forest adds trees).
    Returns:
        The fitted model and what training recorded.
    """
    inject("train")
    fitted = fit_model(spec, schema, data.X, data.y, X_val=X_val, y_val=y_val, threads=threads, seed=seed,
                       holdout_stopping=True,
                       init_model=init_model)
    release_freed_memory()  # the transformed rows and xgboost's own buffers of the fit
    return Trained(spec, fitted.pipeline, fitted.curves, fitted.rounds, fitted.best_round, fitted.fit_seconds,
                   data.n_real, data.n_synthetic)


@task(name="pretrain", task_run_name="pretrain")
def pretrain_model(X: pd.DataFrame, y: np.ndarray, spec: ModelSpec, schema: Schema, threads: int, seed: int):
    """Pre-train the design on a large (existing, simulated or synthetic) set, to be fine-tuned on real rows.

    Args:
        X, y: The pre-training rows and encoded target.
        spec: The design (xgboost or random_forest can be fine-tuned).
        schema: Column kinds and task.
        threads: Threads the fit may use.
        seed: Random seed.
    Returns:
        The fitted pipeline.
    """
    return fit_model(spec.with_params(early_stopping_rounds=None) if spec.family == "xgboost" else spec, schema, X, y,
                     threads=threads, seed=seed).pipeline


@task(name="design", task_run_name="design-search-it{iteration}", cache_policy=NO_CACHE)
def search_design(data: TrainingSet, candidates: list[ModelSpec], schema: Schema, metric: str, iteration: int,
                  threads: int, seed: int, folds: int | None = None, deadline: float | None = None) -> list[dict]:
    """Judge candidate designs by cross-validation on train, one after another in this process.

    Validation is not looked at. Each fit uses `threads` threads (OpenMP pools capped to match). The
    parallel alternative, one task per trial on Dask, is `flows.trials.design_trials`.

    Args:
        data: Training rows.
        candidates: Designs to try, most promising first.
        schema: Column kinds and task.
        metric: The goal metric.
        iteration: Loop iteration.
        threads: Threads each fit may use.
        seed: Random seed.
        folds: CV folds (default: `synthloop.design.folds_for` the rows).
        deadline: A `time.monotonic()` value after which no new trial starts (the first two always run).
    Returns:
        One dict per trial (spec, label, mean and std of the CV score oriented so higher is better,
        out-of-fold predictions, rounds, seconds, threads, worker "in-process"), best first.
    """
    import time

    from synthloop.design import cv_rows, folds_for, rank_trials, run_trial

    X, y = cv_rows(data.X, data.y, seed)
    folds = folds or folds_for(len(y))
    trials = []
    for spec in candidates:
        if deadline is not None and len(trials) >= 2 and time.monotonic() > deadline:
            break
        trials.append(run_trial(spec, schema, X, y, metric=metric, threads=threads, seed=seed, folds=folds))
    return rank_trials(trials)["ranked"]
