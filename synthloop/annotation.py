"""Buying, combining and auditing labels.

Labels cost money and carry errors. This module holds the domain logic of the annotate stage,
free of any orchestration or tracking code:

- :class:`AnnotatorSpec` and :class:`SimulatedAnnotator` describe and simulate paid annotators;
- :class:`Ledger` books every label's cost against an optional budget;
- :func:`majority_vote` and :func:`dawid_skene` turn several annotators' votes into one label;
- :func:`out_of_fold_proba` and :func:`find_label_issues` audit labels with confident learning;
- :func:`select_rows` picks which unlabelled rows to buy next;
- :func:`audit_precision_recall` scores an audit when the truth is known (simulations only).

Class labels inside the aggregation and audit functions are integer codes ``0 .. K-1``.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import entr, logsumexp
from sklearn.model_selection import StratifiedKFold

from synthloop.errors import BudgetError, ConfigError, DataError

__all__ = [
    "AnnotatorSpec",
    "DawidSkeneResult",
    "LabelAudit",
    "Ledger",
    "LedgerEntry",
    "SimulatedAnnotator",
    "audit_precision_recall",
    "dawid_skene",
    "find_label_issues",
    "majority_vote",
    "out_of_fold_proba",
    "select_rows",
]

RandomState = int | np.random.Generator | None
Strategy = Literal["uncertainty", "random", "margin"]

# Relative slack for budget comparisons, so that e.g. ten bookings of 0.1 fit a budget of 1.0.
_BUDGET_RTOL = 1e-9


# ---------------------------------------------------------------------------------------------
# Annotators
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnnotatorSpec:
    """A paid source of labels and how it errs.

    Attributes:
        name: Name used in the ledger and in reports.
        cost_per_label: Price of one label, in budget units (>= 0).
        noise_rate: Probability that a classification label is replaced by a different class
            chosen uniformly at random; in [0, 1).
        confusion: Optional K x K matrix; row i holds the probabilities of each given label when
            the true class is i. Rows are non-negative and sum to 1. When set it defines the
            annotator's errors completely, so ``noise_rate`` must then be 0.

    Raises:
        ConfigError: If a value is out of range or the confusion matrix is malformed.
    """

    name: str
    cost_per_label: float
    noise_rate: float = 0.0
    confusion: list[list[float]] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("AnnotatorSpec.name must be a non-empty string.")
        if not (math.isfinite(self.cost_per_label) and self.cost_per_label >= 0):
            raise ConfigError(
                f"Annotator {self.name!r}: cost_per_label must be a finite number >= 0, "
                f"got {self.cost_per_label!r}."
            )
        if not (0.0 <= self.noise_rate < 1.0):
            raise ConfigError(
                f"Annotator {self.name!r}: noise_rate must be in [0, 1), got {self.noise_rate!r}."
            )
        if self.confusion is None:
            return
        if self.noise_rate != 0.0:
            raise ConfigError(
                f"Annotator {self.name!r}: give either noise_rate or confusion, not both "
                "(a confusion matrix already defines the errors)."
            )
        matrix = np.asarray(self.confusion, dtype=float)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise ConfigError(
                f"Annotator {self.name!r}: confusion must be a square K x K matrix, "
                f"got shape {matrix.shape}."
            )
        if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
            raise ConfigError(f"Annotator {self.name!r}: confusion entries must be finite and >= 0.")
        sums = matrix.sum(axis=1)
        bad = np.flatnonzero(~np.isclose(sums, 1.0, atol=1e-6))
        if bad.size:
            raise ConfigError(
                f"Annotator {self.name!r}: confusion row {int(bad[0])} sums to {sums[bad[0]]:.6g}, "
                "every row must sum to 1."
            )


class SimulatedAnnotator:
    """An annotator simulated from the hidden truth.

    It is handed the true labels only so that it can simulate; the caller treats whatever
    :meth:`label` returns as the label it bought, errors included. Randomness comes from one numpy
    ``Generator`` created at construction, so a fixed ``random_state`` gives the same sequence of
    labels call after call.

    Args:
        spec: Price and error model of the annotator.
        classes: The class labels in a fixed order (codes are positions in it). Ignored, and may
            be empty or None, for regression.
        task: "classification" or "regression".
        noise_scale: Standard deviation of the Gaussian noise added to regression targets (besides the
            `noise_rate` share of mix-ups: the value of another row of the batch).
        random_state: Seed or Generator for the simulation.

    Raises:
        ConfigError: If the task is unknown, ``noise_scale`` is negative, the classes are missing
            for classification, or the confusion matrix does not match the number of classes.
    """

    def __init__(
        self,
        spec: AnnotatorSpec,
        classes: Sequence[Any] | None,
        *,
        task: Literal["classification", "regression"] = "classification",
        noise_scale: float = 0.0,
        random_state: RandomState = None,
    ) -> None:
        if task not in ("classification", "regression"):
            raise ConfigError(f"task must be 'classification' or 'regression', got {task!r}.")
        if not (math.isfinite(noise_scale) and noise_scale >= 0):
            raise ConfigError(f"noise_scale must be a finite number >= 0, got {noise_scale!r}.")
        self.spec = spec
        self.task = task
        self.noise_scale = float(noise_scale)
        self.classes = np.asarray(list(classes) if classes is not None else [])
        if task == "classification":
            if self.classes.size == 0:
                raise ConfigError(f"Annotator {spec.name!r}: classification needs the list of classes.")
            if len(np.unique(self.classes)) != self.classes.size:
                raise ConfigError(f"Annotator {spec.name!r}: classes contain duplicates.")
            if spec.confusion is not None and len(spec.confusion) != self.classes.size:
                raise ConfigError(
                    f"Annotator {spec.name!r}: confusion is {len(spec.confusion)} x "
                    f"{len(spec.confusion)} but there are {self.classes.size} classes."
                )
        self._cum_confusion = (
            np.cumsum(np.asarray(spec.confusion, dtype=float), axis=1) if spec.confusion is not None else None
        )
        self._rng = np.random.default_rng(random_state)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def cost_per_label(self) -> float:
        return self.spec.cost_per_label

    def label(self, true_labels: np.ndarray) -> np.ndarray:
        """Return this annotator's labels for rows whose true labels are given.

        Args:
            true_labels: The hidden truth, one value per row (class labels from ``classes`` for
                classification, numbers for regression).

        Returns:
            The labels as given by the annotator: class labels of the same kind as ``classes``,
            or floats for regression.

        Raises:
            DataError: If a true label is not one of ``classes`` or a regression target is not numeric.
        """
        truth = np.asarray(true_labels)
        if truth.ndim != 1:
            truth = truth.reshape(-1)
        if self.task == "regression":
            try:
                values = truth.astype(float)
            except (TypeError, ValueError) as exc:
                raise DataError(f"Annotator {self.name!r}: regression targets must be numeric.") from exc
            given = values.copy()
            # A wrong regression label is a mix-up: the value of another row of the batch (a misread line,
            # a value typed into the wrong record). Both draws are made whatever the noise rate.
            flip = self._rng.random(values.shape[0]) < self.spec.noise_rate
            other = self._rng.integers(0, max(1, values.shape[0]), size=values.shape[0])
            if values.shape[0] > 1:
                given[flip] = values[other[flip]]
            if self.noise_scale > 0.0:
                given = given + self._rng.normal(0.0, self.noise_scale, size=values.shape[0])
            return given

        codes = self._encode(truth)
        n_classes = self.classes.size
        if self._cum_confusion is not None:
            draws = self._rng.random(codes.shape[0])
            given = (self._cum_confusion[codes] < draws[:, None]).sum(axis=1)
            given = np.minimum(given, n_classes - 1)  # guards the rounding at the end of a row
        else:
            given = codes.copy()
            # Both draws are made whatever the noise rate, so the sequence does not depend on it.
            flip = self._rng.random(codes.shape[0]) < self.spec.noise_rate
            if n_classes > 1:
                offset = self._rng.integers(1, n_classes, size=codes.shape[0])
                given[flip] = (codes[flip] + offset[flip]) % n_classes
        return self.classes[given]

    def _encode(self, truth: np.ndarray) -> np.ndarray:
        order = np.argsort(self.classes, kind="stable")
        sorted_classes = self.classes[order]
        pos = np.searchsorted(sorted_classes, truth)
        pos = np.clip(pos, 0, sorted_classes.size - 1)
        unknown = sorted_classes[pos] != truth
        if np.any(unknown):
            example = truth[np.flatnonzero(unknown)[0]]
            example = example.item() if isinstance(example, np.generic) else example
            raise DataError(
                f"Annotator {self.name!r}: true label {example!r} is not one of the classes "
                f"{self.classes.tolist()!r}."
            )
        return order[pos]


# ---------------------------------------------------------------------------------------------
# Budget ledger
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    """One booking: ``n_labels`` labels from ``source`` in ``iteration`` at ``cost_per_label`` each."""

    source: str
    iteration: int
    n_labels: int
    cost_per_label: float
    total: float
    kind: str


_LEDGER_COLUMNS = ["source", "iteration", "n_labels", "cost_per_label", "total", "kind"]


class Ledger:
    """Books what every label cost and refuses spends beyond the budget.

    Synthetic labels are booked too, at zero cost with ``kind="synthetic"``, so the ledger
    accounts for every label the model saw.

    Args:
        budget: Total money available, or None for no limit.

    Raises:
        ConfigError: If the budget is negative or not finite.
    """

    def __init__(self, budget: float | None) -> None:
        if budget is not None and not (math.isfinite(budget) and budget >= 0):
            raise ConfigError(f"budget must be a finite number >= 0 or None, got {budget!r}.")
        self.budget = None if budget is None else float(budget)
        self._entries: list[LedgerEntry] = []
        self._spent = 0.0

    @property
    def entries(self) -> list[LedgerEntry]:
        """The bookings in the order they were made (a copy)."""
        return list(self._entries)

    @property
    def spent(self) -> float:
        return self._spent

    @property
    def remaining(self) -> float:
        """Money left; ``math.inf`` when there is no budget."""
        if self.budget is None:
            return math.inf
        return max(self.budget - self._spent, 0.0)

    def book(
        self,
        source: str,
        iteration: int,
        n_labels: int,
        cost_per_label: float,
        kind: str = "label",
    ) -> LedgerEntry:
        """Book ``n_labels`` labels, or refuse and book nothing.

        Args:
            source: Who supplied the labels (annotator name, "synthetic", ...).
            iteration: Loop iteration the labels were bought in (>= 0).
            n_labels: Number of labels (>= 0).
            cost_per_label: Price of one label (>= 0); must be 0 for ``kind="synthetic"``.
            kind: What was bought, e.g. "label", "relabel" or "synthetic".

        Returns:
            The booked entry.

        Raises:
            BudgetError: If the spend would take the total beyond the budget.
            ValueError: If a count or price is negative, or synthetic labels are given a price.
        """
        if int(n_labels) != n_labels or n_labels < 0:
            raise ValueError(f"n_labels must be an integer >= 0, got {n_labels!r}.")
        if int(iteration) != iteration or iteration < 0:
            raise ValueError(f"iteration must be an integer >= 0, got {iteration!r}.")
        if not (math.isfinite(cost_per_label) and cost_per_label >= 0):
            raise ValueError(f"cost_per_label must be a finite number >= 0, got {cost_per_label!r}.")
        if kind == "synthetic" and cost_per_label != 0:
            raise ValueError(f"Synthetic labels are booked at zero cost, got {cost_per_label!r} per label.")
        n_labels, iteration, cost_per_label = int(n_labels), int(iteration), float(cost_per_label)
        total = n_labels * cost_per_label
        if self.budget is not None and self._spent + total > self.budget * (1 + _BUDGET_RTOL):
            raise BudgetError(
                f"Buying {n_labels} labels from {source!r} at {cost_per_label:g} each "
                f"({total:g}) in iteration {iteration} would exceed the budget of {self.budget:g}: "
                f"{self._spent:g} is spent and {self.remaining:g} remains, enough for "
                f"{self.affordable(cost_per_label)} labels at that price. "
                "Buy fewer labels or raise annotation.budget."
            )
        entry = LedgerEntry(source, iteration, n_labels, cost_per_label, total, kind)
        self._entries.append(entry)
        self._spent = math.fsum(e.total for e in self._entries)
        return entry

    def affordable(self, cost_per_label: float) -> int:
        """How many labels at ``cost_per_label`` the remaining budget still pays for.

        Returns ``sys.maxsize`` when there is no budget or the labels are free.
        """
        if not (math.isfinite(cost_per_label) and cost_per_label >= 0):
            raise ValueError(f"cost_per_label must be a finite number >= 0, got {cost_per_label!r}.")
        if self.budget is None or cost_per_label == 0:
            return sys.maxsize
        limit = self.budget * (1 + _BUDGET_RTOL)
        n = max(int(math.floor((limit - self._spent) / cost_per_label)), 0)
        # floor of a float quotient can be one off either way; settle it with the same test book() uses
        while n > 0 and self._spent + n * cost_per_label > limit:
            n -= 1
        while self._spent + (n + 1) * cost_per_label <= limit:
            n += 1
        return n

    def totals_by_source(self) -> dict[str, float]:
        out: dict[str, list[float]] = {}
        for e in self._entries:
            out.setdefault(e.source, []).append(e.total)
        return {k: math.fsum(v) for k, v in out.items()}

    def totals_by_iteration(self) -> dict[int, float]:
        out: dict[int, list[float]] = {}
        for e in self._entries:
            out.setdefault(e.iteration, []).append(e.total)
        return {k: math.fsum(v) for k, v in sorted(out.items())}

    def to_frame(self) -> pd.DataFrame:
        """The bookings as a table with one row per entry (columns as in :class:`LedgerEntry`)."""
        frame = pd.DataFrame([asdict(e) for e in self._entries], columns=_LEDGER_COLUMNS)
        return frame.astype(
            {"source": object, "iteration": "int64", "n_labels": "int64", "cost_per_label": float,
             "total": float, "kind": object}
        )

    def __repr__(self) -> str:
        return f"Ledger(budget={self.budget!r}, spent={self._spent:g}, entries={len(self._entries)})"


# ---------------------------------------------------------------------------------------------
# Combining several annotators' votes
# ---------------------------------------------------------------------------------------------


# Results carrying numpy arrays use eq=False: field-wise == on arrays has no single truth value.
@dataclass(frozen=True, eq=False)
class DawidSkeneResult:
    """Labels and annotator quality estimated by Dawid–Skene EM.

    Attributes:
        labels: Most probable class per item; -1 for items nobody voted on.
        posteriors: n_items x K posterior class probabilities (the class prior for items without votes).
        confusions: n_annotators x K x K; ``[a, i, j]`` = P(annotator a says j | true class i).
        accuracies: Expected fraction of each annotator's votes that are right, under the posteriors;
            NaN for an annotator who cast no vote.
        iterations: EM iterations run.
    """

    labels: np.ndarray
    posteriors: np.ndarray
    confusions: np.ndarray
    accuracies: np.ndarray
    iterations: int


def _vote_codes(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """Votes as an int matrix with -1 for "no vote"; checks every vote is a class code."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}.")
    arr = np.asarray(votes, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"votes must be an n_items x n_annotators matrix, got shape {arr.shape}.")
    missing = np.isnan(arr) | (arr < 0)
    present = arr[~missing]
    if present.size and (np.any(present != np.round(present)) or np.any(present >= n_classes)):
        raise ValueError(f"votes must be integer class codes in 0..{n_classes - 1}, or -1/NaN for no vote.")
    codes = np.where(missing, -1, np.nan_to_num(arr, nan=-1)).astype(np.int64)
    return codes


def _vote_counts(codes: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.zeros((codes.shape[0], n_classes))
    rows, cols = np.nonzero(codes >= 0)
    np.add.at(counts, (rows, codes[rows, cols]), 1.0)
    return counts


def majority_vote(votes: np.ndarray, n_classes: int, *, random_state: RandomState = 0) -> np.ndarray:
    """The most frequent vote per item.

    Ties are broken at random among the tied classes, reproducibly for a given ``random_state``.

    Args:
        votes: n_items x n_annotators class codes; -1 or NaN means "no vote".
        n_classes: Number of classes K.
        random_state: Seed for breaking ties.

    Returns:
        Class code per item; -1 for items with no vote at all.
    """
    codes = _vote_codes(votes, n_classes)
    counts = _vote_counts(codes, n_classes)
    rng = np.random.default_rng(random_state)
    is_top = counts == counts.max(axis=1, keepdims=True)
    # A random key per cell, kept only on the tied maxima, makes the tie-break uniform.
    labels = np.argmax(np.where(is_top, rng.random(counts.shape) + 1.0, 0.0), axis=1)
    labels[counts.sum(axis=1) == 0] = -1
    return labels


def dawid_skene(
    votes: np.ndarray,
    n_classes: int,
    *,
    max_iter: int = 50,
    tol: float = 1e-6,
    smoothing: float = 0.01,
) -> DawidSkeneResult:
    """Combine annotators' votes with the Dawid–Skene model, fitted by EM.

    Each annotator has a K x K confusion matrix; the true class has a prior. EM starts from the
    soft majority vote (each item's vote shares), then alternates the M-step (priors and
    confusions from the posteriors) and the E-step (posteriors from priors and confusions).
    Missing votes simply contribute nothing. A pseudo-count ``smoothing`` is added to every cell
    of every confusion row and to the prior, so no estimate is ever 0 and nothing divides by 0.

    Args:
        votes: n_items x n_annotators class codes; -1 or NaN means "no vote".
        n_classes: Number of classes K.
        max_iter: Most EM iterations to run.
        tol: Stop when no posterior probability moves by more than this.
        smoothing: Dirichlet pseudo-count (> 0) added to every confusion cell and prior entry.

    Returns:
        The fitted labels, posteriors, confusion matrices and per-annotator accuracies.
    """
    if smoothing <= 0:
        raise ValueError(f"smoothing must be > 0, got {smoothing!r}.")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter!r}.")
    codes = _vote_codes(votes, n_classes)
    n_items, n_annot = codes.shape
    k = n_classes
    counts = _vote_counts(codes, n_classes)
    voted = counts.sum(axis=1) > 0
    post = np.full((n_items, k), 1.0 / k)
    post[voted] = counts[voted] / counts[voted].sum(axis=1, keepdims=True)
    # one-hot of each annotator's votes: n_items x n_annot x K (zeros where no vote)
    onehot = np.zeros((n_items, n_annot, k))
    rows, annots = np.nonzero(codes >= 0)
    onehot[rows, annots, codes[rows, annots]] = 1.0

    iterations = 0
    for iterations in range(1, max_iter + 1):
        prior = (post[voted].sum(axis=0) + smoothing) / (voted.sum() + k * smoothing)
        # confusions[a, i, j] = sum_n post[n, i] * onehot[n, a, j]
        confusions = np.einsum("ni,naj->aij", post, onehot) + smoothing
        confusions /= confusions.sum(axis=2, keepdims=True)
        log_post = np.log(prior)[None, :] + np.einsum("naj,aij->ni", onehot, np.log(confusions))
        new_post = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))
        new_post[~voted] = prior
        change = np.max(np.abs(new_post - post)) if n_items else 0.0
        post = new_post
        if change < tol:
            break

    # Final M-step so the confusions match the returned posteriors.
    confusions = np.einsum("ni,naj->aij", post, onehot) + smoothing
    confusions /= confusions.sum(axis=2, keepdims=True)
    n_votes = onehot.sum(axis=(0, 2))
    agree = np.einsum("ni,nai->a", post, onehot)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracies = np.where(n_votes > 0, agree / np.maximum(n_votes, 1), np.nan)
    labels = np.argmax(post, axis=1)
    labels[~voted] = -1
    return DawidSkeneResult(labels, post, confusions, accuracies, iterations)


# ---------------------------------------------------------------------------------------------
# Label audit: confident learning
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LabelAudit:
    """Result of a confident-learning audit.

    Attributes:
        flags: True for rows whose given label is likely wrong.
        noise_rate: Estimated fraction of wrong labels in the audited rows.
        confident_joint: K x K counts, calibrated to the label counts; ``[i, j]`` estimates how
            many rows labelled i truly belong to j.
        thresholds: Per-class confidence thresholds (mean self-confidence of each class).
    """

    flags: np.ndarray
    noise_rate: float
    confident_joint: np.ndarray
    thresholds: np.ndarray

    @property
    def n_flagged(self) -> int:
        return int(self.flags.sum())


def out_of_fold_proba(
    X: np.ndarray | pd.DataFrame,
    y: np.ndarray,
    model_factory: Callable[[], Any],
    *,
    n_splits: int = 5,
    random_state: int = 0,
    n_classes: int | None = None,
) -> np.ndarray:
    """Predicted class probabilities for every row from a model that never saw that row.

    Stratified K-fold: each fold is predicted by a fresh model from ``model_factory`` fitted on the
    other folds. When the smallest class has fewer than ``n_splits`` rows, fewer folds are used
    (at least 2).

    Args:
        X: Features, a numeric array or a DataFrame the model accepts.
        y: Class codes 0..K-1, one per row.
        model_factory: Returns a new unfitted classifier with ``fit`` and ``predict_proba``.
        n_splits: Folds wanted.
        random_state: Seed for the fold assignment.
        n_classes: K; defaults to ``max(y) + 1``.

    Returns:
        n_rows x K out-of-fold probabilities; a class absent from a fold's training rows gets 0.
    """
    y = np.asarray(y)
    n = y.shape[0]
    if len(X) != n:
        raise ValueError(f"X has {len(X)} rows but y has {n}.")
    if n < 2:
        raise ValueError("out_of_fold_proba needs at least 2 rows.")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError("y must hold integer class codes 0..K-1.")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if y.max() >= k:
        raise ValueError(f"y holds class code {int(y.max())} but n_classes is {k}.")
    present_counts = np.bincount(y, minlength=k)
    smallest = int(present_counts[present_counts > 0].min())
    folds = max(2, min(int(n_splits), smallest))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    out = np.zeros((n, k))
    is_frame = isinstance(X, pd.DataFrame)
    with warnings.catch_warnings():
        # A class with a single row cannot be in both halves; that is expected here, not news.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(splitter.split(np.zeros(n), y))
    for train_idx, test_idx in splits:
        model = model_factory()
        X_train = X.iloc[train_idx] if is_frame else X[train_idx]
        X_test = X.iloc[test_idx] if is_frame else X[test_idx]
        model.fit(X_train, y[train_idx])
        proba = np.asarray(model.predict_proba(X_test))
        fitted_classes = np.asarray(getattr(model, "classes_", np.unique(y[train_idx]))).astype(int)
        out[np.ix_(test_idx, fitted_classes)] = proba
        del model, X_train, X_test  # not alive beside the next fold's copies
    return out


def find_label_issues(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    method: Literal["prune_by_noise_rate", "confident_joint"] = "prune_by_noise_rate",
) -> LabelAudit:
    """Flag rows whose given label is likely wrong (confident learning, Northcutt et al. 2021).

    Written here rather than taken from cleanlab because cleanlab is AGPL-3.0, which this
    Apache-2.0 project cannot ship, and the core is small.

    Steps:

    1. Threshold per class j: the mean predicted probability of j over rows labelled j.
    2. Confident joint: a row labelled i counts in cell (i, j) when p[j] reaches j's threshold;
       if several classes do, the most probable of them. Rows reaching no threshold are not
       counted. Every diagonal cell is at least 1.
    3. Calibration: each row i of the joint is rescaled to sum to the number of rows labelled i.
       The off-diagonal mass divided by the number of rows is the estimated noise rate.
    4. Flagging. ``"prune_by_noise_rate"`` (default): for each off-diagonal cell (i, j) with
       calibrated count n_ij, flag the round(n_ij) rows labelled i with the largest margin
       p[j] - p[i] (never all rows of a class). ``"confident_joint"``: flag the rows counted
       off-diagonal in step 2. Either way a row whose given label is also the model's top
       prediction is never flagged.

    Args:
        labels: Given class codes 0..K-1, one per row.
        pred_probs: n_rows x K out-of-fold predicted probabilities (see :func:`out_of_fold_proba`).
        method: Flagging rule, as above.

    Returns:
        Flags, estimated noise rate, calibrated confident joint and per-class thresholds. A class
        with no labelled rows gets an infinite threshold (no row can be confidently in it).
    """
    labels = np.asarray(labels)
    probs = np.asarray(pred_probs, dtype=float)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(
            f"pred_probs must be n_rows x K with one row per label; got {probs.shape} "
            f"for {labels.shape[0]} labels."
        )
    if method not in ("prune_by_noise_rate", "confident_joint"):
        raise ConfigError(f"method must be 'prune_by_noise_rate' or 'confident_joint', got {method!r}.")
    n, k = probs.shape
    if n == 0:
        return LabelAudit(np.zeros(0, dtype=bool), 0.0, np.zeros((k, k)), np.full(k, np.inf))
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must be integer class codes 0..{k - 1}.")

    label_counts = np.bincount(labels, minlength=k)
    # self-confidence of a row = probability of its own given label; summed per given label
    self_conf_sums = np.bincount(labels, weights=probs[np.arange(n), labels], minlength=k)
    thresholds = np.full(k, np.inf)
    has_rows = label_counts > 0
    thresholds[has_rows] = self_conf_sums[has_rows] / label_counts[has_rows]

    # A small slack keeps a row that sits exactly on its threshold from missing it by rounding.
    above = probs >= thresholds[None, :] - 1e-9
    any_above = above.any(axis=1)
    confident_class = np.argmax(np.where(above, probs, -np.inf), axis=1)
    raw = np.zeros((k, k))
    np.add.at(raw, (labels[any_above], confident_class[any_above]), 1.0)
    off_diag_rows = any_above & (confident_class != labels)
    np.fill_diagonal(raw, np.maximum(np.diag(raw), 1.0))

    calibrated = raw / raw.sum(axis=1, keepdims=True) * label_counts[:, None]
    noise_rate = float((calibrated.sum() - np.trace(calibrated)) / n)

    if method == "confident_joint":
        flags = off_diag_rows.copy()
    else:
        flags = np.zeros(n, dtype=bool)
        for i in range(k):
            rows_i = np.flatnonzero(labels == i)
            if rows_i.size <= 1:
                continue
            wanted = np.rint(calibrated[i]).astype(int)
            wanted[i] = 0
            # keep at least one row of every class: scale the class's total down if needed
            cap = rows_i.size - 1
            if wanted.sum() > cap:
                wanted = np.floor(wanted * cap / wanted.sum()).astype(int)
            for j in np.flatnonzero(wanted):
                margin = probs[rows_i, j] - probs[rows_i, i]
                top = np.argsort(-margin, kind="stable")[: wanted[j]]
                flags[rows_i[top]] = True
    flags &= np.argmax(probs, axis=1) != labels
    return LabelAudit(flags, noise_rate, calibrated, thresholds)


# ---------------------------------------------------------------------------------------------
# Active selection
# ---------------------------------------------------------------------------------------------


def select_rows(
    n: int,
    *,
    strategy: Strategy,
    proba: np.ndarray | None = None,
    candidates: np.ndarray,
    random_state: RandomState = None,
) -> np.ndarray:
    """Choose which ``n`` candidate rows to label next.

    Args:
        n: How many rows to choose (>= 0). All candidates are returned when there are fewer.
        strategy: ``"uncertainty"``: highest predictive entropy first; ``"margin"``: smallest gap
            between the two most probable classes first; ``"random"``: uniform, ignores ``proba``.
        proba: Predicted probabilities, aligned with ``candidates`` (row k belongs to
            ``candidates[k]``); needed for "uncertainty" and "margin".
        candidates: Row indices to choose from.
        random_state: Seed for "random".

    Returns:
        The chosen row indices (values from ``candidates``), most informative first for the
        model-based strategies; ties keep candidate order.

    Raises:
        ConfigError: If the strategy is unknown.
        ValueError: If ``n`` is negative or ``proba`` is missing or does not match ``candidates``.
    """
    candidates = np.asarray(candidates)
    if candidates.ndim != 1:
        raise ValueError(f"candidates must be a 1-d array of row indices, got shape {candidates.shape}.")
    if int(n) != n or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}.")
    n = min(int(n), candidates.size)
    if strategy == "random":
        rng = np.random.default_rng(random_state)
        return rng.choice(candidates, size=n, replace=False)
    if strategy not in ("uncertainty", "margin"):
        raise ConfigError(
            f"selection strategy must be 'uncertainty', 'margin' or 'random', got {strategy!r}."
        )
    if proba is None:
        raise ValueError(f"strategy {strategy!r} needs proba.")
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[0] != candidates.size:
        raise ValueError(
            f"proba must have one row per candidate ({candidates.size}), got shape {p.shape}."
        )
    if strategy == "uncertainty":
        score = -entr(p).sum(axis=1)  # lower = more uncertain
    else:
        top2 = -np.sort(-p, axis=1)[:, :2]
        score = top2[:, 0] - (top2[:, 1] if p.shape[1] > 1 else 0.0)
    order = np.argsort(score, kind="stable")[:n]
    return candidates[order]


# ---------------------------------------------------------------------------------------------
# Scoring an audit in simulations
# ---------------------------------------------------------------------------------------------


def audit_precision_recall(flags: np.ndarray, is_wrong: np.ndarray) -> tuple[float, float]:
    """Precision and recall of audit flags against the known wrong labels (simulations only).

    Args:
        flags: True where the audit flagged a row.
        is_wrong: True where the given label differs from the truth.

    Returns:
        ``(precision, recall)``; precision is NaN when nothing was flagged and recall is NaN when
        no label was wrong, since neither ratio is defined then.
    """
    flags = np.asarray(flags, dtype=bool)
    is_wrong = np.asarray(is_wrong, dtype=bool)
    if flags.shape != is_wrong.shape:
        raise ValueError(f"flags {flags.shape} and is_wrong {is_wrong.shape} differ in shape.")
    hits = float(np.sum(flags & is_wrong))
    n_flagged, n_wrong = float(flags.sum()), float(is_wrong.sum())
    precision = hits / n_flagged if n_flagged else math.nan
    recall = hits / n_wrong if n_wrong else math.nan
    return precision, recall
