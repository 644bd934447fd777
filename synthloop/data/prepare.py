"""Converting a table to one consistent dtype per column kind (:func:`prepare_frame`, and
:func:`prepare_features` for the rows a loaded model is asked to predict)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthloop.data._common import (
    _DATE_SAMPLE,
    _KINDS,
    _check_unique_columns,
    _error,
    _is_numberlike,
    _labels,
    _listing,
    _missing_mask,
    _number_text,
    _numeric_view,
    _parse_dates,
    _show,
    _sorted_values,
    _source_of,
    _to_datetime,
    _to_numbers,
    _trimmed_text,
)
from synthloop.errors import ConfigError
from synthloop.types import Schema

_TRUE_WORDS = {"1", "1.0", "true", "yes", "t", "y"}
_FALSE_WORDS = {"0", "0.0", "false", "no", "f", "n"}


def prepare_frame(df: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, list[str]]:
    """Return a new frame holding only the schema's features and target, with one dtype per kind.

    numeric -> float64 (numbers stored as text converted); boolean -> float64 0/1 with NaN;
    datetime -> datetime64; categorical -> object strings (trimmed) with NaN for missing. The
    target is int64 for integer class labels, bool or object strings for other labels, and
    float64 for regression. Rows with a missing target are dropped; the index is kept.

    Args:
        df: The loaded table (not changed).
        schema: The schema from :func:`infer_schema`.

    Returns:
        The prepared frame and notes on what was converted or dropped.

    Raises:
        DataError: A schema column is missing from the table, or no row has a target.
    """
    src = _source_of(df)
    target = schema.target
    _check_unique_columns(df.columns, src)
    missing = [c for c in [*schema.features, target] if c not in df.columns]
    if missing:
        raise _error(src, f"columns {_listing(missing)} from the schema are not in the table")
    notes: list[str] = []
    y_missing = _missing_mask(df[target])
    n_missing = int(y_missing.sum())
    if n_missing == len(df):
        raise _error(src, f"target column {target!r} is empty (every value is missing)")
    if n_missing:
        notes.append(f"dropped {n_missing} of {len(df)} rows whose target {target!r} is missing")
    rows = df.loc[~y_missing.to_numpy()] if n_missing else df  # not a copy of every row when none is dropped

    columns, converted_notes = _convert_features(rows, schema.kinds)
    notes += converted_notes
    columns[target] = _prepare_target(rows[target], schema, src)
    if schema.classes is not None:
        unseen = sorted(
            {str(v) for v in columns[target].unique().tolist()} - {str(c) for c in schema.classes}
        )
        if unseen:
            notes.append(f"target {target!r} holds classes not in the schema: {_listing(unseen)}")
    out = pd.DataFrame(columns, index=rows.index, copy=False)  # the converted columns, not a second copy
    out.attrs["source"] = src
    return out, notes


def prepare_features(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """The feature columns of new rows converted as training converted them (see :func:`prepare_frame`).

    Used by a loaded model on the frames it is asked to predict: the same text numbers, yes/no booleans
    and date strings a training table held are read the same way. Prepared frames pass through unchanged.

    Raises:
        DataError: A feature column the model needs is not in the table (all of them are named).
    """
    src = _source_of(df)
    _check_unique_columns(df.columns, src)
    missing = [c for c in kinds if c not in df.columns]
    if missing:
        raise _error(src, f"columns {_listing(missing)} the model needs are not in the table")
    return pd.DataFrame(_convert_features(df, kinds)[0], index=df.index)


def _convert_features(rows: pd.DataFrame, kinds: dict[Any, str]) -> tuple[dict[Any, pd.Series], list[str]]:
    """Each feature column converted to its kind's dtype, and notes on what was converted."""
    unknown = {kind for kind in kinds.values() if kind not in _CONVERTERS}
    if unknown:
        raise ConfigError(
            f"schema has unknown column kinds {_listing(sorted(unknown))}; use {', '.join(_KINDS)}"
        )
    columns: dict[Any, pd.Series] = {}
    notes: list[str] = []
    for col, kind in kinds.items():
        columns[col], note = _CONVERTERS[kind](rows[col], col)
        if note:
            notes.append(note)
    return columns, notes


def _to_numeric_column(s: pd.Series, col: Any) -> tuple[pd.Series, str | None]:
    if s.dtype == np.float64:  # already what it must be: the same values, not a copy of them
        return s.rename(col), None  # copy-on-write: shares the values until either side is written
    if pd.api.types.is_bool_dtype(s.dtype) or _is_numberlike(s):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index, name=col), None
    if pd.api.types.is_timedelta64_dtype(s.dtype):
        return s.dt.total_seconds().astype("float64"), None
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        seconds = (s - pd.Timestamp(0, tz=getattr(s.dt, "tz", None))).dt.total_seconds()
        return seconds.astype("float64"), f"column {col!r}: dates converted to seconds since 1970"
    text = _trimmed_text(s)
    numbers = _to_numbers(text)
    lost = int((text.notna() & numbers.isna()).sum())
    note = f"column {col!r}: {lost} value(s) are not numbers and were treated as missing" if lost else None
    return numbers.rename(col), note


def _to_boolean_column(s: pd.Series, col: Any) -> tuple[pd.Series, str | None]:
    if pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index, name=col), None
    if _is_numberlike(s):
        keys = pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
        mapping: dict[Any, float] = {1.0: 1.0, 0.0: 0.0}
    else:
        keys = _trimmed_text(s).str.lower()
        mapping = dict.fromkeys(_TRUE_WORDS, 1.0) | dict.fromkeys(_FALSE_WORDS, 0.0)
    present = keys.dropna()
    distinct = _sorted_values(present.unique().tolist())
    note = None
    if not set(distinct) <= set(mapping) and len(distinct) == 2:
        mapping = {distinct[0]: 0.0, distinct[1]: 1.0}
        note = f"column {col!r}: boolean read as {_show(distinct[0])} -> 0, {_show(distinct[1])} -> 1"
    values = keys.map(mapping).astype("float64")
    lost = int(len(present) - values.notna().sum())
    if lost and note is None:
        note = (
            f"column {col!r}: {lost} value(s) are not yes/no, true/false or 0/1 and were treated as missing"
        )
    return values.rename(col), note


def _to_datetime_column(s: pd.Series, col: Any) -> tuple[pd.Series, str | None]:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        tz = getattr(s.dtype, "tz", None)
        note = f"column {col!r}: times in {tz} converted to UTC" if str(tz) not in ("None", "UTC") else None
        return _naive_utc(s).rename(col), note
    if _is_numberlike(s):
        numbers = pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
        return pd.to_datetime(numbers, unit="s", errors="coerce").rename(col), (
            f"column {col!r}: numbers read as seconds since 1970"
        )
    text = _trimmed_text(s)
    present = text.dropna()
    if present.empty:
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]", name=col), None
    _, dayfirst = _parse_dates(present.iloc[:_DATE_SAMPLE].astype(str))
    parsed = _to_datetime(text, dayfirst=dayfirst)
    lost = int((text.notna() & parsed.isna()).sum())
    note = f"column {col!r}: {lost} value(s) are not dates and were treated as missing" if lost else None
    return _naive_utc(parsed).rename(col), note


def _naive_utc(s: pd.Series) -> pd.Series:
    """Datetimes with a time zone as the same instants in naive UTC (the models and generators take naive
    datetimes; subtracting a naive epoch from aware ones raises). Naive datetimes are kept as they are."""
    if getattr(s.dtype, "tz", None) is not None:
        return s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.copy()


def _to_categorical_column(s: pd.Series, col: Any) -> tuple[pd.Series, str | None]:
    if pd.api.types.is_bool_dtype(s.dtype):
        values = s.astype(object).map({True: "True", False: "False"})
    elif _is_numberlike(s):
        numbers = s.to_numpy(dtype="float64", na_value=np.nan)
        values = pd.Series([_number_text(v) for v in numbers], index=s.index, dtype=object)
    elif pd.api.types.is_datetime64_any_dtype(s.dtype):
        values = pd.Series([np.nan if pd.isna(v) else v.isoformat() for v in s], index=s.index, dtype=object)
    else:
        values = _trimmed_text(s)
    return pd.Series(values.to_numpy(dtype=object), index=s.index, dtype=object, name=col), None


_CONVERTERS = {
    "numeric": _to_numeric_column,
    "boolean": _to_boolean_column,
    "datetime": _to_datetime_column,
    "categorical": _to_categorical_column,
}


def _prepare_target(y: pd.Series, schema: Schema, src: str) -> pd.Series:
    if schema.task == "regression":
        numbers = _numeric_view(y)
        if numbers is None:
            raise _error(src, f"target column {schema.target!r} holds text but the task is regression")
        return numbers.astype("float64").rename(schema.target)
    return _labels(y).rename(schema.target)
