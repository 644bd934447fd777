"""Ensembles of designs: greedy ensemble selection on out-of-fold predictions, and the fitted ensemble.

Ensemble selection (Caruana, Niculescu-Mizil, Crew & Ksikes, "Ensemble selection from libraries of models",
ICML 2004), as AutoGluon and auto-sklearn use it: start from the best single design, then repeatedly add
(with replacement) the design whose out-of-fold predictions most improve the ensemble's out-of-fold score;
the weights are how often each design was picked. It looks only at out-of-fold predictions on train, never
at validation. The search keeps the ensemble only when its out-of-fold score beats the best single design's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthloop.judge import oriented
from synthloop.models import Fitted, ModelSpec, compute_metrics, fit_model
from synthloop.types import Schema

SELECTION_ROUNDS = 25
LIBRARY_SIZE = 12


class Ensemble:
    """A weighted average of fitted pipelines: class probabilities (classification) or predictions (regression).

    `predict` gives encoded class indices (the argmax of `predict_proba`) or values, like a fitted Pipeline.
    """

    def __init__(self, members: list[Any], weights: list[float], task: str, n_classes: int | None = None):
        self.members = list(members)
        self.weights = np.asarray(weights, dtype=float) / float(np.sum(weights))
        self.task = task
        self.n_classes = n_classes

    def predict_proba(self, X) -> np.ndarray:
        return sum(w * member_proba(m, X, self.n_classes) for w, m in zip(self.weights, self.members))

    def predict(self, X) -> np.ndarray:
        if self.task == "classification":
            return self.predict_proba(X).argmax(axis=1)
        return sum(w * np.asarray(m.predict(X), dtype=float) for w, m in zip(self.weights, self.members))


def member_proba(pipeline: Any, X, n_classes: int | None) -> np.ndarray:
    """Class probabilities with one column per encoded class, also when a model never saw some class."""
    proba = np.asarray(pipeline.predict_proba(X), dtype=float)
    classes = getattr(pipeline, "classes_", None)
    if n_classes is None or proba.shape[1] == n_classes or classes is None:
        return proba
    full = np.zeros((proba.shape[0], n_classes))
    full[:, np.asarray(classes, dtype=int)] = proba
    return full


def describe_members(spec: ModelSpec) -> str:
    from synthloop.design import trial_label

    return ", ".join(f"{w:.2f}×{trial_label(m)}" for m, w in zip(spec.params["members"], spec.params["weights"]))


def ensemble_spec(members: list[ModelSpec], weights: list[float]) -> ModelSpec:
    return ModelSpec("ensemble", {"members": tuple(members), "weights": tuple(round(float(w), 4) for w in weights)})


def fit_ensemble(spec: ModelSpec, schema: Schema, X, y, *, X_val=None, y_val=None, threads: int = 1,
                 seed: int = 0, holdout_stopping: bool = False) -> Fitted:
    """Fit every member on the same rows; the curves shown are those of the heaviest member."""
    import time

    start = time.perf_counter()
    n_classes = len(schema.classes) if schema.classes is not None else None
    fits = [fit_model(m, schema, X, y, X_val=X_val, y_val=y_val, threads=threads, seed=seed,
                      holdout_stopping=holdout_stopping) for m in spec.params["members"]]
    weights = list(spec.params["weights"])
    heaviest = fits[int(np.argmax(weights))]
    return Fitted(Ensemble([f.pipeline for f in fits], weights, schema.task, n_classes), heaviest.curves,
                  heaviest.rounds, heaviest.best_round, time.perf_counter() - start)


def _score(task: str, metric: str, y: np.ndarray, pred: np.ndarray, n_classes: int | None) -> tuple[float, float]:
    """(goal metric, smooth tie-breaker), both oriented so higher is better."""
    if task == "classification":
        m = compute_metrics(task, y, pred.argmax(axis=1), pred, n_classes)
        return oriented(metric, m.get(metric, np.nan)), -m["log_loss"]
    m = compute_metrics(task, y, pred)
    return oriented(metric, m[metric]), -m["rmse"]


def select_ensemble(oofs: list[np.ndarray], y: np.ndarray, *, task: str, metric: str, n_classes: int | None,
                    rounds: int = SELECTION_ROUNDS) -> tuple[np.ndarray, float]:
    """Greedy ensemble selection with replacement over out-of-fold predictions.

    The selection follows a smooth loss (log loss for classification, RMSE for regression, as the goal metric
    may be a step function like accuracy) and the result is the round with the best goal metric, ties broken
    by that loss.

    Args:
        oofs: One out-of-fold prediction per design (probabilities n × K, or values n), aligned with `y`.
        y: Encoded target of the rows.
        task, metric, n_classes: As everywhere.
        rounds: Selection rounds (picks).
    Returns:
        Weights per design (summing to 1) and the ensemble's out-of-fold goal metric (oriented).
    """
    counts = np.zeros(len(oofs))
    total = np.zeros_like(oofs[0], dtype=float)
    best_weights, best_key = None, (-np.inf, -np.inf)
    for r in range(1, rounds + 1):
        keys = []
        for i, oof in enumerate(oofs):
            pred = (total + oof) / r
            smooth = _score(task, metric, y, pred, n_classes)[1]
            keys.append(smooth)
        i = int(np.nanargmax(keys))
        counts[i] += 1
        total = total + oofs[i]
        key = _score(task, metric, y, total / r, n_classes)
        if key > best_key:
            best_key, best_weights = key, counts / counts.sum()
    return best_weights, float(best_key[0])
