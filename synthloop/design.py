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


def cross_validate_spec(spec: ModelSpec, schema: Schema, X: pd.DataFrame, y: np.ndarray, *, metric: str,
                        threads: int, seed: int, folds: int = 3) -> dict[str, Any]:
    """Mean and spread of a design's score over K folds of the training rows (oriented: higher is better)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if len(y) > MAX_CV_ROWS:
        keep = np.random.default_rng(seed).choice(len(y), MAX_CV_ROWS, replace=False)
        X, y = X.iloc[keep], y[keep]
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
                      max_depth: int) -> list[ModelSpec]:
    """Designs of families not tried yet (the current one included as the reference)."""
    out = [current]
    for family in FAMILIES:
        if family not in tried and family != current.family:
            out.append(default_spec(family, n_estimators=n_estimators, learning_rate=learning_rate,
                                    max_depth=max_depth))
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
