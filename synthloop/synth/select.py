"""Choosing a generator by its utility measured on the real train rows alone (cross-validation, never validation)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, StratifiedKFold

from synthloop.synth._codec import TaskName, _check_task
from synthloop.synth.factory import GENERATORS, make_generator
from synthloop.synth.report import _model_matrix

# Augmented scores closer than this count as a tie, which the train-on-synthetic score breaks.
_TIE = 0.002


def _score(task: str, y_true: np.ndarray, pred: np.ndarray, proba: np.ndarray | None = None,
           metric: str | None = None, classes: list[str] | None = None) -> float:
    """The held-out fold's score, higher is better: accuracy (or the goal's classification metric; log loss
    negated), R^2 for regression."""
    if task != "classification":
        return float(r2_score(y_true, pred))
    if metric in (None, "accuracy") or proba is None or classes is None:
        return float(np.mean(np.asarray(y_true, dtype=object) == np.asarray(pred, dtype=object)))
    from sklearn import metrics as M

    truth, said = np.asarray(y_true).astype(str), np.asarray(pred).astype(str)
    try:
        if metric == "balanced_accuracy":
            return float(M.balanced_accuracy_score(truth, said))
        if metric == "f1_macro":
            return float(M.f1_score(truth, said, average="macro", labels=classes, zero_division=0))
        p = np.clip(proba, 1e-15, 1.0)
        p = p / p.sum(axis=1, keepdims=True)
        if metric == "log_loss":
            return -float(M.log_loss(truth, p, labels=classes))
        if metric == "roc_auc":
            if len(classes) == 2:
                return float(M.roc_auc_score(truth == classes[1], p[:, 1]))
            return float(M.roc_auc_score(truth, p, multi_class="ovr", labels=classes))
    except ValueError:  # a fold without every class: the plain share of right answers
        pass
    return float(np.mean(truth == said))


def _default_factory(task: str, random_state: int) -> Callable[[], Any]:
    """xgboost, the loop's first model, small: 100 rounds of depth 6 at learning rate 0.1, one thread."""
    from xgboost import XGBClassifier, XGBRegressor

    cls = XGBClassifier if task == "classification" else XGBRegressor
    return lambda: cls(n_estimators=100, learning_rate=0.1, max_depth=6, n_jobs=1, tree_method="hist",
                       random_state=random_state)


_CV_WORK: dict[str, Any] | None = None  # the rows and settings of the running choice; forks inherit them


def _cv_job(job: tuple[int, str | None]) -> dict[str, float]:
    """One fold's score of real rows alone (`name` None), or of one generator's rows alone and beside the real
    ones, with the generator's fit + sample seconds. Reads `_CV_WORK`, in a fork or in this process."""
    from synthloop.parallel import limit_threads

    fold, name = job
    w = _CV_WORK
    fit_rows, eval_rows = w["splits"][fold]
    X, y, kinds, task = w["X"], w["y"], w["kinds"], w["task"]
    X_fit, y_fit = X.iloc[fit_rows].reset_index(drop=True), y.iloc[fit_rows].reset_index(drop=True)
    X_eval, y_eval = X.iloc[eval_rows], w["labels"][eval_rows]
    score, fit_predict = w["score"], w["fit_predict"]
    with limit_threads(1):
        if name is None:
            M_fit, M_eval = _model_matrix([X_fit, X_eval], kinds)
            return {"real": score(y_eval, fit_predict(M_fit, y_fit.to_numpy(), M_eval))}
        started = time.perf_counter()
        gen = make_generator(name, kinds, random_state=w["random_state"] + fold)
        gen.fit(X_fit, y_fit, task=task)
        X_syn, y_syn = gen.sample(max(1, int(round(w["ratio"] * len(X_fit)))))
        seconds = time.perf_counter() - started
        M_real, M_syn, M_ev = _model_matrix([X_fit, X_syn, X_eval], kinds)
        y_syn = np.asarray(y_syn)
        synthetic = fit_predict(M_syn, y_syn, M_ev)
        both = fit_predict(np.vstack([M_real, M_syn]), np.concatenate([y_fit.to_numpy(), y_syn]), M_ev)
        return {"synthetic": score(y_eval, synthetic), "augmented": score(y_eval, both), "seconds": seconds}


def _cv_job_in_fork(job: tuple[int, str | None]) -> dict[str, float]:
    """What a fork runs: `_cv_job` as the module holds it when the fork was made (by name, so nothing is pickled
    but the job)."""
    return _cv_job(job)


def _run_cv_jobs(jobs: list[tuple[int, str | None]], slots: int) -> list[dict[str, float]]:
    """The jobs' results in order: `slots` at a time in forks, or here. A fork that dies leaves the jobs not yet
    done to this process."""
    from concurrent.futures.process import BrokenProcessPool

    from synthloop.parallel import can_fork, forked_pool

    results: list[dict[str, float] | None] = [None] * len(jobs)
    if slots > 1 and len(jobs) > 1 and can_fork():
        try:
            with forked_pool(min(slots, len(jobs))) as pool:
                futures = [pool.submit(_cv_job_in_fork, job) for job in jobs]
                for i, future in enumerate(futures):
                    try:
                        results[i] = future.result()
                    except BrokenProcessPool:
                        break
        except BrokenProcessPool:
            pass
    return [r if r is not None else _cv_job(job) for r, job in zip(results, jobs)]


def _fit_predict(factory, X: np.ndarray, y: np.ndarray, X_eval: np.ndarray, task: str,
                 classes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions for `X_eval`, and for classification the probabilities in the order of `classes` (the labels as
    text; a class the fit did not see gets 0)."""
    if task != "classification":
        return factory().fit(X, y.astype(np.float64)).predict(X_eval), None
    labels, codes = np.unique(np.asarray(y, dtype=object).astype(str), return_inverse=True)
    originals = pd.Series(np.asarray(y, dtype=object)).groupby(codes).first().to_numpy()
    if labels.size < 2:
        p = np.ones((len(X_eval), 1))
    else:
        p = factory().fit(X, codes).predict_proba(X_eval)
    pred = originals[p.argmax(axis=1)]
    if classes is None:
        return pred, None
    proba = np.zeros((len(X_eval), len(classes)))
    for j, label in enumerate(labels):
        proba[:, classes.index(label)] = p[:, j]
    return pred, proba


def select_generator(
    X: pd.DataFrame,
    y: pd.Series,
    kinds: Mapping[Any, str],
    task: TaskName,
    *,
    candidates: Sequence[str] = GENERATORS,
    ratio: float = 1.0,
    folds: int = 3,
    max_rows: int = 2000,
    model_factory: Callable[[], Any] | None = None,
    random_state: int = 0,
    metric: str | None = None,
    slots: int = 1,
) -> tuple[str, dict[str, float]]:
    """Pick the generator whose rows help a model most, by K-fold cross-validation on the real train rows.

    In each fold every candidate is fitted to the other folds' real rows and samples ``ratio`` synthetic rows
    per real row; a model (a small xgboost, the loop's first model family) is trained on the real rows alone,
    on the synthetic rows alone and on both, and scored on the held-out fold (accuracy or the goal's `metric`, R^2
    for regression). The choice is the best mean score of real + synthetic (what the loop would train on); scores
    within 0.002 of the best are tied and the best train-on-synthetic score among them wins. Validation and
    test rows are never touched: the loop still keeps the chosen rows only if validation improves.

    Args:
        X: Real train features.
        y: Their target.
        kinds: Feature column name -> kind.
        task: "classification" or "regression".
        candidates: Generator names to compare.
        ratio: Synthetic rows per real row, as the loop will add them.
        folds: Cross-validation folds.
        max_rows: Train rows used at most (a random subset beyond), to keep the choice cheap.
        model_factory: Zero-argument callable returning an unfitted estimator (fitted on class codes for
            classification); default xgboost with 100 rounds, one thread.
        random_state: Seed of the folds, the generators and the model.
        metric: For classification, the goal metric the scores use (accuracy when None or not a classification
            metric; log loss negated, so higher is better throughout). Regression scores are R^2.

    Returns:
        The chosen name and its evidence: ``cv_real`` (model on real rows only), per candidate
        ``cv_<name>_augmented``, ``cv_<name>_synthetic`` and ``cv_<name>_seconds`` (fit + sample, all folds),
        and ``cv_folds`` / ``cv_rows``.
    """
    _check_task(task)
    if not candidates:
        raise ValueError("candidates names no generator.")
    unknown = [c for c in candidates if c not in GENERATORS]
    if unknown:
        raise ValueError(f"Unknown generators {unknown}; known generators are {', '.join(GENERATORS)}.")
    X = X[list(kinds)].reset_index(drop=True)
    y = pd.Series(np.asarray(y), name=getattr(y, "name", None))
    rng = np.random.default_rng(random_state)
    if len(X) > max_rows:
        keep = np.sort(rng.choice(len(X), size=max_rows, replace=False))
        X, y = X.iloc[keep].reset_index(drop=True), y.iloc[keep].reset_index(drop=True)
    folds = int(max(2, min(folds, len(X) // 4)))
    if len(candidates) == 1 or len(X) < 8:
        return candidates[0], {"cv_folds": 0.0, "cv_rows": float(len(X))}
    factory = model_factory or _default_factory(task, random_state)
    labels = y.to_numpy()
    classes = sorted(set(np.asarray(labels, dtype=object).astype(str))) if task == "classification" else None
    metric = metric if task == "classification" else None

    def score(y_eval, predicted) -> float:
        return _score(task, y_eval, predicted[0], predicted[1], metric, classes)

    def fit_predict(M, target, M_eval):
        return _fit_predict(factory, M, target, M_eval, task, classes)
    if task == "classification" and y.value_counts().min() >= folds:
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=random_state).split(X, labels))
    else:
        splits = list(KFold(folds, shuffle=True, random_state=random_state).split(X))
    global _CV_WORK
    _CV_WORK = {"X": X, "y": y, "labels": labels, "splits": splits, "kinds": kinds, "task": task, "ratio": ratio,
                "random_state": random_state, "score": score, "fit_predict": fit_predict}
    jobs = [(fold, name) for fold in range(len(splits)) for name in (None, *candidates)]
    try:
        results = _run_cv_jobs(jobs, slots)
    finally:
        _CV_WORK = None
    scores: dict[str, list[float]] = {"real": []}
    seconds = {name: 0.0 for name in candidates}
    for (fold, name), result in zip(jobs, results):  # fold by fold, as one loop would have filled them
        if name is None:
            scores["real"].append(result["real"])
            continue
        seconds[name] += result["seconds"]
        scores.setdefault(f"{name}_synthetic", []).append(result["synthetic"])
        scores.setdefault(f"{name}_augmented", []).append(result["augmented"])
    evidence = {f"cv_{key}": float(np.mean(v)) for key, v in scores.items()}
    evidence.update({f"cv_{name}_seconds": round(s, 3) for name, s in seconds.items()})
    evidence.update({"cv_folds": float(folds), "cv_rows": float(len(X))})
    best = max(evidence[f"cv_{name}_augmented"] for name in candidates)
    tied = [name for name in candidates if evidence[f"cv_{name}_augmented"] >= best - _TIE]
    chosen = max(tied, key=lambda name: evidence[f"cv_{name}_synthetic"])
    return chosen, evidence
