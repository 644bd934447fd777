"""Validate: metrics on validation against the goal and the baseline, and the diagnosis."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from synthloop.config import AnnotationConfig, GoalConfig
from synthloop.faults import inject
from synthloop.types import Schema, Trained, TrainingSet, ValidationReport


# Not cached (its inputs are re-hashed for nothing otherwise): it is cheap next to training.
@task(name="validate", task_run_name="validate-it{iteration}", cache_policy=NO_CACHE)
def validate_model(trained: Trained, data: TrainingSet, schema: Schema, X_val, y_val: np.ndarray, goal: GoalConfig,
                   iteration: int, threads: int, seed: int, audit: AnnotationConfig | None = None,
                   scorer=None, previous_audit: dict | None = None, last: bool = False) -> ValidationReport:
    """Score the model on validation, check the goal, and diagnose what limits it.

    Args:
        trained: The fitted model.
        data: Its training rows (real rows give the train score; all rows the learning curve).
        schema: Column kinds, task and classes.
        X_val, y_val: Validation rows (real only).
        goal: The goal metric and threshold.
        iteration: Loop iteration.
        threads: Threads a diagnostic fit may use.
        seed: Random seed.
        audit: The annotation config; when its `audit` is on, the real train labels are audited (see
            `synthloop.labelling.label_audit`) and the result goes to `diagnosis["label_audit"]`.
        scorer: Scores the audit's flags against the truth (simulations only); never read by a decision.
        previous_audit: The last audit's result when the real train rows and their labels have not changed since:
            the audit fits its own models on those rows only, so it would find the same again.
        last: No iteration can follow (loop.max_iterations): the diagnosis leaves out the learning curve's fit,
            whose finding only a next iteration could act on.
    Returns:
        The validation report; its diagnosis is empty when a goal threshold is met (there is nothing to go back
        for).
    """
    from synthloop.judge import check_goal, diagnose, goal_metric, make_report, row_losses
    from synthloop.models import baseline_metrics, compute_metrics, predict

    inject("validate")
    n_classes = len(schema.classes) if schema.classes else None
    val_pred, val_proba = predict(trained.pipeline, X_val, schema.task)
    metrics = compute_metrics(schema.task, y_val, val_pred, val_proba, n_classes)
    real = np.char.startswith(data.origin.astype(str), "real")
    X_real = data.X if real.all() else data.X[real]  # no copy of the training rows when all are real
    scored = _train_sample(len(X_real), seed)
    X_scored = X_real if scored is None else X_real.iloc[scored]
    y_scored = data.y[real] if scored is None else data.y[real][scored]
    tr_pred, tr_proba = predict(trained.pipeline, X_scored, schema.task)
    train_metrics = compute_metrics(schema.task, y_scored, tr_pred, tr_proba, n_classes)
    baseline = baseline_metrics(schema.task, data.y[real], y_val, n_classes)
    metric = goal_metric(goal, schema.task)
    losses = row_losses(metric, y_val, val_pred, val_proba)
    if goal.threshold is not None and check_goal(goal, schema.task, metrics, baseline, len(y_val))[0]:
        # The goal is met: nothing will be sent back, so the diagnostic fits (learning curve, audit) would be waste.
        # (Without a threshold the loop goes on while its moves pay, and the diagnosis says which could.)
        return replace(make_report(goal, schema.task, metrics, train_metrics, baseline, {}, len(y_val), losses),
                       val_pred=val_pred)
    diagnosis = diagnose(trained.spec, schema, data.X, data.y, real, X_val, y_val, metric=metric,
                         val_metrics=metrics, train_metrics=train_metrics, curves=trained.curves,
                         rounds=trained.rounds, best_round=trained.best_round,
                         n_estimators=trained.spec.params.get("n_estimators") or trained.spec.params.get("max_iter"),
                         val_pred=val_pred, threads=threads, seed=seed, threshold=goal.threshold,
                         learning_curve=not last)
    if last:
        diagnosis["not_run"] = "learning curve: no iteration follows (loop.max_iterations)"
    if audit is not None and audit.audit and previous_audit is not None:
        diagnosis["label_audit"] = previous_audit
    elif audit is not None and audit.audit:
        from synthloop.labelling import label_audit
        from synthloop.memory import release_freed_memory

        release_freed_memory()  # the learning curve's fit, before the audit's folds
        diagnosis["label_audit"] = label_audit(schema, X_real, data.y[real], X_val, y_val,
                                               noise_threshold=audit.audit_noise_threshold, threads=threads,
                                               seed=seed, scorer=scorer)
    return replace(make_report(goal, schema.task, metrics, train_metrics, baseline, diagnosis, len(y_val), losses),
                   val_pred=val_pred)


#: The train score (for the gap to validation) is read on at most this many real train rows.
TRAIN_SCORE_ROWS = 100_000


def _train_sample(n: int, seed: int) -> np.ndarray | None:
    """Positions of a seeded sample of the real train rows for the train score; None: all of them."""
    if n <= TRAIN_SCORE_ROWS:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=TRAIN_SCORE_ROWS, replace=False))
