"""The synthetic report: fidelity, utility and privacy of synthetic rows against real ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import r2_score

from synthloop.synth._codec import TaskName, _check_kinds, _check_task, _continuous_values, _datetime_ns
from synthloop.synth.privacy import DCR_FLOOR, _nearest, _privacy_matrix, _row_hashes, real_dcr

_MAX_PAIRS = 500
_MAX_PRIVACY_ROWS = 5000


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
        if len(yt) == 0:  # the guard may leave no synthetic row on a table with no room for new ones
            out[f"utility_{key}"] = float("nan")
            continue
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


def _subsample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, size=cap, replace=False))


def _privacy(
    real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame | None, kinds: Mapping[Any, str], seed: int
) -> dict[str, float]:
    frames = [real, synth] + ([holdout] if holdout is not None else [])
    hashes = _row_hashes(frames, kinds)
    out = {"privacy_exact_copies": float(np.isin(hashes[1], hashes[0]).sum())}
    rng = np.random.default_rng(seed)
    # Every real row is a candidate closest record; the rows whose distance is measured are sampled.
    frames = [frames[0]] + [f.iloc[_subsample(len(f), _MAX_PRIVACY_ROWS, rng)] for f in frames[1:]]
    matrices = _privacy_matrix(frames, kinds)
    synth_dcr = _nearest(matrices[0], matrices[1])[0][:, 0] if len(matrices[1]) else np.zeros(0)
    synth_median = float(np.median(synth_dcr)) if synth_dcr.size else float("nan")
    out["privacy_dcr_synth_median"] = synth_median
    out["privacy_dcr_synth_p05"] = float(np.quantile(synth_dcr, 0.05)) if synth_dcr.size else float("nan")
    reference = real_dcr(matrices[0])
    if reference.size:
        floor = DCR_FLOOR * float(np.median(reference))
        out["privacy_dcr_real_median"] = float(np.median(reference))
        out["privacy_dcr_floor"] = floor
        out["privacy_below_floor"] = float(np.mean(synth_dcr < floor)) if synth_dcr.size and floor > 0 else 0.0
    if holdout is not None:
        holdout_median = float(np.median(_nearest(matrices[0], matrices[2])[0][:, 0]))
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
    ``privacy_dcr_synth_median`` (and ``privacy_dcr_synth_p05``, its 5th percentile) is the distance from a
    synthetic row to its closest real row, on standardized numeric columns and one-hot categoricals (up to 5000
    synthetic rows, against every real row). ``privacy_dcr_real_median`` is the same from a real row to its
    closest other real row; the floor ``privacy_dcr_floor`` is ``DCR_FLOOR`` (0.2) times it, the distance the
    generators keep their rows beyond, and ``privacy_below_floor`` the share of synthetic rows closer than it.
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
