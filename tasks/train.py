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
                  threads: int, seed: int, folds: int | None = None, deadline: float | None = None,
                  slots: int = 1) -> list[dict]:
    """Judge candidate designs by cross-validation on train, on this machine without a cluster.

    Validation is not looked at. Each fit uses `threads` threads (OpenMP pools capped to match); `slots` trials
    run at a time, in forks of this process (`synthloop.parallel.forked_pool`). The alternative on a Dask
    cluster, one task per trial, is `flows.trials.design_trials`.

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
        slots: Trials run at a time (1: one after another in this process).
    Returns:
        One dict per trial (spec, label, mean and std of the CV score oriented so higher is better,
        out-of-fold predictions, rounds, seconds, threads, worker "in-process" or "fork <pid>"), best first.
    """
    from synthloop.design import cv_rows, folds_for, rank_trials

    X, y = cv_rows(data.X, data.y, seed)
    folds = folds or folds_for(len(y))
    trials = run_trials_here(candidates, schema, X, y, metric=metric, threads=threads, seed=seed, folds=folds,
                             deadline=deadline, slots=slots)
    return rank_trials(trials)["ranked"]


# What the forks of a search read: set before the pool forks, so they inherit it instead of receiving the rows.
_FORK_WORK: dict = {}


def _forked_trial(index: int) -> dict:
    return _forked_trial_of(_FORK_WORK, index)


def _forked_trial_of(w: dict, index: int) -> dict:
    from synthloop.design import run_trial

    trial = run_trial(w["candidates"][index], w["schema"], w["X"], w["y"], metric=w["metric"], threads=w["threads"],
                      seed=w["seed"], folds=w["folds"])
    return {**trial, "worker": f"fork {trial['pid']}"}


def run_trials_here(candidates: list[ModelSpec], schema: Schema, X: pd.DataFrame, y: np.ndarray, *, metric: str,
                    threads: int, seed: int, folds: int, deadline: float | None = None, slots: int = 1) -> list[dict]:
    """The trials of `candidates`, in their order: one after another, or `slots` at a time in forks.

    A trial starts only while fewer than two have started or the deadline has not passed, so a trial is never cut
    off halfway. A fork that dies (killed, out of memory) makes the rest run here, one after another.
    """
    import time
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    from synthloop.design import run_trial
    from synthloop.parallel import forked_pool

    def may_start(started: int) -> bool:
        return deadline is None or started < 2 or time.monotonic() <= deadline

    finished: list[tuple[int, dict]] = []
    if slots > 1 and len(candidates) > 1:
        _FORK_WORK.update(candidates=candidates, schema=schema, X=X, y=y, metric=metric, threads=threads, seed=seed,
                          folds=folds)
        waiting = list(range(len(candidates)))
        try:
            with forked_pool(slots) as pool:
                running: dict = {}
                while waiting or running:
                    while waiting and len(running) < slots and may_start(len(finished) + len(running)):
                        index = waiting.pop(0)
                        running[pool.submit(_forked_trial, index)] = index
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        finished.append((running.pop(future), future.result()))
        except BrokenProcessPool:
            pass  # the trials not finished run here
        finally:
            _FORK_WORK.clear()
    done_ids = {index for index, _ in finished}
    for index in [i for i in range(len(candidates)) if i not in done_ids]:
        if not may_start(len(finished)):
            break
        finished.append((index, run_trial(candidates[index], schema, X, y, metric=metric, threads=threads, seed=seed,
                                          folds=folds)))
    return [trial for _, trial in sorted(finished, key=lambda pair: pair[0])]
