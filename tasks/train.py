"""Design and train: cross-validated design trials on train, then the fit with its loss curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import task

from synthloop.models import ModelSpec, fit_model
from synthloop.types import Schema, Trained, TrainingSet


@task(name="train", task_run_name="train-it{iteration}")
def train_model(data: TrainingSet, spec: ModelSpec, schema: Schema, X_val: pd.DataFrame, y_val: np.ndarray,
                iteration: int, threads: int, seed: int) -> Trained:
    """Fit the design on the training set, recording training and validation loss per round.

    Args:
        data: Real and synthetic training rows with their origin.
        spec: The design.
        schema: Column kinds and task.
        X_val, y_val: Validation rows, for the loss curve and early stopping.
        iteration: Loop iteration.
        threads: Threads the fit may use.
        seed: Random seed.
    Returns:
        The fitted model and what training recorded.
    """
    fitted = fit_model(spec, schema, data.X, data.y, X_val=X_val, y_val=y_val, threads=threads, seed=seed)
    return Trained(spec, fitted.pipeline, fitted.curves, fitted.rounds, fitted.best_round, fitted.fit_seconds,
                   data.n_real, data.n_synthetic)


@task(name="design", task_run_name="design-search-it{iteration}")
def search_design(data: TrainingSet, candidates: list[ModelSpec], schema: Schema, metric: str, iteration: int,
                  threads: int, seed: int) -> list[dict]:
    """Judge candidate designs by cross-validation on train (validation is not looked at).

    Args:
        data: Training rows.
        candidates: Designs to try.
        schema: Column kinds and task.
        metric: The goal metric.
        iteration: Loop iteration.
        threads: Threads each fit may use.
        seed: Random seed.
    Returns:
        One dict per trial (spec, mean and std of the CV score, oriented so higher is better), best first.
    """
    from synthloop.design import cross_validate_spec

    trials = [cross_validate_spec(spec, schema, data.X, data.y, metric=metric, threads=threads, seed=seed)
              for spec in candidates]
    return sorted(trials, key=lambda t: -t["score"])
