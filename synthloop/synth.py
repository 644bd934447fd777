"""Synthetic tabular data: two generators, a simulator and a quality report.

Tables follow one convention throughout. Features are a DataFrame ``X`` whose columns each have
a kind given by ``kinds``: ``"numeric"`` and ``"boolean"`` are float64 with NaN for missing,
``"categorical"`` are strings with NaN, ``"datetime"`` are datetime64 with NaT. The target is a
Series ``y``: class labels for classification, floats for regression.

- :class:`GaussianCopula` fits empirical marginals joined by a shrunk Gaussian copula, one per
  class for classification, so synthetic labels are exact by construction.
- :class:`SmoteSampler` interpolates between a row and one of its nearest same-class neighbours.
- :func:`simulate` draws a labelled table from scikit-learn's generators.
- :func:`quality_report` scores synthetic rows for fidelity, utility and privacy.

This module is pure domain code: no orchestration and no tracking.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import r2_score
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "GENERATORS",
    "GaussianCopula",
    "SmoteSampler",
    "make_generator",
    "quality_report",
    "simulate",
]

KINDS = ("numeric", "categorical", "boolean", "datetime")
GENERATORS = ("copula", "smote")
TaskName = Literal["classification", "regression"]

# Uniforms are kept this far inside (0, 1) so that normal scores stay finite.
_EPS = 1e-9
# Datetime units tried, coarsest first, when deciding what granularity synthetic values keep.
_DATETIME_UNITS_NS = (86_400 * 10**9, 10**9, 10**6, 10**3)
_MAX_PAIRS = 500
_MAX_PRIVACY_ROWS = 5000


# --------------------------------------------------------------------------------------------
# Column codec shared by the generators
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    """How one column is turned into arrays and back.

    Continuous columns (numeric, datetime, regression target) become float64 with NaN.
    Discrete ones (categorical, boolean, class labels) become integer codes into
    ``categories``; code ``len(categories)`` stands for a missing value.
    """

    name: Any
    kind: str
    dtype: Any
    categories: pd.Index | None = None
    step: float | None = None
    discrete: bool = False
    tz: Any = None

    @property
    def continuous(self) -> bool:
        return self.kind in ("numeric", "datetime")

    @property
    def n_codes(self) -> int:
        return len(self.categories) + 1


def _datetime_ns(s: pd.Series) -> tuple[np.ndarray, np.ndarray, Any]:
    """Integer nanoseconds, a missing mask and the time zone of a datetime-like Series."""
    if not (pd.api.types.is_datetime64_any_dtype(s.dtype)):
        s = pd.to_datetime(s)
    tz = getattr(s.dtype, "tz", None)
    if tz is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    arr = s.to_numpy(dtype="datetime64[ns]")
    return arr.view("int64"), np.isnat(arr), tz


def _continuous_values(s: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        ns, missing, _ = _datetime_ns(s)
        out = ns.astype(np.float64)
        out[missing] = np.nan
        return out
    return pd.to_numeric(s).to_numpy(dtype=np.float64, na_value=np.nan)


def _describe_column(name: Any, s: pd.Series, kind: str) -> _Column:
    """Learn how to encode and decode one column from its real values."""
    if kind in ("categorical", "boolean"):
        try:
            _, uniques = pd.factorize(s, sort=True)
        except TypeError:  # values of mixed types that cannot be ordered
            _, uniques = pd.factorize(s)
        return _Column(name, kind, s.dtype, categories=pd.Index(uniques))
    if kind == "datetime":
        ns, missing, tz = _datetime_ns(s)
        obs = ns[~missing]
        step = 1.0
        for unit in _DATETIME_UNITS_NS:
            if obs.size and np.all(obs % unit == 0):
                step = float(unit)
                break
        return _Column(name, kind, s.dtype, step=step, discrete=_is_discrete(obs), tz=tz)
    values = _continuous_values(s, kind)
    values = values[~np.isnan(values)]
    integer = values.size > 0 and bool(np.all(values == np.round(values)))
    return _Column(name, kind, s.dtype, step=1.0 if integer else None, discrete=_is_discrete(values))


def _is_discrete(values: np.ndarray) -> bool:
    """Values repeat on average at least twice: sample observed values rather than interpolate."""
    n = values.size
    if n == 0:
        return False
    return pd.unique(values).size <= max(1, n // 2)


def _encode(col: _Column, s: pd.Series) -> np.ndarray:
    if col.continuous:
        return _continuous_values(s, col.kind)
    codes = col.categories.get_indexer(s)
    missing = s.isna().to_numpy()
    if np.any((codes < 0) & ~missing):
        raise ValueError(f"Column {col.name!r} has values not seen when fitting.")
    codes[missing] = len(col.categories)
    return codes


def _decode(col: _Column, values: np.ndarray) -> pd.Series:
    """Turn generated floats or codes back into a Series of the column's original dtype."""
    if not col.continuous:
        codes = np.where(values >= len(col.categories), -1, values)
        out = pd.Series(pd.api.extensions.take(col.categories.array, codes, allow_fill=True), name=col.name)
        return _restore_dtype(out, col.dtype)
    if col.kind == "datetime":
        missing = np.isnan(values)
        ns = np.where(missing, 0.0, values)
        ns = np.rint(ns / col.step) * col.step
        ints = ns.astype(np.int64)
        ints[missing] = np.iinfo(np.int64).min  # NaT
        out = pd.Series(ints.view("datetime64[ns]"), name=col.name)
        if col.tz is not None:
            out = out.dt.tz_localize("UTC").dt.tz_convert(col.tz)
        return _restore_dtype(out, col.dtype)
    return _restore_dtype(pd.Series(values, name=col.name), col.dtype)


def _restore_dtype(s: pd.Series, dtype: Any) -> pd.Series:
    if s.dtype == dtype:
        return s
    if s.isna().any() and isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return s  # a NumPy int/bool column cannot hold the missing values
    try:
        return s.astype(dtype)
    except (TypeError, ValueError):
        return s


def _check_kinds(X: pd.DataFrame, kinds: Mapping[Any, str]) -> list[Any]:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}.")
    bad = {c: k for c, k in kinds.items() if k not in KINDS}
    if bad:
        raise ValueError(f"Unknown column kinds {bad}; known kinds are {', '.join(KINDS)}.")
    missing = [c for c in kinds if c not in X.columns]
    if missing:
        raise ValueError(f"Columns {missing} are in kinds but not in X.")
    if not kinds:
        raise ValueError("kinds names no columns.")
    return list(kinds)


def _check_task(task: str) -> None:
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}.")


def _target_series(y: Any, n_rows: int) -> pd.Series:
    y = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y))
    if len(y) != n_rows:
        raise ValueError(f"y has {len(y)} rows but X has {n_rows}.")
    if y.isna().any():
        raise ValueError("y has missing values; drop unlabelled rows before fitting.")
    return y.reset_index(drop=True)


def _allocate(n: int, weights: np.ndarray) -> np.ndarray:
    """Split ``n`` into integer counts proportional to ``weights`` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    if n <= 0 or w.sum() <= 0:
        return np.zeros(w.size, dtype=np.int64)
    raw = n * w / w.sum()
    counts = np.floor(raw).astype(np.int64)
    short = n - int(counts.sum())
    counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    return counts


def _class_shares(classes: pd.Index, class_weights: Mapping[Any, float] | str) -> np.ndarray:
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(f"class_weights must be a mapping or 'balanced', got {class_weights!r}.")
        return np.ones(len(classes))
    unknown = [c for c in class_weights if c not in classes]
    if unknown:
        raise ValueError(f"class_weights names unknown classes {unknown}; classes are {list(classes)}.")
    shares = np.array([float(class_weights.get(c, 0.0)) for c in classes])
    if np.any(shares < 0) or shares.sum() <= 0:
        raise ValueError("class_weights must be non-negative and not all zero.")
    return shares


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.RandomState):
        random_state = random_state.randint(np.iinfo(np.int32).max)
    return np.random.default_rng(random_state)


# --------------------------------------------------------------------------------------------
# Gaussian copula
# --------------------------------------------------------------------------------------------


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
    """

    def __init__(
        self,
        kinds: Mapping[Any, str],
        *,
        class_conditional: bool = True,
        min_class_rows: int = 10,
        shrinkage: float | None = None,
        random_state: Any = None,
    ):
        self.kinds = kinds
        self.class_conditional = class_conditional
        self.min_class_rows = min_class_rows
        self.shrinkage = shrinkage
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
            without one. Rows come in random order with a fresh RangeIndex.
        """
        check_is_fitted(self, "components_")
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}.")
        rng = self.rng_ if random_state is None else _rng(random_state)
        if self.classes_ is None:
            if class_weights is not None:
                raise ValueError("class_weights needs a classification target at fit time.")
            parts = [self._draw(self.components_[None], n, rng, None)]
        else:
            if class_weights is None:
                shares = self.class_counts_
            else:
                shares = _class_shares(self.classes_, class_weights)
            counts = _allocate(n, shares)
            parts = []
            for code, (label, k) in enumerate(zip(self.classes_, counts)):
                if label in self.components_:
                    block = self._draw(self.components_[label], int(k), rng, None)
                    block.append(np.full(int(k), code))
                else:
                    block = self._draw(self.components_[None], int(k), rng, code)
                parts.append(block)
        order = rng.permutation(n)
        values = [np.concatenate(v)[order] for v in zip(*parts)]
        X = pd.DataFrame({col.name: _decode(col, v) for col, v in zip(self.codecs_, values)})
        X.columns = pd.Index(self.columns_)
        y = None
        if self.target_codec_ is not None:
            y = _decode(self.target_codec_, values[len(self.codecs_)])
        return X, y

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


# --------------------------------------------------------------------------------------------
# SMOTE-like interpolation
# --------------------------------------------------------------------------------------------


def _equalising_shares(counts: np.ndarray, n: int) -> np.ndarray:
    """New rows per class that bring class counts as close to equal as ``n`` rows allow."""
    c = np.asarray(counts, dtype=np.float64)
    ordered = np.sort(c)
    total = 0.0
    level = ordered[-1]
    for k in range(1, c.size + 1):
        total += ordered[k - 1]
        level = (n + total) / k
        if k == c.size or level <= ordered[k]:
            break
    return np.maximum(level - c, 0.0)


class SmoteSampler(BaseEstimator):
    """SMOTE-like rows: interpolate between a real row and one of its nearest neighbours.

    Neighbours are searched within the row's class (classification) or over all rows
    (regression) on standardized numeric and datetime columns plus one-hot categorical and
    boolean columns, scaled so that one mismatch counts like one standard deviation. Numeric and
    datetime values are interpolated with one random weight per row; categorical and boolean values
    are taken from either parent, the neighbour with probability equal to that weight. Where one
    parent is missing the value, the chosen parent's value (possibly missing) is kept. For
    regression the target is interpolated with the same weight.

    Args:
        kinds: Feature column name -> "numeric", "categorical", "boolean" or "datetime".
        k_neighbors: Neighbours considered per row.
        random_state: Seed or ``np.random.Generator`` for sampling.

    Attributes:
        columns_: Feature columns in output order.
        task_: The task given to ``fit``.
        classes_: Sorted class labels (classification), else None.
        class_counts_: Rows per class in ``classes_`` order, else None.
        neighbors_: Group key (class label, or None for regression) -> (row indices, neighbour
            indices of shape (rows, k)) into the training rows.
        codecs_: How each feature column is encoded and decoded.
        target_codec_: The same for the target.
        encoded_: Training rows, one encoded array per feature column (new rows are made from them).
        encoded_target_: Training target, encoded.
        rng_: Generator that ``sample`` continues when given no seed.
        n_features_in_: Number of feature columns.
    """

    def __init__(self, kinds: Mapping[Any, str], *, k_neighbors: int = 5, random_state: Any = None):
        self.kinds = kinds
        self.k_neighbors = k_neighbors
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any, task: TaskName = "classification") -> SmoteSampler:
        """Store the rows and find each row's nearest neighbours.

        Args:
            X: Features; columns not in ``kinds`` are ignored.
            y: Target aligned with ``X`` by position.
            task: "classification" or "regression".

        Returns:
            self.
        """
        _check_task(task)
        if int(self.k_neighbors) < 1:
            raise ValueError(f"k_neighbors must be >= 1, got {self.k_neighbors!r}.")
        names = _check_kinds(X, self.kinds)
        if len(X) < 1:
            raise ValueError("X has no rows.")
        y = _target_series(y, len(X))
        columns = [_describe_column(c, X[c], self.kinds[c]) for c in names]
        arrays = [_encode(col, X[col.name]) for col in columns]
        kind = "categorical" if task == "classification" else "numeric"
        target = _describe_column(y.name, y, kind)
        y_enc = _encode(target, y)

        embedding = self._embedding(columns, arrays, len(X))
        if task == "classification":
            groups = {label: np.flatnonzero(y_enc == code) for code, label in enumerate(target.categories)}
            self.classes_ = target.categories
            self.class_counts_ = np.array([g.size for g in groups.values()])
        else:
            groups = {None: np.arange(len(X))}
            self.classes_ = self.class_counts_ = None
        self.neighbors_ = {}
        for key, rows in groups.items():
            k = min(int(self.k_neighbors), rows.size - 1)
            if k < 1:
                nbrs = rows[:, None].copy()  # a lone row can only pair with itself
            else:
                nn = NearestNeighbors(n_neighbors=k).fit(embedding[rows])
                nbrs = rows[nn.kneighbors(return_distance=False)]
            self.neighbors_[key] = (rows, nbrs)
        self.columns_ = names
        self.n_features_in_ = len(names)
        self.task_ = task
        self.codecs_ = columns
        self.encoded_ = arrays
        self.target_codec_ = target
        self.encoded_target_ = y_enc
        self.rng_ = _rng(self.random_state)
        return self

    @staticmethod
    def _embedding(columns: Sequence[_Column], arrays: Sequence[np.ndarray], n: int) -> np.ndarray:
        parts = []
        for col, arr in zip(columns, arrays):
            if col.continuous:
                obs = ~np.isnan(arr)
                if not obs.any():
                    continue
                std = arr[obs].std()
                z = (arr - arr[obs].mean()) / (std if std > 0 else 1.0)
                parts.append(np.where(obs, z, 0.0)[:, None])
            else:
                onehot = np.zeros((n, col.n_codes))
                onehot[np.arange(n), arr] = np.sqrt(0.5)
                parts.append(onehot)
        return np.hstack(parts) if parts else np.zeros((n, 1))

    def sample(
        self,
        n: int,
        *,
        class_weights: Mapping[Any, float] | str | None = None,
        random_state: Any = None,
    ) -> tuple[pd.DataFrame, pd.Series]:
        """Draw interpolated rows.

        Args:
            n: Number of rows.
            class_weights: Classification only: class label -> relative share of the generated
                rows; "balanced" for equal shares; "equalize" to put new rows where they bring real +
                synthetic class counts closest to equal (rebalancing). None (default) keeps the
                observed class shares.
            random_state: Seed for this draw; None continues the generator seeded at fit.

        Returns:
            Features (columns of ``kinds``, original dtypes) and the target, rows in random order.
        """
        check_is_fitted(self, "neighbors_")
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}.")
        rng = self.rng_ if random_state is None else _rng(random_state)
        if self.classes_ is None:
            if class_weights is not None:
                raise ValueError("class_weights applies to classification only.")
            counts = {None: n}
        else:
            if class_weights is None:
                shares = self.class_counts_.astype(np.float64)
            elif class_weights == "equalize":
                shares = _equalising_shares(self.class_counts_, n)
            else:
                shares = _class_shares(self.classes_, class_weights)
            counts = dict(zip(self.classes_, _allocate(n, shares)))
        base, other = [], []
        for key, k in counts.items():
            rows, nbrs = self.neighbors_[key]
            pick = rng.integers(rows.size, size=int(k))
            base.append(rows[pick])
            other.append(nbrs[pick, rng.integers(nbrs.shape[1], size=int(k))])
        a = np.concatenate(base)
        b = np.concatenate(other)
        order = rng.permutation(n)
        a, b = a[order], b[order]
        lam = rng.random(n)
        out = {}
        for col, arr in zip(self.codecs_, self.encoded_):
            out[col.name] = _decode(col, self._mix(col, arr[a], arr[b], lam, rng))
        X = pd.DataFrame(out)
        X.columns = pd.Index(self.columns_)
        target = self.encoded_target_
        y = _decode(self.target_codec_, self._mix(self.target_codec_, target[a], target[b], lam, rng))
        return X, y

    @staticmethod
    def _mix(
        col: _Column, va: np.ndarray, vb: np.ndarray, lam: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        take_b = rng.random(va.size) < lam
        chosen = np.where(take_b, vb, va)
        if not col.continuous:
            return chosen
        mixed = va + lam * (vb - va)
        mixed = np.where(np.isnan(va) | np.isnan(vb), chosen, mixed)
        if col.step is not None:
            mixed = np.rint(mixed / col.step) * col.step
        return mixed


# --------------------------------------------------------------------------------------------
# Simulation and factory
# --------------------------------------------------------------------------------------------


def simulate(
    task: TaskName,
    n_rows: int,
    n_features: int = 20,
    *,
    n_informative: int | None = None,
    n_classes: int = 2,
    class_balance: float | Sequence[float] | None = None,
    class_sep: float = 1.0,
    label_noise: float = 0.0,
    noise: float = 0.0,
    random_state: int | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Draw a labelled table from scikit-learn's ``make_classification`` / ``make_regression``.

    Args:
        task: "classification" or "regression".
        n_rows: Number of rows.
        n_features: Number of feature columns, named ``x0``, ``x1``, ...
        n_informative: Features that carry signal; default half the features (at least enough
            for ``n_classes``) for classification, ``min(n_features, 10)`` for regression.
        n_classes: Number of classes (classification).
        class_balance: Class proportions (classification): a sequence with one share per class
            (or all but the last), or for two classes a float, the share of class 1. None is even.
        class_sep: Spread between classes; larger is easier (classification).
        label_noise: Fraction of rows whose label is replaced by a different class drawn at
            random (classification). Zero gives exact labels. Applied after the features are drawn,
            so the same seed gives the same features at any noise level.
        noise: Standard deviation of Gaussian noise added to the target (regression).
        random_state: Seed.

    Returns:
        Features as float64 columns ``x0..`` and the target Series ``"target"`` (int labels for
        classification, floats for regression).
    """
    _check_task(task)
    n_rows, n_features = int(n_rows), int(n_features)
    if n_rows < 1 or n_features < 1:
        raise ValueError(f"n_rows and n_features must be >= 1, got {n_rows} and {n_features}.")
    seeds = np.random.SeedSequence(random_state).generate_state(2)
    columns = [f"x{i}" for i in range(n_features)]
    if task == "regression":
        if class_balance is not None or label_noise:
            raise ValueError("class_balance and label_noise apply to classification only.")
        informative = min(n_features, 10) if n_informative is None else int(n_informative)
        X, y = make_regression(
            n_samples=n_rows, n_features=n_features, n_informative=informative, noise=noise,
            random_state=int(seeds[0]),
        )
        return pd.DataFrame(X, columns=columns), pd.Series(y, name="target")

    if noise:
        raise ValueError("noise applies to regression only; use label_noise for classification.")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got {label_noise!r}.")
    n_classes = int(n_classes)
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}.")
    needed = int(np.ceil(np.log2(2 * n_classes)))  # make_classification: 2 clusters per class
    if n_informative is None:
        informative = min(n_features, max(2, needed, n_features // 2))
    else:
        informative = int(n_informative)
    if informative > n_features or 2 ** informative < 2 * n_classes:
        raise ValueError(
            f"{n_classes} classes need n_informative >= {needed} and <= n_features ({n_features}); "
            f"got {informative}."
        )
    weights = None
    if class_balance is not None:
        if np.isscalar(class_balance):
            if n_classes != 2:
                raise ValueError("A float class_balance needs n_classes=2; give one share per class.")
            weights = [1.0 - float(class_balance), float(class_balance)]
        else:
            weights = [float(w) for w in class_balance]
    X, y = make_classification(
        n_samples=n_rows, n_features=n_features, n_informative=informative,
        n_redundant=min(2, n_features - informative), n_classes=n_classes, weights=weights,
        flip_y=0.0, class_sep=class_sep, random_state=int(seeds[0]),
    )
    if label_noise > 0:
        rng = np.random.default_rng(seeds[1])
        flip = rng.random(n_rows) < label_noise
        y = y.copy()
        y[flip] = (y[flip] + rng.integers(1, n_classes, size=int(flip.sum()))) % n_classes
    return pd.DataFrame(X, columns=columns), pd.Series(y, name="target")


def make_generator(
    name: str, kinds: Mapping[Any, str], random_state: Any = None
) -> GaussianCopula | SmoteSampler:
    """Build an unfitted generator by name.

    Args:
        name: "copula" or "smote".
        kinds: Feature column name -> kind.
        random_state: Seed.

    Returns:
        The generator, with its default settings.

    Raises:
        ValueError: If the name is not a known generator.
    """
    if name == "copula":
        return GaussianCopula(kinds, random_state=random_state)
    if name == "smote":
        return SmoteSampler(kinds, random_state=random_state)
    raise ValueError(f"Unknown generator {name!r}; known generators are {', '.join(GENERATORS)}.")


# --------------------------------------------------------------------------------------------
# Quality report
# --------------------------------------------------------------------------------------------


def _ks_complement(real: np.ndarray, synth: np.ndarray) -> float:
    real, synth = np.sort(real[~np.isnan(real)]), np.sort(synth[~np.isnan(synth)])
    if real.size == 0 or synth.size == 0:
        return 1.0 if real.size == synth.size else 0.0
    grid = np.concatenate([real, synth])
    cdf_r = np.searchsorted(real, grid, side="right") / real.size
    cdf_s = np.searchsorted(synth, grid, side="right") / synth.size
    return 1.0 - float(np.max(np.abs(cdf_r - cdf_s)))


def _tv_complement(real: pd.Series, synth: pd.Series) -> float:
    # Missing values count as a category of their own.
    p = real.astype(object).value_counts(normalize=True, dropna=False)
    q = synth.astype(object).value_counts(normalize=True, dropna=False)
    p, q = p.align(q, fill_value=0.0)
    return 1.0 - 0.5 * float(np.abs(p.to_numpy() - q.to_numpy()).sum())


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 2:
        return np.nan
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else np.nan


def _fidelity(
    real: pd.DataFrame, synth: pd.DataFrame, kinds: Mapping[Any, str], seed: int
) -> dict[str, float]:
    shapes = []
    continuous = []
    for c, kind in kinds.items():
        if kind in ("numeric", "datetime"):
            r, s = _continuous_values(real[c], kind), _continuous_values(synth[c], kind)
            shapes.append(_ks_complement(r, s))
            continuous.append((r, s))
        else:
            shapes.append(_tv_complement(real[c], synth[c]))
    out = {"fidelity_column_shapes": float(np.mean(shapes))}
    pairs = list(combinations(range(len(continuous)), 2))
    if len(pairs) > _MAX_PAIRS:
        chosen = np.random.default_rng(seed).choice(len(pairs), size=_MAX_PAIRS, replace=False)
        pairs = [pairs[i] for i in np.sort(chosen)]
    scores = []
    for i, j in pairs:
        r_real = _pearson(continuous[i][0], continuous[j][0])
        r_synth = _pearson(continuous[i][1], continuous[j][1])
        if not (np.isnan(r_real) or np.isnan(r_synth)):
            scores.append(1.0 - abs(r_real - r_synth) / 2.0)
    if scores:
        out["fidelity_column_pairs"] = float(np.mean(scores))
        out["fidelity_overall"] = (out["fidelity_column_shapes"] + out["fidelity_column_pairs"]) / 2.0
    else:
        out["fidelity_overall"] = out["fidelity_column_shapes"]
    return out


def _model_matrix(frames: Sequence[pd.DataFrame], kinds: Mapping[Any, str]) -> list[np.ndarray]:
    """Float features for a model: categoricals ordinal-encoded, datetimes as int64 seconds."""
    columns: list[list[np.ndarray]] = [[] for _ in frames]
    for c, kind in kinds.items():
        if kind == "categorical":
            categories = pd.Index(pd.concat([f[c] for f in frames]).dropna().astype(object).unique())
            categories = categories.sort_values() if categories.inferred_type == "string" else categories
            for out, f in zip(columns, frames):
                codes = categories.get_indexer(f[c].astype(object)).astype(np.float64)
                codes[codes < 0] = np.nan
                out.append(codes)
        elif kind == "datetime":
            for out, f in zip(columns, frames):
                ns, missing, _ = _datetime_ns(f[c])
                secs = (ns // 10**9).astype(np.float64)
                secs[missing] = np.nan
                out.append(secs)
        else:
            for out, f in zip(columns, frames):
                out.append(_continuous_values(f[c], "numeric"))
    return [np.column_stack(cols) for cols in columns]


def _default_model(task: str, random_state: int) -> Any:
    if task == "classification":
        return HistGradientBoostingClassifier(max_iter=100, random_state=random_state)
    return HistGradientBoostingRegressor(max_iter=100, random_state=random_state)


def _utility(
    real: tuple[np.ndarray, np.ndarray],
    synth: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    task: str,
    factory: Callable[[], Any],
) -> dict[str, float]:
    augmented = (np.vstack([real[0], synth[0]]), np.concatenate([real[1], synth[1]]))
    out = {}
    for key, (Xt, yt) in (("real", real), ("synthetic", synth), ("augmented", augmented)):
        usable = ~np.all(np.isnan(Xt), axis=0)  # an all-missing column has nothing to learn from
        if task == "classification" and (pd.unique(yt).size < 2 or not usable.any()):
            pred = np.full(len(val[1]), pd.Series(yt).mode().iloc[0], dtype=object)
        elif not usable.any():
            pred = np.full(len(val[1]), float(np.mean(yt)))
        else:
            pred = factory().fit(Xt[:, usable], yt).predict(val[0][:, usable])
        if task == "classification":
            hits = np.asarray(val[1], dtype=object) == np.asarray(pred, dtype=object)
            out[f"utility_{key}"] = float(np.mean(hits))
        else:
            out[f"utility_{key}"] = float(r2_score(val[1], pred))
    return out


def _privacy_matrix(frames: Sequence[pd.DataFrame], kinds: Mapping[Any, str]) -> list[np.ndarray]:
    """Numeric and datetime columns standardized on the first frame; categoricals one-hot."""
    ref = frames[0]
    columns: list[list[np.ndarray]] = [[] for _ in frames]
    for c, kind in kinds.items():
        if kind in ("numeric", "datetime"):
            values = [_continuous_values(f[c], kind) for f in frames]
            obs = values[0][~np.isnan(values[0])]
            mean = obs.mean() if obs.size else 0.0
            std = obs.std() if obs.size and obs.std() > 0 else 1.0
            flagged = bool(np.isnan(values[0]).any())
            for out, v in zip(columns, values):
                z = (v - mean) / std
                out.append(np.where(np.isnan(z), 0.0, z))
                if flagged:
                    out.append(np.isnan(v).astype(np.float64))
        else:
            categories = pd.Index(ref[c].astype(object).dropna().unique())
            for out, f in zip(columns, frames):
                codes = categories.get_indexer(f[c].astype(object))
                missing = f[c].isna().to_numpy()
                onehot = np.zeros((len(f), len(categories) + 1))
                known = codes >= 0
                onehot[np.flatnonzero(known), codes[known]] = 1.0
                onehot[missing, -1] = 1.0
                out.append(onehot)
    return [np.column_stack(cols) for cols in columns]


def _row_hashes(frames: Sequence[pd.DataFrame], kinds: Mapping[Any, str]) -> list[np.ndarray]:
    """One hash per row over canonical per-column codes, comparable across frames."""
    sizes = [len(f) for f in frames]
    codes = {}
    for c, kind in kinds.items():
        if kind in ("numeric", "boolean", "datetime"):
            joined = np.concatenate([_continuous_values(f[c], "datetime" if kind == "datetime" else "numeric")
                                     for f in frames])
        else:
            joined = pd.concat([f[c].astype(object) for f in frames], ignore_index=True)
        codes[f"c{len(codes)}"] = pd.factorize(joined, use_na_sentinel=True)[0]
    hashes = pd.util.hash_pandas_object(pd.DataFrame(codes), index=False).to_numpy()
    return np.split(hashes, np.cumsum(sizes)[:-1])


def _subsample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, size=cap, replace=False))


def _privacy(
    real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame | None, kinds: Mapping[Any, str], seed: int
) -> dict[str, float]:
    frames = [real, synth] + ([holdout] if holdout is not None else [])
    hashes = _row_hashes(frames, kinds)
    out = {"privacy_exact_copies": float(np.isin(hashes[1], hashes[0]).sum())}
    rng = np.random.default_rng(seed)
    frames = [f.iloc[_subsample(len(f), _MAX_PRIVACY_ROWS, rng)] for f in frames]
    matrices = _privacy_matrix(frames, kinds)
    nn = NearestNeighbors(n_neighbors=1).fit(matrices[0])
    synth_median = float(np.median(nn.kneighbors(matrices[1])[0]))
    out["privacy_dcr_synth_median"] = synth_median
    if holdout is not None:
        holdout_median = float(np.median(nn.kneighbors(matrices[2])[0]))
        out["privacy_dcr_holdout_median"] = holdout_median
        if holdout_median > 0:
            out["privacy_dcr_ratio"] = synth_median / holdout_median
        else:
            out["privacy_dcr_ratio"] = 1.0 if synth_median == 0 else float("inf")
    return out


def quality_report(
    real_X: pd.DataFrame,
    real_y: pd.Series | None,
    synth_X: pd.DataFrame,
    synth_y: pd.Series | None,
    kinds: Mapping[Any, str],
    task: TaskName,
    *,
    holdout_X: pd.DataFrame | None = None,
    holdout_y: pd.Series | None = None,
    val_X: pd.DataFrame | None = None,
    val_y: pd.Series | None = None,
    model_factory: Callable[[], Any] | None = None,
    random_state: int = 0,
) -> dict[str, float]:
    """Score synthetic rows against real ones for fidelity, utility and privacy.

    Fidelity follows SDMetrics' quality report on the features plus the target (when both
    targets are given): ``KSComplement`` for numeric and datetime columns (missing values
    dropped), ``TVComplement`` for categorical and boolean columns and class labels (missing
    counted as a category), averaged into ``fidelity_column_shapes``;
    ``CorrelationSimilarity`` (1 - |r_real - r_synth| / 2, Pearson, pairwise-complete rows) over
    pairs of numeric and datetime columns (at most 500 pairs, chosen with ``random_state``),
    averaged into ``fidelity_column_pairs`` (absent with fewer than two such columns or no pair
    with a defined correlation); ``fidelity_overall`` is the mean of those present.

    Utility (when ``val_X`` and ``val_y`` are given): one model trained on real rows, one on
    synthetic rows (train-synthetic-test-real) and one on both, each scored on the validation
    rows (accuracy or R^2): ``utility_real``, ``utility_synthetic``, ``utility_augmented``.

    Privacy: ``privacy_exact_copies`` counts synthetic rows equal to some real row (all rows);
    ``privacy_dcr_synth_median`` is the median distance from a synthetic row to its closest real
    row, on standardized numeric columns and one-hot categoricals (up to 5000 rows each side).
    With a holdout of real rows not used to fit the generator, ``privacy_dcr_holdout_median``
    gives the same for holdout rows and ``privacy_dcr_ratio`` divides the two; a ratio well below
    1 means synthetic rows sit closer to the training rows than fresh real rows do.
    ``holdout_y`` is accepted for symmetry and not used.

    Args:
        real_X: Real rows the generator was fitted on.
        real_y: Their target (needed for utility).
        synth_X: Synthetic rows.
        synth_y: Their target (needed for utility).
        kinds: Feature column name -> kind.
        task: "classification" or "regression".
        holdout_X: Real rows not seen by the generator, for the DCR baseline.
        holdout_y: Their target.
        val_X: Validation rows for utility.
        val_y: Their target.
        model_factory: Zero-argument callable returning an unfitted estimator; default a
            HistGradientBoosting classifier or regressor with ``max_iter=100``.
        random_state: Seed for subsampling, pair choice and the default model.

    Returns:
        Flat metric name -> float.
    """
    _check_task(task)
    _check_kinds(real_X, kinds)
    _check_kinds(synth_X, kinds)
    if holdout_X is not None:
        _check_kinds(holdout_X, kinds)
    if (val_X is None) != (val_y is None):
        raise ValueError("Give both val_X and val_y, or neither.")

    real_f, synth_f = real_X[list(kinds)], synth_X[list(kinds)]
    table_kinds = dict(kinds)
    if real_y is not None and synth_y is not None:
        key = "__target__"
        while key in table_kinds:
            key = "_" + key
        table_kinds[key] = "categorical" if task == "classification" else "numeric"
        real_f = real_f.assign(**{key: np.asarray(real_y)})
        synth_f = synth_f.assign(**{key: np.asarray(synth_y)})
    report = _fidelity(real_f, synth_f, table_kinds, random_state)

    if val_X is not None:
        if real_y is None or synth_y is None:
            raise ValueError("Utility needs real_y and synth_y.")
        _check_kinds(val_X, kinds)
        Xr, Xs, Xv = _model_matrix([real_X, synth_X, val_X], kinds)
        factory = model_factory or (lambda: _default_model(task, random_state))
        report.update(_utility(
            (Xr, np.asarray(real_y)), (Xs, np.asarray(synth_y)), (Xv, np.asarray(val_y)), task, factory
        ))

    report.update(_privacy(real_X, synth_X, holdout_X, kinds, random_state))
    return report
