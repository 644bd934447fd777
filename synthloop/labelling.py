"""The annotate stage's bookkeeping: who labels, what every item costs, the votes, and the label audit.

- :func:`annotator_specs` / :func:`item_cost` read the annotation config (several annotators, votes per
  item, re-annotation by more votes or a better annotator);
- :class:`LabelBook` keeps every vote cast on a train row and combines them (majority vote or
  Dawid–Skene). In simulations it also holds the true labels of the real train rows, privately: they
  are used to simulate annotators and to *score* the label audit, and are never handed out, so no
  decision of the loop can depend on them;
- :func:`label_audit` is the validation evidence on label quality (classification: confident learning on
  out-of-fold probabilities of a cheap model; regression: gross out-of-fold residuals of a robust model;
  either way plus a train-against-validation test that tells noisy labels from a weak model or hard rows);
- :func:`spend_curve` plots labels spent against the validation score.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from synthloop.annotation import AnnotatorSpec, SimulatedAnnotator, dawid_skene, majority_vote
from synthloop.config import AnnotationConfig

# A gap between validation agreement and out-of-fold train agreement counts as real only when it is this
# many standard errors wide (small sets and a steep learning curve make smaller gaps happen by chance).
AUDIT_GAP_SE = 3.0
# Fewer real train rows than this and the audit says nothing (its out-of-fold models would be too weak).
AUDIT_MIN_ROWS = 30
# Regression: a residual this many robust standard deviations wide is gross (a wrong label, or a hard row).
GROSS_RESIDUAL = 3.0


def annotator_specs(cfg: AnnotationConfig) -> list[AnnotatorSpec]:
    """The configured annotators; without a list, one annotator from `cost_per_label` and `noise_rate`."""
    if not cfg.annotators:
        return [AnnotatorSpec("annotator", cfg.cost_per_label, cfg.noise_rate)]
    return [AnnotatorSpec(a.name, a.cost_per_label, a.noise_rate, a.confusion) for a in cfg.annotators]


def voters(cfg: AnnotationConfig, relabel: bool = False) -> list[AnnotatorSpec]:
    """Who casts the votes on one item: the first `votes_per_item` annotators in order (cycling); for a
    re-annotation, `reannotate_votes` votes from `reannotate_by`, or from the next annotators in the cycle."""
    specs = annotator_specs(cfg)
    if not relabel:
        return [specs[j % len(specs)] for j in range(cfg.votes_per_item)]
    if cfg.reannotate_by is not None:
        expert = next(s for s in specs if s.name == cfg.reannotate_by)
        return [expert] * cfg.reannotate_votes
    start = cfg.votes_per_item
    return [specs[(start + j) % len(specs)] for j in range(cfg.reannotate_votes)]


def item_cost(cfg: AnnotationConfig, relabel: bool = False) -> float:
    """What labelling (or re-labelling) one item costs: the sum of its voters' prices."""
    if cfg.mode == "human":
        return cfg.cost_per_label
    return math.fsum(s.cost_per_label for s in voters(cfg, relabel))


class LabelBook:
    """Every vote cast on a real train row, and (in simulations only) the rows' true labels.

    The truth is private: :meth:`simulate` lets a simulated annotator see it for the rows it is paid to
    label, and :meth:`scorer` scores audit flags against it. Nothing returns it.

    Args:
        classes: Class labels in the schema's order (codes are positions); None for regression.
        truth: True labels of the rows labelled at the start (index = row id), or None when unknown.
    """

    def __init__(self, classes: Sequence[Any] | None, truth: pd.Series | None = None):
        self.classes = list(classes) if classes is not None else None
        self._code = {c: i for i, c in enumerate(self.classes or [])}
        self.__truth: dict[Any, Any] | None = None if truth is None else dict(truth.items())
        self._votes: dict[Any, list[tuple[str, Any]]] = {}

    @property
    def has_truth(self) -> bool:
        return self.__truth is not None

    def record_truth(self, truth: pd.Series | None) -> None:
        """Keep the hidden labels of rows just taken from the pool (simulation only)."""
        if self.__truth is not None and truth is not None:
            self.__truth.update(truth.items())

    def simulate(self, index: Sequence[Any], annotator: SimulatedAnnotator) -> np.ndarray:
        """The labels a simulated annotator gives rows whose truth is kept here."""
        if self.__truth is None:
            raise ValueError("no true labels are known here; a simulated annotator cannot label these rows")
        return annotator.label(np.asarray([self.__truth[i] for i in index]))

    def add_votes(self, index: Sequence[Any], source: str, labels: Sequence[Any]) -> None:
        for i, label in zip(index, labels):
            self._votes.setdefault(i, []).append((source, label))

    def n_votes(self, i: Any) -> int:
        return len(self._votes.get(i, ()))

    def combine(self, index: Sequence[Any], method: str, *, only: str | None = None, seed: int = 0) -> np.ndarray:
        """One label per row from its votes.

        Args:
            index: Row ids to label.
            method: "majority" or "dawid_skene" (fitted on every voted row, so annotator quality is
                estimated from all of them).
            only: Count only this source's votes (a better annotator's word replaces the others').
            seed: Tie-break seed of the majority vote.
        Returns:
            The labels (class labels; for regression the median of the votes, which a single mix-up among
            three votes does not move).
        """
        index = list(index)
        if self.classes is None:
            return np.asarray([float(np.median([v for s, v in self._votes[i] if only is None or s == only]))
                               for i in index])
        rows = list(self._votes) if method == "dawid_skene" and only is None else index
        votes = self._matrix(rows, only)
        k = len(self.classes)
        if method == "dawid_skene" and only is None and votes.shape[1] > 1:
            codes = dawid_skene(votes, k).labels
        else:
            codes = majority_vote(votes, k, random_state=seed)
        position = {r: n for n, r in enumerate(rows)}
        return np.asarray([self.classes[codes[position[i]]] for i in index], dtype=object)

    def annotator_accuracy(self) -> dict[str, float]:
        """Each annotator's accuracy as Dawid–Skene estimates it from the votes alone (no truth used)."""
        if self.classes is None or not self._votes:
            return {}
        rows = list(self._votes)
        votes, sources = self._matrix(rows, None, with_sources=True)
        if votes.shape[1] < 2:
            return {}
        result = dawid_skene(votes, len(self.classes))
        n = (votes >= 0).sum(axis=0)
        out: dict[str, float] = {}
        for name in dict.fromkeys(sources):
            cols = [j for j, s in enumerate(sources) if s == name]
            weights = n[cols]
            if weights.sum():
                out[name] = float(np.nansum(result.accuracies[cols] * weights) / weights.sum())
        return out

    def _matrix(self, rows: list[Any], only: str | None, with_sources: bool = False):
        """Votes as codes, one column per (source, r-th vote of that source on the item); -1 = no vote."""
        columns: dict[tuple[str, int], int] = {}
        cells: list[tuple[int, int, int]] = []
        for n, i in enumerate(rows):
            seen: dict[str, int] = {}
            for source, label in self._votes.get(i, ()):
                if only is not None and source != only:
                    continue
                r = seen[source] = seen.get(source, -1) + 1
                col = columns.setdefault((source, r), len(columns))
                cells.append((n, col, self._code[label]))
        matrix = np.full((len(rows), max(1, len(columns))), -1, dtype=float)
        for n, col, code in cells:
            matrix[n, col] = code
        if with_sources:
            sources = [s for (s, _), _ in sorted(columns.items(), key=lambda kv: kv[1])]
            return matrix, sources
        return matrix

    def scorer(self, labelled: pd.Series) -> Callable[[np.ndarray], dict[str, float]] | None:
        """A function scoring audit flags on these labelled rows against the truth (None when it is unknown).

        Args:
            labelled: The given labels of the real train rows, in training order (index = row id).
        Returns:
            flags → {"precision", "recall", "true_noise_rate"}; the truth itself stays here.
        """
        if self.__truth is None:
            return None
        truth = self.__truth
        known = np.asarray([i in truth for i in labelled.index])
        if self.classes is None:  # regression: a label is wrong when it is not (numerically) the true value
            wrong = np.asarray([i in truth and not math.isclose(float(truth[i]), float(v), rel_tol=1e-9, abs_tol=1e-9)
                                for i, v in labelled.items()])
        else:
            wrong = np.asarray([i in truth and truth[i] != v for i, v in labelled.items()])

        def score(flags: np.ndarray) -> dict[str, float]:
            from synthloop.annotation import audit_precision_recall

            precision, recall = audit_precision_recall(np.asarray(flags)[known], wrong[known])
            return {"precision": precision, "recall": recall, "true_noise_rate": float(wrong[known].mean())}

        return score


def label_audit(schema, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame, y_val: np.ndarray, *,
                noise_threshold: float, threads: int, seed: int,
                scorer: Callable[[np.ndarray], dict[str, float]] | None = None) -> dict[str, Any]:
    """Validation evidence on the real train labels: are they noisy, and which ones look wrong?

    Confident learning (:func:`synthloop.annotation.find_label_issues`) on 5-fold out-of-fold
    probabilities of a cheap model (a regularized logistic regression) estimates the noise rate and flags
    rows. A weak model inflates that estimate, so the labels are called noisy only when, besides the
    estimate reaching `noise_threshold`, the same cheap model agrees clearly less with the train labels
    (out of fold) than with the validation labels: a weak model disagrees with both, noisy train labels
    only with the former.

    Args:
        schema: Column kinds and classes.
        X, y: Real train rows and their given labels (codes).
        X_val, y_val: Validation rows.
        noise_threshold: Estimated noise rate from which labels can count as noisy.
        threads: Threads the fits may use.
        seed: Fold seed.
        scorer: Scores flags against the truth (simulations only; see :meth:`LabelBook.scorer`).
    Returns:
        {"noise_rate", "n_flagged", "noisy", "flagged" (positions among the real rows), "rows",
         "train_agreement", "val_agreement", "gap", "gap_se", and "precision", "recall",
         "true_noise_rate" when the truth is known}.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    from synthloop.annotation import find_label_issues, out_of_fold_proba
    from synthloop.env import fit_threads
    from synthloop.models import build_preprocessor, lean_imputers

    n = len(y)
    threads = fit_threads(threads, n, X.shape[1])
    if n < AUDIT_MIN_ROWS:
        return {"noisy": False, "noise_rate": float("nan"), "n_flagged": 0, "flagged": [], "rows": n,
                "note": f"too few real train rows ({n} < {AUDIT_MIN_ROWS}) to audit"}
    if schema.task == "regression":
        return _regression_audit(schema, X, y, X_val, y_val, noise_threshold=noise_threshold, threads=threads,
                                 seed=seed, scorer=scorer)
    k = len(schema.classes)

    def cheap():
        pre = lean_imputers(build_preprocessor(schema, "linear"))
        if any(name == "num" for name, _, _ in pre.transformers):
            # the scaler's input is the imputer's fresh output: scaled in place, not copied once more
            pre.set_params(num__standardscaler__copy=False)
        return make_pipeline(pre, LogisticRegression(C=0.1, max_iter=500))

    with threadpool_limits(limits=threads):
        proba = out_of_fold_proba(X, y, cheap, n_splits=5, random_state=seed, n_classes=k)
        found = find_label_issues(y, proba)
        val_pred = cheap().fit(X, y).predict(X_val)
    train_agree = float(np.mean(np.argmax(proba, axis=1) == y))
    val_agree = float(np.mean(val_pred == y_val))
    gap = val_agree - train_agree
    se = math.sqrt(train_agree * (1 - train_agree) / n + val_agree * (1 - val_agree) / max(1, len(y_val)))
    se = max(se, 1.0 / n)
    noisy = bool(found.noise_rate >= noise_threshold and gap >= noise_threshold / 2 and gap >= AUDIT_GAP_SE * se)
    out: dict[str, Any] = {"noise_rate": float(found.noise_rate), "n_flagged": found.n_flagged, "noisy": noisy,
                           "rows": n, "train_agreement": train_agree, "val_agreement": val_agree, "gap": gap,
                           "gap_se": se, "flagged": [int(i) for i in np.flatnonzero(found.flags)]}
    if scorer is not None:
        out.update({key: float(v) for key, v in scorer(found.flags).items()})
    return out


def _regression_audit(schema, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame, y_val: np.ndarray, *,
                      noise_threshold: float, threads: int, seed: int,
                      scorer: Callable[[np.ndarray], dict[str, float]] | None) -> dict[str, Any]:
    """The label audit for regression: gross out-of-fold residuals, more common on train than on validation?

    A wrong regression label is a value that belongs to another row (a mix-up, a typo, a unit slip). Two
    robust models (gradient boosting with absolute loss, and a Huber linear model: wrong labels barely pull
    either) predict every train row out of fold; the one with the smaller robust spread of residuals
    (1.4826 × MAD) is used, and a residual counts as gross beyond `GROSS_RESIDUAL` times that spread. The same model fitted on all train rows scores validation on the same scale. Rows of
    a hard region have large residuals on both sets; wrong labels only on train. So the labels are called
    noisy only when the train share of gross residuals exceeds the validation share by `noise_threshold`
    and by `AUDIT_GAP_SE` standard errors. That excess is the estimated share of wrong labels *that matter*:
    a mix-up with a close value stays inside the residual band, is not counted and barely hurts. The
    flagged rows are the train rows with gross residuals.

    Returns:
        As :func:`label_audit`; "train_agreement" / "val_agreement" are the shares of rows *without* a gross
        residual, and "residual_scale" the robust standard deviation used.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import HuberRegressor
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    from synthloop.models import build_preprocessor

    def trees():
        return make_pipeline(build_preprocessor(schema, "hist_gradient_boosting"),
                             HistGradientBoostingRegressor(loss="absolute_error", max_iter=150, learning_rate=0.1,
                                                           min_samples_leaf=5, early_stopping=False,
                                                           random_state=seed))

    def linear():
        return make_pipeline(build_preprocessor(schema, "linear"), HuberRegressor(max_iter=500))

    n = len(y)
    y = np.asarray(y, dtype=float)
    folds = list(KFold(n_splits=5, shuffle=True, random_state=seed).split(np.zeros(n)))
    best: tuple[float, Any, np.ndarray] | None = None
    with threadpool_limits(limits=threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Huber's solver may stop at max_iter on awkward scales: still robust
        for factory in (trees, linear):  # the robust model that fits these rows best sets the residual scale
            oof = np.zeros(n)
            for fit_idx, held in folds:
                oof[held] = factory().fit(X.iloc[fit_idx], y[fit_idx]).predict(X.iloc[held])
            r = y - oof
            scale = 1.4826 * float(np.median(np.abs(r - np.median(r))))
            if best is None or scale < best[0]:
                best = (scale, factory, r)
        scale, factory, residual = best
        val_pred = factory().fit(X, y).predict(X_val)
    if not scale > 0:
        scale = float(np.std(residual)) or 1e-12
    gross = np.abs(residual) > GROSS_RESIDUAL * scale
    val_gross = np.abs(np.asarray(y_val, dtype=float) - val_pred) > GROSS_RESIDUAL * scale
    p_train, p_val = float(gross.mean()), float(val_gross.mean())
    gap = p_train - p_val
    se = math.sqrt(p_train * (1 - p_train) / n + p_val * (1 - p_val) / max(1, len(y_val)))
    se = max(se, 1.0 / n)
    noise_rate = max(0.0, gap)
    noisy = bool(noise_rate >= noise_threshold and gap >= noise_threshold / 2 and gap >= AUDIT_GAP_SE * se)
    out: dict[str, Any] = {"noise_rate": noise_rate, "n_flagged": int(gross.sum()), "noisy": noisy, "rows": n,
                           "train_agreement": 1 - p_train, "val_agreement": 1 - p_val, "gap": gap, "gap_se": se,
                           "residual_scale": scale, "flagged": [int(i) for i in np.flatnonzero(gross)]}
    if scorer is not None:
        out.update({key: float(v) for key, v in scorer(gross).items()})
    return out


def spend_curve(iterations: Sequence[dict[str, Any]], metric: str):
    """Validation score against labels spent (cumulative cost), one point per iteration."""
    from synthloop.plots import _figure

    fig, ax = _figure(7.0, 4.2)
    xs = [it.get("label_cost", 0.0) for it in iterations]
    ys = [it["val_metrics"].get(metric, np.nan) for it in iterations]
    ax.plot(xs, ys, marker="o", color="tab:purple")
    for x, y, it in zip(xs, ys, iterations):
        ax.annotate(f"it{it['iteration']}: {it.get('labels_bought', 0)} labels\n({it['action_in']})", (x, y),
                    textcoords="offset points", xytext=(0, 8), ha="center", fontsize=7)
    ax.set_xlabel("labels spent (cumulative cost)")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title("Labels spent against validation score")
    fig.tight_layout()
    return fig
