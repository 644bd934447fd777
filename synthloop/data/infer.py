"""Deciding the task and the kind of every column (:func:`infer_schema`); ID-like, constant and free-text
columns are dropped with a note."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from synthloop.data._common import (
    _BOOLEAN_PAIRS,
    _DATE_SAMPLE,
    _KINDS,
    _check_task_value,
    _check_unique_columns,
    _close_hint,
    _error,
    _is_numberlike,
    _is_textlike,
    _labels,
    _listing,
    _missing_mask,
    _n_distinct,
    _numeric_view,
    _parse_dates,
    _present,
    _require_target,
    _show,
    _sorted_values,
    _source_of,
    _trimmed_text,
)
from synthloop.errors import ConfigError, DataError
from synthloop.types import ColumnKind, Schema, Task

# Task guessing: an integer-valued target is a class label when it has few distinct values.
_MAX_CLASSES = 20
_MAX_CLASS_RATIO = 0.5
# Column typing thresholds.
_DATE_PARSE_RATIO = 0.95
_ID_MIN_ROWS = 20
_RANGE_ID_MIN_ROWS = 10
_FREE_TEXT_MIN_ROWS = 50
_FREE_TEXT_RATIO = 0.5

_ID_NAME = re.compile(
    r"^(id|uuid|guid|index|idx|row_?id|unnamed: ?\d+)$|[_\s-](id|uuid|guid)$", re.IGNORECASE
)
_CAMEL_ID = re.compile(r"[a-z](ID|Id|UUID|Uuid)$")
_DATE_SHAPE = r"(?:^|\D)[12]\d{3}(?:\D|$)|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"


def infer_schema(
    df: pd.DataFrame,
    target: str,
    *,
    task: str | None = None,
    column_types: dict[str, str] | None = None,
    drop: list[str] | None = None,
) -> tuple[Schema, list[str]]:
    """Decide the learning task and the kind of every feature column.

    Constant, all-missing, ID-like and free-text columns are dropped. The returned notes start
    with those :func:`load_table` kept in ``df.attrs["notes"]``.

    Args:
        df: The loaded table (not changed).
        target: Name of the label column.
        task: "classification" or "regression"; guessed from the target when None.
        column_types: Column -> kind overrides ("numeric", "categorical", "boolean", "datetime");
            a column named here is kept with that kind even if it looks useless.
        drop: Columns to leave out.

    Returns:
        The schema and human-readable notes on what was guessed or dropped.

    Raises:
        DataError: The target or a column named in ``column_types``/``drop`` is missing, the
            target is empty, or no usable feature column is left.
        ConfigError: ``task`` or a kind in ``column_types`` is not a valid value.
    """
    src = _source_of(df)
    notes = [str(n) for n in df.attrs.get("notes", [])]
    _check_task_value(task)
    column_types = dict(column_types or {})
    drop = list(drop or [])
    for col, kind in column_types.items():
        if kind not in _KINDS:
            raise ConfigError(
                f"column_types[{col!r}] = {kind!r} is not a column kind; use one of {', '.join(_KINDS)}"
            )
    _check_unique_columns(df.columns, src)
    _require_target(df, target, src)
    for option, names in (("column_types", list(column_types)), ("drop", drop)):
        for col in names:
            if col not in df.columns:
                raise _error(
                    src, f"column {col!r} named in {option} is not in the table{_close_hint(col, df.columns)}"
                )
    if target in drop:
        raise _error(src, f"column {target!r} is the target and cannot be dropped")
    if target in column_types:
        notes.append(f"column_types entry for the target {target!r} ignored; the task sets its type")

    present_y = _present(df[target])
    if present_y.empty:
        raise _error(src, f"target column {target!r} is empty (every value is missing)")
    if task is None:
        task, reason = _guess_task(present_y)
        notes.append(f"task: {task} (guessed: target {target!r} {reason})")
    if task == "regression" and _numeric_view(present_y) is None:
        raise _error(
            src,
            f"target column {target!r} holds text but regression needs numbers; "
            "set the task to classification",
        )

    kinds: dict[Any, ColumnKind] = {}
    dropped: dict[Any, str] = {}
    n_rows = len(df)
    for col in df.columns:
        if col == target:
            continue
        if col in drop:
            dropped[col] = "listed in drop"
        elif col in column_types:
            kinds[col] = column_types[col]  # type: ignore[assignment]
        else:
            kind, reason, note = _classify_column(col, df[col], n_rows)
            if kind is None:
                dropped[col] = reason or "unusable"
            else:
                kinds[col] = kind
            if note:
                notes.append(note)
    for col, reason in dropped.items():
        hint = "" if reason == "listed in drop" else " (name it in column_types to keep it)"
        notes.append(f"dropped column {col!r}: {reason}{hint}")
    if not kinds:
        raise _error(
            src,
            f"no usable feature columns left besides the target {target!r} "
            f"(dropped: {_listing(list(dropped))})",
        )

    classes = None
    if task == "classification":
        y = df[target]
        classes = tuple(_sorted_values(_labels(y[~_missing_mask(y)]).drop_duplicates().tolist()))
        if _is_textlike(y):
            notes += _case_variant_notes(y, target, len(classes))
    schema = Schema(target=target, task=task, kinds=kinds, dropped=dropped, classes=classes)  # type: ignore[arg-type]
    return schema, notes


def _case_variant_notes(y: pd.Series, target: Any, n_classes: int) -> list[str]:
    text = pd.Series(_trimmed_text(y).dropna().unique())  # the distinct labels: a few, even in a million rows
    variants = [list(g) for g in text.groupby(text.str.casefold()).unique() if len(g) > 1]
    if not variants:
        return []
    shown = "; ".join("/".join(_show(v) for v in group) for group in variants[:3])
    if n_classes < len(text):
        return [f"target {target!r}: labels {shown} differ only in case and were read as one class"]
    return [f"target {target!r}: labels {shown} differ only in case and are kept as separate classes; "
            "give them one spelling if they mean the same"]


def _classify_column(col: Any, s: pd.Series, n_rows: int) -> tuple[ColumnKind | None, str | None, str | None]:
    """Return (kind, None, note) for a usable column or (None, reason, None) for one to drop."""
    present = _present(s)
    if present.empty:
        return None, "all values missing", None
    n_distinct = _distinct_enough(col, s, present)
    if n_distinct <= 1:
        only = _show(present.iloc[0])
        missing = len(s) - len(present)
        return None, f"constant (every value is {only}" + (f", {missing} missing)" if missing else ")"), None
    if _is_booleanlike(s, present, n_distinct):
        return "boolean", None, None
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "datetime", None, None

    note = None
    kind: ColumnKind
    if _is_numberlike(s) or pd.api.types.is_timedelta64_dtype(s.dtype):
        kind = "numeric"
    elif _numeric_view(present) is not None:
        kind = "numeric"
        note = f"column {col!r} holds numbers stored as text; read as numeric"
    elif _looks_like_dates(present):
        return "datetime", None, None
    else:
        kind = "categorical"

    unique_all = n_distinct == n_rows and len(present) == n_rows
    if unique_all and _is_id_name(col):
        return None, f"ID-like (named like an identifier, all {n_rows} values unique)", None
    integer = _is_integer_column(s, present)
    if unique_all and n_rows >= _ID_MIN_ROWS and (integer or kind == "categorical"):
        return None, f"ID-like (all {n_rows} values unique)", None
    if integer and n_rows >= _RANGE_ID_MIN_ROWS and len(present) == n_rows and _is_row_counter(present):
        return None, "ID-like (a row counter 0..n-1 or 1..n)", None
    if (
        kind == "categorical"
        and len(present) >= _FREE_TEXT_MIN_ROWS
        and n_distinct / len(present) > _FREE_TEXT_RATIO
    ):
        return (
            None,
            f"too many categories ({n_distinct} distinct among {len(present)} values; free text?)",
            None,
        )
    return kind, None, note


#: Float columns longer than this have their distinct values counted on an evenly spaced sample first.
_DISTINCT_SAMPLE_FROM = 50_000


def _distinct_enough(col: Any, s: pd.Series, present: pd.Series) -> int:
    """The number of distinct values, or for a long float column (not named like an ID) a lower bound above 6.

    A float column's count only decides constant (1), boolean (2-6 values) and, when it is named like an ID,
    all-unique; past 6 distinct values in a sample nothing else reads it. Hashing a million floats for each
    column cost more than the rest of the schema's inference.
    """
    if (len(present) > _DISTINCT_SAMPLE_FROM and pd.api.types.is_float_dtype(s.dtype) and not _is_id_name(col)):
        step = len(present) // 10_000
        seen = _n_distinct(present.iloc[::step])
        if seen > 6:
            return seen
    return _n_distinct(present)


def _is_id_name(col: Any) -> bool:
    name = str(col).strip()
    return bool(_ID_NAME.search(name) or _CAMEL_ID.search(name))


def _is_integer_column(s: pd.Series, present: pd.Series) -> bool:
    """True for integer columns, including whole numbers stored as text (but not floats)."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return False
    if pd.api.types.is_integer_dtype(s.dtype):
        return True
    if _is_textlike(s):
        numbers = _numeric_view(present)
        return numbers is not None and bool(np.all(numbers.to_numpy() == np.round(numbers.to_numpy())))
    return False


def _is_row_counter(present: pd.Series) -> bool:
    numbers = _numeric_view(present)
    if numbers is None or not np.all(np.isfinite(numbers.to_numpy())):
        return False
    values = numbers.to_numpy().astype("int64")
    start = int(values[0])
    return start in (0, 1) and np.array_equal(values, np.arange(start, start + len(values)))


def _is_booleanlike(s: pd.Series, present: pd.Series, n_distinct: int) -> bool:
    if pd.api.types.is_bool_dtype(s.dtype):
        return True
    if n_distinct > 6:  # two words, allowing case variants such as Yes/yes/YES
        return False
    distinct = present.unique().tolist()
    if _is_numberlike(s):
        return {float(v) for v in distinct} == {0.0, 1.0}
    if not _is_textlike(s):
        return False
    words = {str(v).strip().lower() for v in distinct}
    return any(words == pair for pair in _BOOLEAN_PAIRS)


def _looks_like_dates(present: pd.Series) -> bool:
    if pd.api.types.infer_dtype(present, skipna=True) in ("datetime", "datetime64", "date"):
        return True
    sample = present.iloc[:_DATE_SAMPLE].astype(str)
    # Demand a year or a d/m/y triple so that bins ("1-5"), times ("12:30") and ordinals ("2nd"),
    # which the date parser happily accepts, stay categorical.
    if sample.str.contains(_DATE_SHAPE, regex=True).mean() < _DATE_PARSE_RATIO:
        return False
    parsed, _ = _parse_dates(sample)
    return float(parsed.notna().mean()) >= _DATE_PARSE_RATIO


def _guess_task(present_y: pd.Series) -> tuple[Task, str]:
    if pd.api.types.is_bool_dtype(present_y.dtype):
        return "classification", "is boolean"
    numbers = _numeric_view(present_y)
    if numbers is None:
        if pd.api.types.infer_dtype(present_y, skipna=True) == "boolean":
            return "classification", "is boolean"
        return "classification", "holds text labels"
    values = numbers.to_numpy(dtype="float64")
    finite = values[np.isfinite(values)]
    n_distinct = len(np.unique(finite))
    integral = bool(len(finite)) and bool(np.all(finite == np.round(finite)))
    if (
        integral
        and n_distinct <= _MAX_CLASSES
        and (n_distinct <= 2 or n_distinct <= _MAX_CLASS_RATIO * len(values))
    ):
        return "classification", f"has {n_distinct} distinct integer values"
    if integral:
        return "regression", f"has {n_distinct} distinct integer values"
    return "regression", "holds non-integer numbers"


def guess_target(columns: list[Any], source_name: str) -> str:
    """The target when none is given: a column named target, label, y or class; else a DataError naming them."""
    for name in ("target", "label", "y", "class"):
        if name in columns:
            return name
    raise DataError(f"{source_name}: no target column given; pass --target COLUMN "
                    f"(columns: {', '.join(map(str, columns[:8]))}{' ...' if len(columns) > 8 else ''})")
