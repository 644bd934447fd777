"""Gaussian copula: empirical marginals joined by a shrunk Gaussian copula, one per class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.utils.validation import check_is_fitted

from synthloop.synth.privacy import DCR_FLOOR, RowGuard, guard_rows
from synthloop.synth._codec import (
    TaskName, _allocate, _check_kinds, _check_task, _class_shares, _Column, _decode, _describe_column, _encode, _rng,
    _target_series,
)

# Uniforms are kept this far inside (0, 1) so that normal scores stay finite.
_EPS = 1e-9


@dataclass(frozen=True)
class _Margin:
    """One column's empirical marginal inside a copula component.

    ``dim`` is the copula dimension holding the column's values (None when it has none observed),
    ``miss_dim`` the dimension of its missingness indicator (continuous columns that are
    sometimes missing). Continuous margins keep sorted observed ``values``; discrete ones keep
    the codes they saw, most frequent first, in ``values`` and interval bounds in ``edges``.
    """

    dim: int | None
    miss_dim: int | None
    miss_rate: float
    values: np.ndarray
    edges: np.ndarray | None = None


@dataclass(frozen=True)
class _Component:
    """A fitted copula: margins, correlation of normal scores and its square-root factor."""

    margins: tuple[_Margin, ...]
    corr: np.ndarray
    factor: np.ndarray
    shrinkage: float
    n_rows: int
    target_dim: int | None = None
    cond_beta: np.ndarray | None = None
    cond_factor: np.ndarray | None = None


def _normal_scores(u: np.ndarray) -> np.ndarray:
    return special.ndtri(np.clip(u, _EPS, 1.0 - _EPS))


def _fit_margin(
    col: _Column, data: np.ndarray, rng: np.random.Generator, scores: list[np.ndarray]
) -> _Margin:
    """Fit one margin on ``data`` and append its normal scores (NaN where missing) to ``scores``."""
    n = data.size
    if col.continuous:
        obs = ~np.isnan(data)
        n_obs = int(obs.sum())
        observed = data[obs]
        order = np.argsort(observed)
        values = observed[order]
        dim = miss_dim = None
        if n_obs:
            # Rank-based uniforms; tied values share their block of ranks and are spread within it.
            new_value = np.concatenate([[True], values[1:] != values[:-1]])
            starts = np.flatnonzero(new_value)
            group = np.cumsum(new_value) - 1
            left = starts[group]
            right = np.append(starts[1:], n_obs)[group]
            u = np.empty(n_obs)
            u[order] = (left + rng.random(n_obs) * (right - left)) / n_obs
            z = np.full(n, np.nan)
            z[obs] = _normal_scores(u)
            dim = len(scores)
            scores.append(z)
        rate = 1.0 - n_obs / n
        if 0.0 < rate < 1.0:
            # Missingness as a two-level discrete column: observed owns [0, 1-rate), missing the rest.
            u = np.where(obs, rng.random(n) * (1.0 - rate), 1.0 - rate + rng.random(n) * rate)
            miss_dim = len(scores)
            scores.append(_normal_scores(u))
        return _Margin(dim, miss_dim, rate, values)
    counts = np.bincount(data, minlength=col.n_codes)
    seen = np.flatnonzero(counts)
    order = seen[np.argsort(-counts[seen], kind="stable")]
    edges = np.concatenate([[0], np.cumsum(counts[order])]) / n
    position = np.zeros(col.n_codes, dtype=np.int64)
    position[order] = np.arange(order.size)
    pos = position[data]
    u = edges[pos] + rng.random(n) * (edges[pos + 1] - edges[pos])
    scores.append(_normal_scores(u))
    return _Margin(len(scores) - 1, None, 0.0, order, edges)


def _correlation(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of normal scores over pairwise-complete rows, repaired to be PSD.

    Returns:
        The correlation matrix and the standardized scores with missing entries set to 0.
    """
    n, d = Z.shape
    mask = ~np.isnan(Z)
    mean = np.nanmean(Z, axis=0)
    std = np.nanstd(Z, axis=0)
    std[~(std > 0)] = 1.0
    Z0 = np.where(mask, (Z - mean) / std, 0.0)
    if mask.all():
        R = Z0.T @ Z0 / n
    else:
        M = mask.astype(np.float64)
        S = Z0.T @ Z0
        Q = (Z0 * Z0).T @ M
        denom = np.sqrt(Q * Q.T)
        enough = (M.T @ M) >= 3
        with np.errstate(invalid="ignore", divide="ignore"):
            R = np.where(enough & (denom > 0), S / denom, 0.0)
    R = np.clip((R + R.T) / 2.0, -1.0, 1.0)
    np.fill_diagonal(R, 1.0)
    w, V = np.linalg.eigh(R)
    if w.min() < 0:
        R = (V * np.clip(w, 0.0, None)) @ V.T
        scale = np.sqrt(np.clip(np.diag(R), 1e-12, None))
        R = R / np.outer(scale, scale)
        np.fill_diagonal(R, 1.0)
    return R, Z0


def _sqrt_factor(C: np.ndarray) -> np.ndarray:
    """``L`` with ``L @ L.T == C`` for a symmetric PSD ``C`` (eigen-based, so singular C is fine)."""
    w, V = np.linalg.eigh(C)
    return V * np.sqrt(np.clip(w, 0.0, None))


def _fit_component(
    columns: Sequence[_Column],
    arrays: Sequence[np.ndarray],
    rows: np.ndarray | None,
    shrinkage: float | None,
    rng: np.random.Generator,
    target_index: int | None,
) -> _Component:
    scores: list[np.ndarray] = []
    margins = []
    for col, arr in zip(columns, arrays):
        margins.append(_fit_margin(col, arr if rows is None else arr[rows], rng, scores))
    n_rows = int(arrays[0].size if rows is None else rows.size)
    if not scores:
        return _Component(tuple(margins), np.zeros((0, 0)), np.zeros((0, 0)), 1.0, n_rows)
    Z = np.column_stack(scores)
    R, Z0 = _correlation(Z)
    if shrinkage is None:
        delta = float(ledoit_wolf_shrinkage(Z0, assume_centered=True)) if n_rows > 1 else 1.0
    else:
        delta = float(shrinkage)
    delta = min(max(delta, 0.0), 1.0)
    R = (1.0 - delta) * R + delta * np.eye(R.shape[0])
    target_dim = beta = cond = None
    if target_index is not None:
        target_dim = margins[target_index].dim
        beta = R[:, target_dim].copy()
        cond = _sqrt_factor(R - np.outer(beta, beta))
    return _Component(tuple(margins), R, _sqrt_factor(R), delta, n_rows, target_dim, beta, cond)


def _invert_margin(col: _Column, margin: _Margin, Z: np.ndarray) -> np.ndarray:
    """Map normal scores back to a column's values through its empirical quantile function."""
    n = Z.shape[0]
    if not col.continuous:
        u = special.ndtr(Z[:, margin.dim])
        pos = np.searchsorted(margin.edges[1:-1], u, side="right")
        return margin.values[np.minimum(pos, margin.values.size - 1)]
    if margin.dim is None:
        return np.full(n, np.nan)
    u = special.ndtr(Z[:, margin.dim])
    s = margin.values
    m = s.size
    if m == 1:
        out = np.full(n, s[0])
    elif col.discrete:
        out = s[np.minimum((u * m).astype(np.int64), m - 1)]
    else:
        # Linear interpolation between order statistics placed at (i + 0.5) / m: stays in [min, max].
        pos = np.clip(u * m - 0.5, 0.0, m - 1.0)
        i = np.minimum(pos.astype(np.int64), m - 2)
        out = s[i] + (pos - i) * (s[i + 1] - s[i])
        if col.step is not None:
            out = np.rint(out / col.step) * col.step
        out = np.clip(out, s[0], s[-1])  # rounding must not step outside the observed range
    if margin.miss_dim is not None:
        out[special.ndtr(Z[:, margin.miss_dim]) >= 1.0 - margin.miss_rate] = np.nan
    return out


class GaussianCopula(BaseEstimator):
    """Empirical marginals joined by a Gaussian copula with a shrunk correlation matrix.

    Each column is mapped to uniforms through its empirical CDF (ranks for numeric and datetime
    columns, ties spread at random; frequency intervals for categorical and boolean ones, each
    category owning a share of [0, 1] equal to its frequency), then to normal scores whose
    correlation is shrunk toward the identity (Ledoit-Wolf), which keeps it well conditioned when
    there are fewer rows than columns. Sampling reverses the path, so numeric values stay within
    the observed range, integer-valued columns stay integer-valued and categories come only from
    the real set. A continuous column that is sometimes missing gets a missingness indicator in
    the copula, so missing values come back at the observed rate and with their dependence on
    other columns.

    For classification with ``class_conditional=True`` each class with at least
    ``min_class_rows`` rows gets its own copula; smaller classes are drawn from the pooled copula
    (which holds the label as one more discrete column) conditioned on the label. For regression
    the target is one more continuous column of the copula.

    Args:
        kinds: Feature column name -> "numeric", "categorical", "boolean" or "datetime".
        class_conditional: Fit one copula per class (classification only).
        min_class_rows: Smallest class that gets its own copula.
        shrinkage: Weight of the identity in the correlation matrix, in [0, 1]; None estimates
            it with the Ledoit-Wolf formula.
        dcr_floor: Rows closer than this share of the median real-to-real closest distance to a real train row
            are redrawn; 0 rejects exact copies only.
        random_state: Seed or ``np.random.Generator`` for fitting and, by default, sampling.

    Attributes:
        columns_: Feature columns in output order.
        task_: The task given to ``fit``.
        classes_: Sorted class labels (classification with a target), else None.
        class_counts_: Rows per class in ``classes_`` order, else None.
        components_: Fitted copulas keyed by class label; key None is the pooled copula. Each
            has ``corr`` (correlation of normal scores), ``shrinkage`` and ``n_rows``.
        codecs_: How each feature column is encoded and decoded.
        target_codec_: The same for the target, or None.
        rng_: Generator that ``sample`` continues when given no seed.
        n_features_in_: Number of feature columns.
        guard_: The exact-copy and distance-floor check sampled rows pass.
    """

    def __init__(
        self,
        kinds: Mapping[Any, str],
        *,
        class_conditional: bool = True,
        min_class_rows: int = 10,
        shrinkage: float | None = None,
        dcr_floor: float = DCR_FLOOR,
        random_state: Any = None,
    ):
        self.kinds = kinds
        self.class_conditional = class_conditional
        self.min_class_rows = min_class_rows
        self.shrinkage = shrinkage
        self.dcr_floor = dcr_floor
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any = None, task: TaskName = "classification") -> GaussianCopula:
        """Fit the marginals and the copula(s).

        Args:
            X: Features; columns not in ``kinds`` are ignored.
            y: Target aligned with ``X`` by position, or None to model the features alone.
            task: "classification" or "regression".

        Returns:
            self.
        """
        _check_task(task)
        if self.shrinkage is not None and not 0.0 <= float(self.shrinkage) <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1] or None, got {self.shrinkage!r}.")
        names = _check_kinds(X, self.kinds)
        if len(X) < 1:
            raise ValueError("X has no rows.")
        rng = _rng(self.random_state)
        columns = [_describe_column(c, X[c], self.kinds[c]) for c in names]
        arrays = [_encode(col, X[col.name]) for col in columns]
        self.columns_ = names
        self.n_features_in_ = len(names)
        self.task_ = task
        self.classes_ = self.class_counts_ = None
        self.target_codec_ = None
        self.components_: dict[Any, _Component] = {}

        pooled_needed = True
        if y is not None:
            y = _target_series(y, len(X))
            kind = "categorical" if task == "classification" else "numeric"
            target = _describe_column(y.name, y, kind)
            self.target_codec_ = target
            columns.append(target)
            arrays.append(_encode(target, y))
            if task == "classification":
                self.classes_ = target.categories
                n_classes = len(self.classes_)
                self.class_counts_ = np.bincount(arrays[-1], minlength=n_classes)[:n_classes]
                if self.class_conditional:
                    for code, label in enumerate(self.classes_):
                        if self.class_counts_[code] >= self.min_class_rows:
                            rows = np.flatnonzero(arrays[-1] == code)
                            self.components_[label] = _fit_component(
                                columns[:-1], arrays[:-1], rows, self.shrinkage, rng, None
                            )
                    pooled_needed = len(self.components_) < len(self.classes_)
        if pooled_needed:
            target_index = len(columns) - 1 if self.classes_ is not None else None
            self.components_[None] = _fit_component(columns, arrays, None, self.shrinkage, rng, target_index)
        self.codecs_ = columns[: len(names)]
        self.rng_ = rng
        self.guard_ = RowGuard(X[names], self.kinds, self.dcr_floor)
        return self

    def sample(
        self,
        n: int,
        *,
        class_weights: Mapping[Any, float] | str | None = None,
        random_state: Any = None,
    ) -> tuple[pd.DataFrame, pd.Series | None]:
        """Draw synthetic rows.

        Args:
            n: Number of rows.
            class_weights: Classification only: class label -> relative share of the generated
                rows, or "balanced" for equal shares; None keeps the observed proportions.
            random_state: Seed for this draw; None continues the generator seeded at fit.

        Returns:
            Features (columns of ``kinds``, original dtypes) and the target, or None when fitted
            without one. Rows come in random order with a fresh RangeIndex. Rows that copy a real train row
            or sit closer to one than the DCR floor are redrawn (see :mod:`synthloop.synth.privacy`); the few that
            still fail after six draws are dropped, so on tables with little room fewer than ``n`` rows come back.
        """
        check_is_fitted(self, "components_")
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}.")
        rng = self.rng_ if random_state is None else _rng(random_state)
        if self.classes_ is None:
            if class_weights is not None:
                raise ValueError("class_weights needs a classification target at fit time.")
            counts = np.array([n])
        else:
            shares = self.class_counts_ if class_weights is None else _class_shares(self.classes_, class_weights)
            counts = _allocate(n, shares)
        return guard_rows(self._raw, counts, self.guard_, rng)

    def _raw(self, counts: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series | None, np.ndarray]:
        """``counts[g]`` rows per class code ``g`` (or one group without classes), before the guard."""
        if self.classes_ is None:
            parts = [self._draw(self.components_[None], int(counts[0]), rng, None)]
        else:
            parts = []
            for code, (label, k) in enumerate(zip(self.classes_, counts)):
                if label in self.components_:
                    block = self._draw(self.components_[label], int(k), rng, None)
                    block.append(np.full(int(k), code))
                else:
                    block = self._draw(self.components_[None], int(k), rng, code)
                parts.append(block)
        values = [np.concatenate(v) for v in zip(*parts)]
        X = pd.DataFrame({col.name: _decode(col, v) for col, v in zip(self.codecs_, values)})
        X.columns = pd.Index(self.columns_)
        y = None
        if self.target_codec_ is not None:
            y = _decode(self.target_codec_, values[len(self.codecs_)])
        return X, y, np.repeat(np.arange(len(counts)), counts)

    def _draw(self, comp: _Component, n: int, rng: np.random.Generator, code: int | None) -> list[np.ndarray]:
        """Sample ``n`` rows of one component as encoded arrays, optionally given a class code."""
        d = comp.corr.shape[0]
        E = rng.standard_normal((n, d))
        if code is None:
            Z = E @ comp.factor.T
        else:
            margin = comp.margins[-1]
            pos = int(np.flatnonzero(margin.values == code)[0])
            lo, hi = margin.edges[pos], margin.edges[pos + 1]
            z_t = _normal_scores(lo + rng.random(n) * (hi - lo))
            Z = np.outer(z_t, comp.cond_beta) + E @ comp.cond_factor.T
            Z[:, comp.target_dim] = z_t
        columns = list(self.codecs_)
        if len(comp.margins) > len(columns):
            columns.append(self.target_codec_)
        return [_invert_margin(col, m, Z) for col, m in zip(columns, comp.margins)]

