"""Rejecting tables that cannot be learned from (:func:`check_frame`), with one line naming the column
and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from synthloop.data._common import (
    _MOSTLY_NUMERIC,
    _check_task_value,
    _check_unique_columns,
    _close_hint,
    _error,
    _is_numberlike,
    _is_textlike,
    _labels,
    _listing,
    _missing_mask,
    _numeric_share,
    _numeric_view,
    _present,
    _require_target,
    _show,
    _to_numbers,
)
from synthloop.data.infer import _guess_task
from synthloop.errors import ConfigError


def check_frame(
    df: pd.DataFrame,
    target: str,
    *,
    source_name: str,
    task: str | None = None,
    min_rows_per_class: int = 3,
) -> None:
    """Reject a table that cannot be learned from, naming the column and the fix.

    Rows whose target is missing are allowed here; :func:`prepare_frame` drops them.

    Args:
        df: The loaded table.
        target: Name of the label column.
        source_name: File name or redacted URL used in messages.
        task: "classification" or "regression"; guessed from the target when None.
        min_rows_per_class: Fewest rows a class may have (classification), so that the
            train/validation/test split can be stratified.

    Raises:
        DataError: The target is missing, empty or has too few rows per class, or a column holds
            infinite values or stray text among numbers.
        ConfigError: ``task`` or ``min_rows_per_class`` is not a valid value.
    """
    src = source_name
    _check_task_value(task)
    if not isinstance(min_rows_per_class, int) or min_rows_per_class < 1:
        raise ConfigError(f"min_rows_per_class must be a positive integer, got {min_rows_per_class!r}")
    _check_unique_columns(df.columns, src)
    if len(df) == 0:
        raise _error(src, "has no data rows")
    _require_target(df, target, src)
    y = df[target]
    present_y = _present(y)
    if present_y.empty:
        raise _error(src, f"target column {target!r} is empty (every value is missing)")

    _check_values(df, src)

    chosen = task or _guess_task(present_y)[0]
    if chosen == "regression":
        if _numeric_view(present_y) is None:
            examples = _bad_numbers(present_y[pd.to_numeric(present_y, errors="coerce").isna()])
            raise _error(
                src,
                f"target column {target!r} holds text (e.g. {examples}) but regression needs numbers; "
                "fix the values or set the task to classification",
            )
        return
    counts = _labels(y[~_missing_mask(y)]).value_counts()
    if len(counts) < 2:
        raise _error(
            src,
            f"target column {target!r} has a single class ({_show(counts.index[0])}); "
            "classification needs at least two",
        )
    rare = counts[counts < min_rows_per_class]
    if len(rare):
        shown = ", ".join(f"{_show(label)} ({n} rows)" for label, n in rare.head(3).items())
        more = f" and {len(rare) - 3} more" if len(rare) > 3 else ""
        raise _error(
            src,
            f"target column {target!r}: class {shown}{more} has fewer than {min_rows_per_class} rows, "
            "so the data cannot be stratified into train/validation/test; collect more rows of that "
            "class or remove it",
        )


def _check_values(df: pd.DataFrame, src: str) -> None:
    infinite: list[tuple[Any, int]] = []
    stray: list[tuple[Any, str]] = []
    for col in df.columns:
        s = df[col]
        if _is_numberlike(s):
            n_inf = int(np.isinf(s.to_numpy(dtype="float64", na_value=np.nan)).sum())
            if n_inf:
                infinite.append((col, n_inf))
        elif _is_textlike(s):
            present = _present(s)
            if present.empty or _numeric_share(present.sample(min(len(present), 2000), random_state=0)) < 0.5:
                continue  # clearly a text column; skip parsing every value
            parsed = _to_numbers(present)
            ok = parsed.notna()
            share = float(ok.mean())
            if share == 1.0:
                n_inf = int(np.isinf(parsed.to_numpy(dtype="float64")).sum())
                if n_inf:
                    infinite.append((col, n_inf))
            elif share >= _MOSTLY_NUMERIC:
                stray.append((col, _bad_numbers(present[~ok])))
    if stray:
        col, examples = stray[0]
        also = f"; also in {_listing([c for c, _ in stray[1:]])}" if len(stray) > 1 else ""
        raise _error(
            src,
            f"column {col!r} holds text in a numeric column (e.g. {examples}); "
            f"fix or remove those values{also}",
        )
    if infinite:
        col, n_inf = infinite[0]
        also = f"; also in {_listing([c for c, _ in infinite[1:]])}" if len(infinite) > 1 else ""
        raise _error(src, f"column {col!r} holds {n_inf} infinite value(s); replace or remove them{also}")


def _bad_numbers(values: pd.Series) -> str:
    distinct = list(dict.fromkeys(values.tolist()))[:3]
    return ", ".join(_show(v) for v in distinct)


def require_target(df: pd.DataFrame, target: str, source_name: str) -> None:
    """A DataError naming the close column names when `target` is not a column of `df`."""
    _require_target(df, target, source_name)


def close_hint(name: Any, columns: Iterable[Any]) -> str:
    """'; close matches: ...' (or the columns) for a column name that is not there."""
    return _close_hint(name, columns)
