"""The column codec the generators share: how each column kind becomes arrays and back, and input checks.

Tables follow one convention throughout. Features are a DataFrame ``X`` whose columns each have a kind given by
``kinds``: ``"numeric"`` and ``"boolean"`` are float64 with NaN for missing, ``"categorical"`` are strings with NaN,
``"datetime"`` are datetime64 with NaT. The target is a Series ``y``: class labels for classification, floats for
regression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

KINDS = ("numeric", "categorical", "boolean", "datetime")
TaskName = Literal["classification", "regression"]

# Datetime units tried, coarsest first, when deciding what granularity synthetic values keep.
_DATETIME_UNITS_NS = (86_400 * 10**9, 10**9, 10**6, 10**3)


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

