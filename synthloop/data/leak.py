"""Target leaks: feature columns that alone predict the target on train (:func:`find_leaks`).

A column filled only for one class (a salary known only for people who were hired), a copy of the target in
other units, or a code written after the outcome gives a model a perfect score on every split and no use in the
world, where the column is not known yet when the prediction is needed. Such a column is found by a one-feature
model: the column's values in at most 64 bins of 25 train rows or more (quantiles of a numeric or date column, the
levels of a categorical one, missing values in a bin of their own), each bin predicting the majority class or the
mean target of its train rows, scored by 5-fold cross-validation on (a sample of) the train rows only. A column
can also tell one class from the rest without reaching that accuracy: a card's monthly expenditure is 0 for every
applicant who was refused a card, and for a few who were not. Such a column is a leak when one class of at least
:data:`ONE_CLASS_MIN_ROWS` rows takes one single value (missing counts as one) on all but
:data:`ONE_CLASS_SHARE`'s remainder of its rows, and that value is rare, at most :data:`ONE_CLASS_ELSEWHERE` of the
other classes' rows (a real cause, such as a sex that every pregnant patient shares, is common outside the class
too), and the class holds most rows at the value. In a numeric column the value may be a narrow band: the card's
spending as a share of income lies between 0.0001 and 0.0025 for every refused applicant, and up to 0.9 for the
others. A regression target that is 0 on :data:`SPIKE_SHARE` of the rows or more (the hours of people not at work)
is two classes for these rules, 0 and not 0 (the hourly wage, 0 for them, gives the hours away). Another common
target value is not: it is a group's (a county's uranium level), which the group's other columns share. Validation
and test are not looked at.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthloop.types import Schema

#: Bins per column of the one-feature model, and the train rows each bin should hold at least (fewer bins for a
#: column with few values present, so that a held-out row's bin has been seen in the other folds).
MAX_BINS = 64
ROWS_PER_BIN = 25
#: Train rows the check looks at (a random sample above this).
SAMPLE_ROWS = 5_000
#: Fewer train rows than this: the check is skipped (a perfect one-feature score means little on a handful).
MIN_ROWS = 50
FOLDS = 5
#: A classification leak: cross-validated accuracy at least this, and at least this share of the way from the
#: majority class's rate to 1.
LEAK_ACCURACY = 0.995
LEAK_ACCURACY_GAIN = 0.9
#: A regression leak: cross-validated R² of the binned model, or the absolute rank correlation, at least this.
LEAK_R2 = 0.995
LEAK_RANK_CORRELATION = 0.9995
#: A column set only when the outcome is one class: the class's rows (at least this many) that share one value...
ONE_CLASS_MIN_ROWS = 30
ONE_CLASS_SHARE = 0.995
#: ...and the other classes' rows that take the value, at most this share; and of the rows at the value, the
#: class's share above this.
ONE_CLASS_ELSEWHERE = 0.05
ONE_CLASS_GIVEN = 0.5
#: A numeric column's band: the class's values without the 0.25 % at each end (ONE_CLASS_SHARE), at most this
#: share of the width of the other rows' 1 %-99 % range.
BAND_WIDTH = 0.01
#: A regression target's 0 is a class of its own for those rules on this share of the rows or more.
SPIKE_SHARE = 0.05


def find_leaks(train: pd.DataFrame, schema: Schema, seed: int = 0) -> dict[str, dict]:
    """The feature columns that alone predict the target, with the evidence.

    Args:
        train: Prepared train rows (features and target, dtypes as `prepare_frame` leaves them).
        schema: Column kinds and task.
        seed: Seed of the sample and the folds.
    Returns:
        Column -> {"score": the one-feature CV score, "baseline": the majority class's rate or 0 (R²),
        "metric": 0 for accuracy, 1 for R², 2 for one class at one value, 3 for one class in a narrow band (with
        "low", "high" and "width", the band's over the others' range); "rank_correlation" for numeric regression
        features; for metrics 2 and 3 "class" (the class's code: among the sorted classes, or 1 for a target's 0),
        "where" (the rows it speaks of, "'card' is 'no'", "'hours' is 0"), "class_name" (classification), "value"
        (metric 2; NaN when missing), "share" (of the class's rows at the value) and "elsewhere" (of the other
        rows)}, in table order.
    """
    y_all = train[schema.target]
    keep = y_all.notna().to_numpy()
    n = int(keep.sum())
    if n < MIN_ROWS or not schema.kinds:
        return {}
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(keep)
    if n > SAMPLE_ROWS:
        rows = np.sort(rng.choice(rows, SAMPLE_ROWS, replace=False))
    sample = train.iloc[rows]
    folds = rng.permutation(len(rows)) % FOLDS
    classification = schema.task == "classification"
    if classification:
        y, class_names = pd.factorize(sample[schema.target], sort=True)
        baseline = float(np.bincount(y).max() / len(y))
        if baseline >= 1.0:
            return {}
    else:
        y = pd.to_numeric(sample[schema.target], errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(y).all() or np.var(y) <= 0:
            return {}
        # a target that is often 0 (the hours of people not at work) is two classes for the one-class rules; not
        # another common value, which is a group's (a county's uranium, a district's tax rate) that its columns share
        from scipy.stats import rankdata

        y_ranks = rankdata(y)  # once, for every column's rank correlation
        at_zero = (y == 0.0).astype(np.int64)
        if at_zero.sum() < max(ONE_CLASS_MIN_ROWS, SPIKE_SHARE * len(y)):
            at_zero = None
    found: dict[str, dict] = {}
    for column, kind in schema.kinds.items():
        codes = _bin_codes(sample[column], kind)
        if codes.max() < 1:  # one bin: the column cannot tell rows apart
            continue
        if classification:
            acc = _cv_majority(codes, y, folds)
            if acc >= LEAK_ACCURACY and (acc - baseline) >= LEAK_ACCURACY_GAIN * (1.0 - baseline):
                found[column] = {"score": acc, "baseline": baseline, "metric": 0.0}
            else:
                one = _one_class(sample[column], kind, y)
                if one is not None:
                    name = class_names[int(one["class"])]
                    found[column] = {"score": acc, "baseline": baseline, **one, "class_name": name,
                                     "where": f"'{schema.target}' is '{name}'"}
        else:
            r2 = _cv_mean(codes, y, folds)
            rho = _rank_correlation(sample[column], y, y_ranks) if kind in ("numeric", "datetime") else 0.0
            if r2 >= LEAK_R2 or abs(rho) >= LEAK_RANK_CORRELATION:
                found[column] = {"score": r2, "baseline": 0.0, "metric": 1.0, "rank_correlation": rho}
            elif at_zero is not None:
                one = _one_class(sample[column], kind, at_zero)
                if one is not None:
                    found[column] = {"score": r2, "baseline": 0.0, **one,
                                     "where": f"'{schema.target}' is {'' if one['class'] == 1.0 else 'not '}0"}
    return found


def describe(column: str, evidence: dict, target: str) -> str:
    """One line: why the column counts as a leak."""
    if evidence["metric"] == 2.0:
        value = evidence["value"]
        shown = ("missing" if isinstance(value, float) and np.isnan(value)
                 else f"{value:g}" if isinstance(value, float) else f"'{value}'")
        return (f"column '{column}' is {shown} on {evidence['share']:.1%} of the train rows where "
                f"{evidence['where']} and on {evidence['elsewhere']:.1%} of the others: it gives the class "
                "away, a target leak")
    if evidence["metric"] == 3.0:
        return (f"column '{column}' lies within {evidence['low']:.3g} to {evidence['high']:.3g} on "
                f"{evidence['share']:.1%} of the train rows where {evidence['where']}, a band "
                f"{evidence['width']:.2%} as wide as the others' range, and on {evidence['elsewhere']:.1%} of the "
                "others: it gives the class away, a target leak")
    if evidence["metric"] == 0.0:
        how = (f"one-feature cross-validated accuracy {evidence['score']:.3f} on train, against "
               f"{evidence['baseline']:.3f} for the majority class")
    else:
        how = f"one-feature cross-validated R² {evidence['score']:.3f} on train"
        if abs(evidence.get("rank_correlation", 0.0)) >= LEAK_RANK_CORRELATION:
            how += f", rank correlation {evidence['rank_correlation']:+.4f}"
    return f"column '{column}' alone predicts '{target}' ({how}): a target leak"


def leak_notes(found: dict[str, dict], target: str, mode: str) -> list[str]:
    """One note per leak found, as `data.leak_check` `mode` ("drop" or "warn") treats it."""
    notes = []
    for column, evidence in found.items():
        why = describe(column, evidence, target)
        notes.append(f"{why}; dropped (keep it with --set data.leak_check=warn)" if mode == "drop" else
                     f"warning: {why}; kept, as data.leak_check=warn asks: expect a validation score the world will "
                     "not give")
    return notes


def without_leaks(schema: Schema, found: dict[str, dict]) -> Schema:
    """The schema without the leaks' columns, each in `dropped` with its one line."""
    import dataclasses

    return dataclasses.replace(
        schema, kinds={c: k for c, k in schema.kinds.items() if c not in found},
        dropped={**schema.dropped, **{c: describe(c, e, schema.target) for c, e in found.items()}})


def _one_class(values: pd.Series, kind: str, y: np.ndarray) -> dict | None:
    """The evidence of the one-value rule (metric 2) or, in a numeric column, of the band rule (metric 3), or None."""
    one = _one_class_at_one_value(values, y)
    if one is None and kind == "numeric" and pd.api.types.is_numeric_dtype(values):
        one = _one_class_in_a_band(_as_float(values), y)
    return one


def _one_class_at_one_value(values: pd.Series, y: np.ndarray) -> dict | None:
    """A class whose rows nearly all share one value that the other rows rarely take, or None."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    n_levels = len(uniques)
    codes = np.where(np.asarray(codes) < 0, n_levels, codes).astype(np.int64)  # missing: a level of its own, last
    k = int(y.max()) + 1
    table = np.bincount(codes * k + y, minlength=(n_levels + 1) * k).reshape(n_levels + 1, k)  # level × class
    at_level = table.sum(axis=1)
    for c in range(k):
        n_mine = int(table[:, c].sum())
        n_other = len(y) - n_mine
        if n_mine < ONE_CLASS_MIN_ROWS or n_other < ONE_CLASS_MIN_ROWS:
            continue
        top = int(table[:, c].argmax())
        count = int(table[top, c])
        share = count / n_mine
        elsewhere = (int(at_level[top]) - count) / n_other
        # and the value gives the class away: seen, the class is the likelier (a menu's only XL pizza is sold in
        # other sizes more often than XL, and names no size)
        given = count / int(at_level[top])
        if share >= ONE_CLASS_SHARE and elsewhere <= ONE_CLASS_ELSEWHERE and given > ONE_CLASS_GIVEN:
            value = np.nan if top == n_levels else uniques[top]
            if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
                value = float(value)
            return {"metric": 2.0, "class": float(c), "value": value, "share": float(share),
                    "elsewhere": float(elsewhere)}
    return None


def _one_class_in_a_band(v: np.ndarray, y: np.ndarray) -> dict | None:
    """A class whose rows nearly all lie in a band far narrower than the other rows' range, which the other rows
    rarely enter, or None."""
    missing = np.isnan(v)
    if missing.all():
        return None
    whole = float(np.nanmax(v) - np.nanmin(v))  # the others' range lies within it: a cheap first test
    for c in range(int(y.max()) + 1):
        mine = y == c
        n_mine, n_other = int(mine.sum()), int((~mine).sum())
        if n_mine < ONE_CLASS_MIN_ROWS or n_other < ONE_CLASS_MIN_ROWS or missing[mine].mean() > 1 - ONE_CLASS_SHARE:
            continue
        present = v[mine & ~missing]
        cut = int((1 - ONE_CLASS_SHARE) / 2 * present.size)  # rows left out at each end: none below 200
        ends = np.partition(present, [cut, present.size - 1 - cut])
        low, high = float(ends[cut]), float(ends[present.size - 1 - cut])
        if (high - low) > BAND_WIDTH * whole:
            continue
        others = v[~mine & ~missing]
        if others.size < ONE_CLASS_MIN_ROWS:
            continue
        span = float(np.subtract(*np.quantile(others, [0.99, 0.01])))
        if span <= 0 or (high - low) > BAND_WIDTH * span:
            continue
        inside = (v >= low) & (v <= high)
        share = float(inside[mine].mean())
        elsewhere = float(inside[~mine].mean())
        given = inside[mine].sum() / max(inside.sum(), 1)
        if share >= ONE_CLASS_SHARE and elsewhere <= ONE_CLASS_ELSEWHERE and given > ONE_CLASS_GIVEN:
            return {"metric": 3.0, "class": float(c), "low": low, "high": high,
                    "width": float((high - low) / span), "share": share, "elsewhere": elsewhere}
    return None


def _bin_codes(values: pd.Series, kind: str) -> np.ndarray:
    """Bin codes 0..k of a column: levels or quantile bins, and missing values in the last bin."""
    if kind in ("numeric", "datetime") and (pd.api.types.is_numeric_dtype(values)
                                            or pd.api.types.is_datetime64_any_dtype(values)):
        v = _as_float(values)
        missing = np.isnan(v)
        present = v[~missing]
        codes = np.zeros(len(v), dtype=np.int64)
        if len(present):
            levels = np.unique(present)
            bins = max(2, min(MAX_BINS, len(present) // ROWS_PER_BIN))
            if len(levels) <= bins:
                codes[~missing] = np.searchsorted(levels, present)
            else:
                edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
                codes[~missing] = np.searchsorted(edges, present, side="right")
        codes[missing] = codes.max() + 1 if len(present) else 0
        return codes
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    codes[codes < 0] = codes.max() + 1
    return codes


def _as_float(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(float)
        out[values.isna().to_numpy()] = np.nan
        return out
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _cv_majority(codes: np.ndarray, y: np.ndarray, folds: np.ndarray) -> float:
    """Cross-validated accuracy of predicting each bin's majority class (the train folds' majority for an unseen bin)."""
    k, b = int(y.max()) + 1, int(codes.max()) + 1
    right = 0
    for f in range(FOLDS):
        fit, held = folds != f, folds == f
        table = np.bincount(codes[fit] * k + y[fit], minlength=b * k).reshape(b, k)
        pred = table.argmax(axis=1)
        pred[table.sum(axis=1) == 0] = np.bincount(y[fit], minlength=k).argmax()
        right += int((pred[codes[held]] == y[held]).sum())
    return right / len(y)


def _cv_mean(codes: np.ndarray, y: np.ndarray, folds: np.ndarray) -> float:
    """Cross-validated R² of predicting each bin's mean target (the train folds' mean for an unseen bin)."""
    b = int(codes.max()) + 1
    sse = 0.0
    for f in range(FOLDS):
        fit, held = folds != f, folds == f
        count = np.bincount(codes[fit], minlength=b)
        total = np.bincount(codes[fit], weights=y[fit], minlength=b)
        pred = np.where(count > 0, total / np.maximum(count, 1), y[fit].mean())
        sse += float(((pred[codes[held]] - y[held]) ** 2).sum())
    return 1.0 - sse / float(((y - y.mean()) ** 2).sum())


def _rank_correlation(values: pd.Series, y: np.ndarray, y_ranks: np.ndarray | None = None) -> float:
    """Spearman's rank correlation of a column with the target (`y_ranks`: the target's ranks, reused where the
    column has no missing value)."""
    from scipy.stats import rankdata

    v = _as_float(values)
    ok = ~np.isnan(v) & ~np.isnan(y)
    if ok.sum() < MIN_ROWS or np.ptp(v[ok]) == 0:
        return 0.0
    ry = y_ranks if y_ranks is not None and ok.all() else rankdata(y[ok])
    rv = rankdata(v[ok])
    rho = np.corrcoef(rv, ry)[0, 1] if np.ptp(ry) > 0 else np.nan
    return float(rho) if np.isfinite(rho) else 0.0
