"""Design trials judged by cross-validation on train, and the moves the loop makes on a design.

Validation is kept for the loop's goal check and diagnosis: trials that picked designs on
validation would wear it out (many looks make validation scores optimistic and test scores no better).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthloop.judge import oriented
from synthloop.models import FAMILIES, ModelSpec, compute_metrics, default_spec, fit_model
from synthloop.types import Schema

MAX_CV_ROWS = 20_000
FOLDS = 5  # at most; fewer on big data (`folds_for`)
CV_MAX_ROUNDS = 1000  # boosting rounds a CV fit may grow before its own early stopping ends it
CV_EARLY_STOPPING = 40
REFIT_ROUNDS_FACTOR = 1.1  # the refit on all train rows has 1/(K-1) more rows than a fold: a few more rounds
DEFAULT_TRIALS = 24

# What the search samples per family. The first point of each family (`FIRST_POINTS`) is a setting that does well
# on most tabular data; the rest are drawn from these choices, round robin over the families, up to the budget.
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "xgboost": {"learning_rate": [0.05, 0.08, 0.12, 0.2], "max_depth": [3, 4, 5, 6, 8, 10],
                "min_child_weight": [1.0, 2.0, 5.0, 10.0, 20.0], "subsample": [0.6, 0.7, 0.8, 0.9, 1.0],
                "colsample_bytree": [0.4, 0.6, 0.8, 1.0], "reg_lambda": [0.1, 1.0, 5.0, 20.0],
                "reg_alpha": [0.0, 0.1, 1.0]},
    "hist_gradient_boosting": {"learning_rate": [0.05, 0.08, 0.12, 0.2], "max_leaf_nodes": [7, 15, 31, 63, 127],
                               "min_samples_leaf": [5, 10, 20, 40, 80], "l2_regularization": [0.0, 0.1, 1.0, 10.0],
                               "max_features": [0.5, 0.8, 1.0]},
    "random_forest": {"min_samples_leaf": [1, 2, 5], "max_features": ["sqrt", 0.3, 0.5, 0.8]},
    "extra_trees": {"min_samples_leaf": [1, 2, 5], "max_features": ["sqrt", 0.3, 0.5, 0.8, 1.0]},
    "linear": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
}
FIRST_POINTS: dict[str, dict[str, Any]] = {
    "xgboost": {"learning_rate": 0.05, "max_depth": 6, "min_child_weight": 1.0, "subsample": 0.8,
                "colsample_bytree": 0.8, "reg_lambda": 1.0, "reg_alpha": 0.0},
    "hist_gradient_boosting": {"learning_rate": 0.05, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                               "l2_regularization": 0.0, "max_features": 1.0},
    "extra_trees": {"min_samples_leaf": 1, "max_features": 0.5},
    "random_forest": {"min_samples_leaf": 1, "max_features": "sqrt"},
    "linear": {"C": 1.0},
}
# A regression's extra trees start with every feature at each split: Geurts, Ernst and Wehenkel (2006), "Extremely
# randomized trees" (Machine Learning 63), recommend K = all features for regression, as scikit-learn's default
# does. Cross-validated on the train rows of seeds 0 and 1 it beat max_features 0.5 on txhousing (R² 0.9970 ->
# 0.9982, 0.9970 -> 0.9978), computers (0.887 -> 0.892, 0.892 -> 0.899) and hotel_rates, tied on ames.
REGRESSION_FIRST_POINTS: dict[str, dict[str, Any]] = {
    "extra_trees": {**FIRST_POINTS["extra_trees"], "max_features": 1.0},
}
# After the first points, which family each next draw is from: boosting leads tabular data, forests add diversity.
DRAW_ORDER = ("xgboost", "hist_gradient_boosting", "xgboost", "hist_gradient_boosting", "extra_trees",
              "xgboost", "hist_gradient_boosting", "random_forest")
SKEW_FOR_LOG = 0.75  # a positive target this skewed gets log-target candidates


def folds_for(n_rows: int) -> int:
    return FOLDS if n_rows <= 10_000 else 3


def skewed_positive(y: np.ndarray) -> bool:
    """A regression target that is never negative and skewed to the right: a log target may fit it better."""
    from scipy.stats import skew

    y = np.asarray(y, dtype=float)
    return bool(len(y) > 10 and np.nanmin(y) >= 0 and float(skew(y[np.isfinite(y)])) > SKEW_FOR_LOG)


def search_base(family: str) -> ModelSpec:
    """A family's design as the search fits it: boosting grows until its own early stopping (on the CV fold)."""
    if family == "xgboost":
        return default_spec(family).with_params(n_estimators=CV_MAX_ROUNDS, early_stopping_rounds=CV_EARLY_STOPPING)
    if family == "hist_gradient_boosting":
        return default_spec(family).with_params(max_iter=CV_MAX_ROUNDS, max_depth=None)
    if family in ("random_forest", "extra_trees"):
        return default_spec(family).with_params(n_estimators=200)
    return default_spec(family)


def search_plan(schema: Schema, y: np.ndarray, *, current: ModelSpec | None = None, trials: int = DEFAULT_TRIALS,
                seed: int = 0, families: tuple[str, ...] = FAMILIES) -> list[ModelSpec]:
    """The designs a search tries, in order: the current design, each family's first point, then seeded draws.

    Categorical columns add boosting points with the family's own categorical splits (`native_categorical`); a
    skewed positive regression target adds points fitted on log(1 + y) (`target_transform`). Cross-validation
    decides whether either helps.
    """
    rng = np.random.default_rng(seed)
    has_cat = bool(schema.columns_of("categorical"))
    log_ok = schema.task == "regression" and skewed_positive(y)
    plan: list[ModelSpec] = [current] if current is not None else []

    def add(spec: ModelSpec) -> None:
        if spec not in plan and len(plan) < trials:
            plan.append(spec)

    for family in families:
        if family in FIRST_POINTS:
            add(search_base(family).with_params(**first_point(family, schema.task)))
    for family in ("xgboost", "hist_gradient_boosting"):
        if family in families:
            first = search_base(family).with_params(**first_point(family, schema.task))
            if log_ok:
                add(first.with_params(target_transform="log1p"))
            if has_cat:
                add(first.with_params(native_categorical=True))
    order = [f for f in DRAW_ORDER if f in families] or list(families)
    misses = 0
    while len(plan) < trials and misses < 50:
        family = order[(len(plan) + misses) % len(order)]
        point = _draw(family, rng)
        if family in ("xgboost", "hist_gradient_boosting"):
            if has_cat and rng.random() < 0.5:
                point["native_categorical"] = True
            if log_ok and rng.random() < 0.5:
                point["target_transform"] = "log1p"
        spec = search_base(family).with_params(**point)
        if spec in plan:
            misses += 1
        else:
            add(spec)
    return plan


def first_point(family: str, task: str) -> dict[str, Any]:
    """A family's first search point for the task."""
    if task == "regression" and family in REGRESSION_FIRST_POINTS:
        return REGRESSION_FIRST_POINTS[family]
    return FIRST_POINTS[family]


def _draw(family: str, rng: np.random.Generator) -> dict[str, Any]:
    """One seeded point of a family's search space; linear models set `alpha = 1/C`, so the same point means the same
    strength for LogisticRegression (C) and Ridge (alpha)."""
    point = {k: v[int(rng.integers(len(v)))] for k, v in SEARCH_SPACES[family].items()}
    if family == "linear":
        point["alpha"] = 1.0 / point["C"]
    return point


def trial_label(spec: ModelSpec) -> str:
    """A short, stable name of a design point, e.g. `xgboost-d6-lr0.05-mcw1-ss0.8-cs0.8-cat-log`."""
    if spec.family == "ensemble":
        return f"ensemble-of-{len(spec.params['members'])}"
    short = {"max_depth": "d", "learning_rate": "lr", "min_child_weight": "mcw", "subsample": "ss",
             "colsample_bytree": "cs", "reg_lambda": "l2", "reg_alpha": "l1", "l2_regularization": "l2",
             "max_leaf_nodes": "leaves", "min_samples_leaf": "leaf", "max_features": "mf", "C": "C"}
    parts = [f"{short[k]}{spec.params[k]:g}" if isinstance(spec.params.get(k), float) else f"{short[k]}{spec.params[k]}"
             for k in SEARCH_SPACES.get(spec.family, {}) if k in spec.params and spec.params[k] is not None]
    if spec.params.get("native_categorical"):
        parts.append("cat")
    if spec.params.get("target_transform") == "log1p":
        parts.append("log")
    return "-".join([spec.family, *parts])


def design_params(spec: ModelSpec) -> dict[str, Any]:
    """A design as MLflow params: its family and settings; an ensemble's members by label and weight."""
    if spec.family == "ensemble":
        return {"family": "ensemble", **{f"member_{i}": f"{w:g} × {trial_label(m)}"
                                         for i, (m, w) in enumerate(zip(spec.params["members"], spec.params["weights"]))}}
    return {"family": spec.family, **spec.params}


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
        try:
            out = cross_validate_spec(spec, schema, X, y, metric=metric, threads=threads, seed=seed, folds=folds)
        except Exception as exc:  # noqa: BLE001 - one design that cannot fit these rows must not end the search
            out = {"spec": spec, "score": float("nan"), "std": float("nan"), "folds": folds, "oof": None,
                   "rounds": None, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    return {**out, "label": trial_label(spec), "seconds": time.perf_counter() - start, "threads": threads,
            "worker": where, "pid": os.getpid()}


def rank_trials(trials: list[dict[str, Any]], current_family: str | None = None,
                current: ModelSpec | None = None) -> dict[str, Any]:
    """Trials best first, the choice and the runner-up (the next best trial after the choice).

    With `current` (the loop's design), the choice is the best trial of any other design, its own family's other
    settings included, so a family that is clearly best is tuned rather than swapped for a worse one; when the
    current design itself scores best, it stays (a diagnosis asked for a change, but cross-validation says no
    other design is better). With only `current_family`, the best trial of another family. When nothing else
    was tried, the best trial.
    """
    ranked = sorted(trials, key=lambda t: (-t["score"] if np.isfinite(t["score"]) else np.inf, t["label"]))
    if current is not None:
        new = [t for t in ranked if t["spec"] != current] or ranked
        kept = next((t for t in ranked if t["spec"] == current and np.isfinite(t["score"])), None)
        if kept is not None and (not np.isfinite(new[0]["score"]) or kept["score"] > new[0]["score"]):
            new = [kept]
    else:
        new = [t for t in ranked if t["spec"].family != current_family] or ranked
    choice = new[0]
    runner_up = next((t for t in ranked if t is not choice), None)
    return {"ranked": ranked, "choice": choice, "runner_up": runner_up}


def _folds(schema: Schema, y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train / held-out row indices of K folds: stratified for classification, also when a class has fewer rows
    than folds (scikit-learn then only warns), so each fold's training part keeps every class it can."""
    import warnings

    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)[np.bincount(y) > 0] if schema.task == "classification" else np.array([])
    if len(counts) and counts.min() >= 2 and counts.max() >= folds:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    return list(KFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y))))


def cross_validate_spec(spec: ModelSpec, schema: Schema, X: pd.DataFrame, y: np.ndarray, *, metric: str,
                        threads: int, seed: int, folds: int = FOLDS) -> dict[str, Any]:
    """Mean and spread of a design's score over K folds of the training rows (oriented: higher is better).

    Boosting stops early on each held-out fold, and the rounds it kept are returned, so the design refitted on
    all train rows (`refit_spec`) grows about as many without looking at anything but train. The out-of-fold
    predictions (class probabilities, or values) are returned for ensemble selection.
    """
    from synthloop.ensemble import member_proba

    X, y = cv_rows(X, y, seed)
    n_classes = len(schema.classes) if schema.classes else None
    scores, rounds = [], []
    oof = np.zeros((len(y), n_classes) if schema.task == "classification" else len(y))
    for tr, te in _folds(schema, y, folds, seed):
        boosting = spec.family == "xgboost" and spec.params.get("early_stopping_rounds")
        fitted = fit_model(spec, schema, X.iloc[tr], y[tr], X_val=X.iloc[te] if boosting else None,
                           y_val=y[te] if boosting else None, threads=threads, seed=seed)
        if schema.task == "classification":
            proba = member_proba(fitted.pipeline, X.iloc[te], n_classes)
            pred = proba.argmax(axis=1)
        else:
            proba, pred = None, np.asarray(fitted.pipeline.predict(X.iloc[te]), dtype=float)
        oof[te] = proba if proba is not None else pred
        if fitted.rounds is not None:
            rounds.append((fitted.best_round if boosting else fitted.rounds - 1) + 1)
        scores.append(oriented(metric, compute_metrics(schema.task, y[te], pred, proba, n_classes).get(metric, np.nan)))
    return {"spec": spec, "score": float(np.nanmean(scores)), "std": float(np.nanstd(scores)), "folds": folds,
            "oof": oof, "rounds": int(np.ceil(np.mean(rounds))) if rounds else None}


def refit_spec(trial: dict[str, Any]) -> ModelSpec:
    """The design of a trial as it is fitted on all train rows: boosting with the rounds CV found, no early stopping."""
    spec, rounds = trial["spec"], trial.get("rounds")
    if not rounds or spec.family == "ensemble":
        return spec
    n = max(10, int(round(rounds * REFIT_ROUNDS_FACTOR)))
    if spec.family == "xgboost":
        return spec.with_params(n_estimators=n, early_stopping_rounds=None)
    if spec.family == "hist_gradient_boosting":
        return spec.with_params(max_iter=n, early_stopping=False)
    return spec


def choose_design(trials: list[dict[str, Any]], schema: Schema, y: np.ndarray, metric: str,
                  current: ModelSpec | None = None) -> dict[str, Any]:
    """Rank the trials (cross-validated on the rows whose encoded target is `y`) and, from the best of them, build an ensemble by selection on their out-of-fold predictions.

    The ensemble is the choice only when its out-of-fold score beats the best single design's; every chosen design
    comes back as it is refitted on all train rows (`refit_spec`).

    Returns:
        `rank_trials`' result plus `ensemble` (the ensemble trial, or None when no library could be built) and
        `single` (the best single trial); `choice["spec"]` is ready to fit.
    """
    from synthloop.ensemble import LIBRARY_SIZE, ensemble_spec, select_ensemble

    out = rank_trials(trials, current=current)
    y_cv = y
    library = [t for t in out["ranked"] if np.isfinite(t["score"]) and t.get("oof") is not None
               and len(t["oof"]) == len(y_cv)][:LIBRARY_SIZE]
    ensemble = None
    if len(library) >= 2:
        n_classes = len(schema.classes) if schema.classes else None
        weights, score = select_ensemble([t["oof"] for t in library], y_cv, task=schema.task, metric=metric,
                                         n_classes=n_classes)
        used = [(refit_spec(t), w) for t, w in zip(library, weights) if w > 0]
        if len(used) >= 2:
            spec = ensemble_spec([s for s, _ in used], [w for _, w in used])
            ensemble = {"spec": spec, "score": score, "std": float("nan"), "folds": library[0]["folds"],
                        "label": trial_label(spec), "seconds": 0.0, "threads": 0, "worker": "in-process",
                        "members": [t["label"] for t, w in zip(library, weights) if w > 0],
                        "weights": [float(w) for w in weights if w > 0]}
    single = out["choice"]
    if not np.isfinite(single["score"]):  # no design could be cross-validated: keep what the loop has
        single = next((t for t in out["ranked"] if t["spec"] == current), single)
    choice = ensemble if ensemble is not None and ensemble["score"] > single["score"] + 1e-9 else single
    runner_up = single if choice is ensemble else out["runner_up"]
    final = {**choice, "spec": refit_spec(choice)}
    return {**out, "choice": final, "chosen_trial": choice, "runner_up": runner_up, "ensemble": ensemble,
            "single": single}


def design_candidates(current: ModelSpec, schema: Schema, y: np.ndarray, *, trials: int = DEFAULT_TRIALS,
                      seed: int = 0) -> list[ModelSpec]:
    """The current design (the reference) and the search's designs (`search_plan`)."""
    return search_plan(schema, y, current=current, trials=trials, seed=seed)


def train_longer(spec: ModelSpec) -> ModelSpec:
    """More rounds (boosting) or trees (forest), or more solver iterations (linear)."""
    p = spec.params
    if spec.family == "xgboost":
        return spec.with_params(n_estimators=p["n_estimators"] * 3)
    if spec.family == "hist_gradient_boosting":
        return spec.with_params(max_iter=p["max_iter"] * 3)
    if spec.family in ("random_forest", "extra_trees"):
        return spec.with_params(n_estimators=p["n_estimators"] * 2)
    if spec.family == "ensemble":
        return spec.with_params(members=tuple(train_longer(m) for m in p["members"]))
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
    if spec.family in ("random_forest", "extra_trees"):
        return spec.with_params(min_samples_leaf=p["min_samples_leaf"] * 3)
    if spec.family == "ensemble":
        return spec.with_params(members=tuple(regularize(m) for m in p["members"]))
    return spec.with_params(C=p.get("C", 1.0) / 4, alpha=p.get("alpha", 1.0) * 4)
