"""Design trials judged by cross-validation on train, and the moves the loop makes on a design.

Validation is kept for the loop's goal check and diagnosis: trials that picked designs on
validation would wear it out (many looks make validation scores optimistic and test scores no better).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthloop.judge import oriented
from synthloop.models import FAMILIES, ModelSpec, compute_metrics, default_spec, fit_model, predict
from synthloop.types import Schema

MAX_CV_ROWS = 20_000
FOLDS = 3

# A few points per family around its defaults: the search is small on purpose (each point is one more
# look at the training rows, and CV scores of many points on small data are optimistic too).
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "xgboost": {"max_depth": [3, 6], "learning_rate": [0.1, 0.3], "min_child_weight": [1.0, 5.0]},
    "hist_gradient_boosting": {"l2_regularization": [0.0, 1.0], "min_samples_leaf": [10, 40]},
    "random_forest": {"min_samples_leaf": [1, 5], "max_features": ["sqrt", 0.5]},
    "linear": {"C": [0.1, 1.0, 10.0]},
}
MAX_POINTS_PER_FAMILY = 4


def search_space(family: str, base: ModelSpec | None = None, *, max_points: int = MAX_POINTS_PER_FAMILY,
                 seed: int = 0) -> list[ModelSpec]:
    """The points of a family's search space, as designs built on `base` (the family's defaults).

    The grid of `SEARCH_SPACES[family]`; when it has more than `max_points` points, a seeded sample of
    them that always keeps the first (the family's usual setting). Linear models set `alpha = 1/C` so the
    same point means the same strength for LogisticRegression (C) and Ridge (alpha).
    """
    import itertools

    if family not in SEARCH_SPACES:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    base = base or default_spec(family)
    if base.family != family:
        raise ValueError(f"base design is {base.family}, not {family}")
    space = SEARCH_SPACES[family]
    grid = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    if len(grid) > max_points:
        rest = np.random.default_rng(seed).choice(np.arange(1, len(grid)), max(0, max_points - 1), replace=False)
        grid = [grid[0]] + [grid[i] for i in sorted(rest)]
    points = []
    for point in grid:
        if family == "linear":
            point = {**point, "alpha": 1.0 / point["C"]}
        points.append(base.with_params(**point))
    return points


def trial_label(spec: ModelSpec) -> str:
    """A short, stable name of a design point, e.g. `xgboost-d3-lr0.1-mcw5`."""
    short = {"max_depth": "d", "learning_rate": "lr", "min_child_weight": "mcw", "l2_regularization": "l2",
             "min_samples_leaf": "leaf", "max_features": "mf", "C": "C"}
    parts = [f"{short[k]}{spec.params[k]:g}" if isinstance(spec.params.get(k), float) else f"{short[k]}{spec.params[k]}"
             for k in SEARCH_SPACES.get(spec.family, {}) if k in spec.params]
    return "-".join([spec.family, *parts])


def cv_rows(X: pd.DataFrame, y: np.ndarray, seed: int, max_rows: int = MAX_CV_ROWS) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows trials cross-validate on: all of them, or a seeded sample of `max_rows`."""
    if len(y) <= max_rows:
        return X, y
    keep = np.sort(np.random.default_rng(seed).choice(len(y), max_rows, replace=False))
    return X.iloc[keep].reset_index(drop=True), y[keep]


def run_trial(spec: ModelSpec, schema: Schema, X: pd.DataFrame, y: np.ndarray, *, metric: str, threads: int,
              seed: int, folds: int = FOLDS, slots: dict[str, int] | None = None) -> dict[str, Any]:
    """One design trial: K-fold CV on train with the fit's threads set on purpose, and where it ran.

    Args:
        spec: The design point.
        schema: Column kinds and task.
        X, y: Training rows (already sampled down to what CV uses).
        metric: The goal metric.
        threads: Threads a fit may use in this process (on a Dask worker: see `slots`).
        seed: Random seed.
        folds: CV folds.
        slots: Task slots per host of the Dask cluster running the trial, when known.
    Returns:
        `cross_validate_spec`'s result plus `label`, `seconds`, `threads`, `worker` (the Dask worker
        address, or "in-process") and `pid`.
    """
    import os
    import time

    from synthloop.parallel import limit_threads, worker_fit_threads

    threads, where = worker_fit_threads(threads, slots)
    start = time.perf_counter()
    with limit_threads(threads):
        out = cross_validate_spec(spec, schema, X, y, metric=metric, threads=threads, seed=seed, folds=folds)
    return {**out, "label": trial_label(spec), "seconds": time.perf_counter() - start, "threads": threads,
            "worker": where, "pid": os.getpid()}


def rank_trials(trials: list[dict[str, Any]], current_family: str | None = None,
                current: ModelSpec | None = None) -> dict[str, Any]:
    """Trials best first, the choice and the runner-up (the next best trial after the choice).

    The choice is a change: with `current` (the loop's design), the best trial of any other design, its own
    family's other settings included, so a family that is clearly best is tuned rather than swapped for a
    worse one; with only `current_family`, the best trial of another family. When nothing else was tried,
    the best trial.
    """
    ranked = sorted(trials, key=lambda t: (-t["score"] if np.isfinite(t["score"]) else np.inf, t["label"]))
    if current is not None:
        new = [t for t in ranked if t["spec"] != current] or ranked
    else:
        new = [t for t in ranked if t["spec"].family != current_family] or ranked
    choice = new[0]
    runner_up = next((t for t in ranked if t is not choice), None)
    return {"ranked": ranked, "choice": choice, "runner_up": runner_up}


def cross_validate_spec(spec: ModelSpec, schema: Schema, X: pd.DataFrame, y: np.ndarray, *, metric: str,
                        threads: int, seed: int, folds: int = FOLDS) -> dict[str, Any]:
    """Mean and spread of a design's score over K folds of the training rows (oriented: higher is better)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    X, y = cv_rows(X, y, seed)
    n_classes = len(schema.classes) if schema.classes else None
    if schema.task == "classification" and np.bincount(y).min(initial=len(y)) >= folds:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed)
    cv_spec = spec.with_params(early_stopping_rounds=None) if spec.family == "xgboost" else spec
    scores = []
    for tr, te in splitter.split(X, y):
        fitted = fit_model(cv_spec, schema, X.iloc[tr], y[tr], threads=threads, seed=seed)
        pred, proba = predict(fitted.pipeline, X.iloc[te], schema.task)
        scores.append(oriented(metric, compute_metrics(schema.task, y[te], pred, proba, n_classes).get(metric, np.nan)))
    return {"spec": spec, "score": float(np.nanmean(scores)), "std": float(np.nanstd(scores)), "folds": folds}


def design_candidates(current: ModelSpec, tried: set[str], n_estimators: int, learning_rate: float,
                      max_depth: int, *, max_points: int = MAX_POINTS_PER_FAMILY, seed: int = 0) -> list[ModelSpec]:
    """The current design (the reference), its family's other search-space points, and the points of every
    family not tried yet."""
    out = [current]
    if current.family in SEARCH_SPACES:
        out += [p for p in search_space(current.family, current, max_points=max_points, seed=seed) if p != current]
    for family in FAMILIES:
        if family not in tried and family != current.family:
            base = default_spec(family, n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth)
            out += [p for p in search_space(family, base, max_points=max_points, seed=seed) if p != current]
    return out


def train_longer(spec: ModelSpec) -> ModelSpec:
    """More rounds (boosting) or trees (forest), or more solver iterations (linear)."""
    p = spec.params
    if spec.family == "xgboost":
        return spec.with_params(n_estimators=p["n_estimators"] * 3)
    if spec.family == "hist_gradient_boosting":
        return spec.with_params(max_iter=p["max_iter"] * 3)
    if spec.family == "random_forest":
        return spec.with_params(n_estimators=p["n_estimators"] * 2)
    return spec.with_params(C=p.get("C", 1.0) * 4)


def regularize(spec: ModelSpec) -> ModelSpec:
    """A more constrained version of the design."""
    p = spec.params
    if spec.family == "xgboost":
        return spec.with_params(max_depth=max(2, p["max_depth"] // 2), min_child_weight=p["min_child_weight"] * 4,
                                reg_lambda=p["reg_lambda"] * 5, subsample=0.8)
    if spec.family == "hist_gradient_boosting":
        return spec.with_params(l2_regularization=max(1.0, p["l2_regularization"] * 5),
                                min_samples_leaf=p["min_samples_leaf"] * 2, max_depth=6)
    if spec.family == "random_forest":
        return spec.with_params(min_samples_leaf=p["min_samples_leaf"] * 3)
    return spec.with_params(C=p.get("C", 1.0) / 4, alpha=p.get("alpha", 1.0) * 4)
