"""Judging a model on validation: the goal check against the baseline, and the diagnosis.

Everything here reads validation and train rows only. The diagnosis names what is wrong:
too little data (learning curve still rising), overfitting (train far above validation),
underfitting (train low too), too little training (validation loss still falling at the last
round), imbalance (a class with low recall) — each with the numbers behind it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthloop.config import HIGHER_IS_BETTER, GoalConfig
from synthloop.models import ModelSpec, compute_metrics, fit_model, per_class_recall, predict
from synthloop.types import Schema, ValidationReport

# How much a half-data model must trail the full one for the curve to count as still rising.
LEARNING_CURVE_RISING = 0.01
OVERFIT_GAP = 0.08
# Validation loss must still fall by this share over the last tenth of the rounds to call a model undertrained.
UNDERTRAINED_DROP = 0.01
LOW_CLASS_RECALL = 0.5
# Oriented validation scores this close are a tie, and a tie keeps the earlier iteration as the best.
SCORE_TIE = 1e-12


def goal_metric(goal: GoalConfig, task: str) -> str:
    return goal.metric or ("accuracy" if task == "classification" else "r2")


def oriented(metric: str, value: float) -> float:
    """A value where higher is always better."""
    return value if HIGHER_IS_BETTER[metric] else -value


# Share metrics: their sampling error on n validation rows is about sqrt(p (1 - p) / n).
SHARE_METRICS = {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc"}


def check_goal(goal: GoalConfig, task: str, metrics: dict[str, float], baseline: dict[str, float],
               n_val: int | None = None) -> tuple[bool, str]:
    """Met when the threshold (if any) is reached and the model is clearly better than the baseline.

    "Clearly" is `goal.min_gain_over_baseline`, and for share metrics (accuracy ...) on `n_val` validation rows
    also at least two standard errors: on a handful of rows a chance gain must not pass for a real one.
    """
    metric = goal_metric(goal, task)
    if metric not in metrics:
        return False, f"{metric} could not be computed on validation"
    score, base = metrics[metric], baseline.get(metric, float("nan"))
    reasons = []
    if goal.threshold is not None and oriented(metric, score) < oriented(metric, goal.threshold):
        op = ">=" if HIGHER_IS_BETTER[metric] else "<="
        reasons.append(f"{metric} {score:.4f} misses the goal {op} {goal.threshold:g}")
    if np.isfinite(base):
        gain = oriented(metric, score) - oriented(metric, base)
        needed = goal.min_gain_over_baseline * (abs(base) if not HIGHER_IS_BETTER[metric] else 1.0)
        noise = ""
        if metric in SHARE_METRICS and n_val:
            spread = max(score * (1 - score), base * (1 - base))
            two_se = 2.0 * float(np.sqrt(max(spread, 0.0) / n_val))
            if two_se > needed:
                needed, noise = two_se, f" (needs +{two_se:.3f} on {n_val} validation rows)"
        if gain < needed:
            reasons.append(f"{metric} {score:.4f} is not clearly better than the trivial baseline {base:.4f}{noise}")
    return not reasons, "; ".join(reasons)


def diagnose(spec: ModelSpec, schema: Schema, X: pd.DataFrame, y: np.ndarray, real_mask: np.ndarray,
             X_val: pd.DataFrame, y_val: np.ndarray, *, metric: str, val_metrics: dict[str, float],
             train_metrics: dict[str, float], curves: dict[str, list[float]], rounds: int | None,
             best_round: int | None, n_estimators: int | None, val_pred: np.ndarray, threads: int,
             seed: int, threshold: float | None = None, learning_curve: bool = True) -> dict[str, Any]:
    """Findings from validation evidence, each with its numbers.

    The learning curve refits the same design on half of the real train rows (plus the same share of
    synthetic rows) and compares validation scores: a large gain from half to all means more data helps.
    `learning_curve=False` leaves that fit out (no iteration follows that could act on it).
    """
    findings: dict[str, Any] = {}
    score = oriented(metric, val_metrics[metric])
    train_score = oriented(metric, train_metrics.get(metric, np.nan))
    rng = np.random.default_rng(seed)
    half = rng.random(len(y)) < 0.5
    if schema.task == "classification":  # keep every class in the half
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            half[idx[: max(1, len(idx) // 2)]] = True
    n_real = int(real_mask.sum())
    if n_real >= 20 and learning_curve:
        fitted = fit_model(spec, schema, X[half], y[half], X_val=X_val, y_val=y_val, threads=threads, seed=seed,
                           holdout_stopping=True)
        pred, proba = predict(fitted.pipeline, X_val, schema.task)
        n_classes = len(schema.classes) if schema.classes else None
        half_score = oriented(metric, compute_metrics(schema.task, y_val, pred, proba, n_classes).get(metric, np.nan))
        gain = score - half_score
        findings["learning_curve"] = {"rows": [int(half.sum()), len(y)], "scores": [half_score, score],
                                      "gain": gain, "rising": bool(gain > LEARNING_CURVE_RISING)}
    gap = train_score - score
    findings["gap"] = {"train": train_score, "val": score, "gap": gap,
                       "overfit": bool(gap > OVERFIT_GAP),
                       # underfitting: even the train rows miss the goal, so the design cannot express it
                       "underfit": bool(gap < OVERFIT_GAP / 2 and threshold is not None
                                        and train_score < oriented(metric, threshold))}
    if rounds and n_estimators and curves.get("val_loss"):
        vl = curves["val_loss"]
        tail = max(1, len(vl) // 10)
        recent_drop = (vl[-tail - 1] - vl[-1]) / max(abs(vl[-tail - 1]), 1e-12) if len(vl) > tail else 0.0
        still_falling = (best_round is not None and best_round >= rounds - 2 and rounds >= n_estimators
                         and recent_drop > UNDERTRAINED_DROP)
        findings["training"] = {"rounds": rounds, "best_round": best_round, "max_rounds": n_estimators,
                                "recent_val_loss_drop": float(recent_drop), "undertrained": bool(still_falling)}
    if schema.task == "classification" and schema.classes:
        recall = per_class_recall(y_val, val_pred, len(schema.classes))
        worst = int(np.argmin(recall))
        findings["classes"] = {"worst_class": str(schema.classes[worst]), "worst_recall": float(recall[worst]),
                               "imbalanced": bool(recall[worst] < LOW_CLASS_RECALL)}
    return findings


def make_report(goal: GoalConfig, task: str, metrics: dict[str, float], train_metrics: dict[str, float],
                baseline: dict[str, float], diagnosis: dict[str, Any], n_val: int | None = None,
                row_losses: np.ndarray | None = None) -> ValidationReport:
    metric = goal_metric(goal, task)
    passed, shortfall = check_goal(goal, task, metrics, baseline, n_val)
    return ValidationReport(metrics=metrics, train_metrics=train_metrics, baseline=baseline,
                            score=float(metrics.get(metric, np.nan)), passed=passed, shortfall=shortfall,
                            diagnosis=diagnosis, row_losses=row_losses)


def row_losses(metric: str, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> np.ndarray:
    """Per row, the loss whose mean the goal metric is (or, for metrics that are not a mean over rows —
    balanced accuracy, macro-F1, ROC AUC —, the closest such loss: the error rate)."""
    y = np.asarray(y)
    if metric == "log_loss" and proba is not None:
        p = np.clip(proba[np.arange(len(y)), y.astype(int)], 1e-15, 1.0)
        return -np.log(p)
    if metric in ("rmse", "r2"):
        return (np.asarray(pred, dtype=float) - y.astype(float)) ** 2
    if metric == "mae":
        return np.abs(np.asarray(pred, dtype=float) - y.astype(float))
    return (np.asarray(pred) != y).astype(float)


def gain_noise(metric: str, losses: np.ndarray, reference: np.ndarray, reference_score: float,
               y: np.ndarray | None = None) -> float:
    """One standard error of the gain of a model over a reference on the same validation rows, in the metric's
    units (paired: what matters is how the two models differ row by row, not how hard the rows are)."""
    if losses is None or reference is None or len(losses) != len(reference) or len(losses) < 2:
        return 0.0
    diff = np.asarray(losses, dtype=float) - np.asarray(reference, dtype=float)
    se = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
    if metric == "rmse":  # d rmse = d mse / (2 rmse)
        return se / max(2.0 * abs(reference_score), 1e-12)
    if metric == "r2" and y is not None:  # r2 = 1 - mse / var(y)
        return se / max(float(np.var(np.asarray(y, dtype=float))), 1e-12)
    return se


def needed_gain(metric: str, min_improvement: float, best_score: float) -> float:
    """The loop's minimum improvement in the metric's units: absolute for shares and r2, relative to the best
    score for errors (rmse, mae, log loss), whose scale is the target's."""
    return min_improvement * (abs(best_score) if not HIGHER_IS_BETTER[metric] else 1.0)
