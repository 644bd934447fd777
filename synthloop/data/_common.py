"""What the loading, checking, typing and preparing modules share: one-line messages and readers of
column values (trimmed text, missing values, numbers written as text, labels, dates)."""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from synthloop.errors import ConfigError, DataError

_TASKS = ("classification", "regression")
_KINDS = ("numeric", "categorical", "boolean", "datetime")
# Column typing thresholds.
_MOSTLY_NUMERIC = 0.9
_DATE_SAMPLE = 500

_BOOLEAN_PAIRS = ({"0", "1"}, {"true", "false"}, {"yes", "no"})


def _parse_dates(values: pd.Series) -> tuple[pd.Series, bool]:
    """Parse text as dates, trying day-first when month-first parses fewer values."""
    best = _to_datetime(values, dayfirst=False)
    dayfirst = False
    if best.notna().mean() < 1.0:
        alt = _to_datetime(values, dayfirst=True)
        if alt.notna().sum() > best.notna().sum():
            best, dayfirst = alt, True
    return best, dayfirst


def _to_datetime(values: pd.Series, *, dayfirst: bool) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for utc in (False, True):
            try:
                return pd.to_datetime(values, errors="coerce", dayfirst=dayfirst, utc=utc)
            except (ValueError, TypeError, OverflowError):
                continue
    return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")


def _labels(y: pd.Series) -> pd.Series:
    """Class labels of non-missing values: int64 for integer labels, bool, else float or trimmed text."""
    if isinstance(y.dtype, pd.CategoricalDtype):
        y = y.astype(object)
    if pd.api.types.is_bool_dtype(y.dtype):
        return y.astype(bool)
    if _is_numberlike(y):
        values = y.to_numpy(dtype="float64", na_value=np.nan)
        finite = values[np.isfinite(values)]
        if len(finite) == len(values) and np.all(finite == np.round(finite)):
            return pd.Series(values.astype("int64"), index=y.index)
        return pd.Series(values, index=y.index)
    kind = pd.api.types.infer_dtype(y, skipna=True)
    if kind == "boolean":
        return y.astype(bool)
    if kind == "integer":
        return y.astype("int64")
    text = _trimmed_text(y)
    folded = text.str.casefold() if text.nunique() > 2 else None  # two spellings or fewer: nothing to fold
    if folded is not None and any(set(folded.dropna().unique()) == pair for pair in _BOOLEAN_PAIRS):
        # 'Yes', 'yes' and 'YES' in a yes/no column are one class, spelled as most rows spell it
        text = folded.map(text.groupby(folded).agg(lambda v: v.value_counts().index[0]))
    return pd.Series(text.to_numpy(dtype=object), index=y.index, dtype=object)


def _error(source: str, message: str) -> DataError:
    text = f"{source}: {message}"
    return DataError(re.sub(r"\s*[\r\n]+\s*", " ", text))


def _show(value: Any, limit: int = 40) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(names: Iterable[Any], limit: int = 8) -> str:
    names = list(names)
    if not names:
        return "(none)"
    shown = ", ".join(_show(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _close_hint(name: Any, columns: Iterable[Any]) -> str:
    columns = [str(c) for c in columns]
    close = difflib.get_close_matches(str(name), columns, n=3, cutoff=0.5)
    folded = [c for c in columns if c.lower() == str(name).lower() and c not in close]
    close = folded + close
    if close:
        return f"; close matches: {_listing(close[:3])}"
    return f"; columns are: {_listing(columns, limit=30)}"


def _source_of(df: pd.DataFrame) -> str:
    return str(df.attrs.get("source") or "table")


def _check_task_value(task: str | None) -> None:
    if task is not None and task not in _TASKS:
        raise ConfigError(f"task must be 'classification' or 'regression', got {task!r}")


def _check_unique_columns(columns: Iterable[Any], name: str) -> None:
    seen: set[Any] = set()
    duplicated: list[Any] = []
    for col in columns:
        if col in seen and col not in duplicated:
            duplicated.append(col)
        seen.add(col)
    if duplicated:
        raise _error(name, f"column names appear more than once: {_listing(duplicated)}; rename them")


def _require_target(df: pd.DataFrame, target: str, src: str) -> None:
    if target not in df.columns:
        single = (
            "; the table has one column only: is its delimiter not a comma, semicolon, tab or pipe?"
            if df.shape[1] == 1
            else ""
        )
        raise _error(src, f"target column {target!r} not found{_close_hint(target, df.columns)}{single}")


def _is_textlike(s: pd.Series) -> bool:
    return s.dtype == object or isinstance(s.dtype, (pd.StringDtype, pd.CategoricalDtype))


def _is_numberlike(s: pd.Series) -> bool:
    """True for int/float columns (numpy or nullable), excluding booleans."""
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _trimmed_text(s: pd.Series) -> pd.Series:
    """Object strings with surrounding space removed; missing and blank values become NaN."""
    if isinstance(s.dtype, pd.StringDtype):
        # Trimmed once per distinct value, and every row points at its value's one string object: a million rows
        # of a yes/no column are not a million new Python strings (which would stay in the heap after use).
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        trimmed = pd.Series(uniques, dtype=s.dtype).str.strip().to_numpy(dtype=object, na_value=np.nan)
        trimmed = np.append(np.where(trimmed == "", np.nan, trimmed).astype(object), np.nan)
        return pd.Series(trimmed[codes], index=s.index, name=s.name, dtype=object)
    values = s.astype(object)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        # As above: each distinct string is trimmed once (a million-row label column has a handful).
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        trimmed = pd.Series(uniques, dtype=object).str.strip().to_numpy(dtype=object)
        trimmed = np.append(np.where(trimmed == "", np.nan, trimmed).astype(object), np.nan)
        return pd.Series(trimmed[codes], index=s.index, name=s.name, dtype=object)
    else:
        mask = values.notna().to_numpy()
        text = pd.Series(np.nan, index=s.index, dtype=object)
        text[mask] = [str(v).strip() for v in values.to_numpy()[mask]]
    return text.where(text.notna() & (text != ""), np.nan).astype(object)


def _missing_mask(s: pd.Series) -> pd.Series:
    """True where a value is missing (NaN/None/NaT, or a blank string in a text column)."""
    if _is_textlike(s):
        return _trimmed_text(s).isna()
    return s.isna()


def _present(s: pd.Series) -> pd.Series:
    """Non-missing values; for text columns, trimmed and without blank strings."""
    if _is_textlike(s):
        return _trimmed_text(s).dropna()
    return s.dropna()


def _n_distinct(present: pd.Series) -> int:
    try:
        return int(present.nunique(dropna=True))
    except TypeError:  # unhashable cells such as lists
        return int(present.astype(str).nunique())


def _numeric_share(text: pd.Series) -> float:
    """Share of (non-missing, trimmed) text values that parse as numbers."""
    return float(_to_numbers(text).notna().mean()) if len(text) else 0.0


_US_NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"     # 1,234,567.89
_EU_NUMBER = r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?"     # 1.234.567,89
_CURRENCY_SIGNS = "$€£¥₹"


def _to_numbers(text: pd.Series) -> pd.Series:
    """Values as float64, NaN where not a number. Besides what `pd.to_numeric` reads, numbers written for
    people are read: a currency sign, a trailing %, and thousands separators ("$1,234.50", "12%", "1.234,56",
    "1 234"). A column is read with dot groups and a decimal comma ("1,5", "1.234,5") only when some value can be
    read no other way and none needs the other reading; otherwise commas are thousands ("1,500" is 1500)."""
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    failed = numbers.isna() & text.notna()
    if not bool(failed.any()):
        return numbers
    values = text.astype(str).str.strip()
    values = values.str.replace(f"^([+-]?)\\s*[{_CURRENCY_SIGNS}]\\s*", r"\1", regex=True)
    values = values.str.replace(f"\\s*(?:[{_CURRENCY_SIGNS}%]|EUR|USD|GBP)$", "", regex=True)
    values = values.str.replace(r"(?<=\d)[ \u00a0\u202f](?=\d{3}(?:\D|$))", "", regex=True)
    us = values.str.fullmatch(_US_NUMBER).fillna(False).astype(bool)
    eu = values.str.fullmatch(_EU_NUMBER).fillna(False).astype(bool)
    if bool((eu & ~us).any()) and not bool((us & ~eu).any()):
        eu_numbers = values.where(eu).str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        return pd.to_numeric(eu_numbers, errors="coerce").astype("float64").fillna(numbers)
    us_numbers = pd.to_numeric(values.where(us).str.replace(",", "", regex=False), errors="coerce")
    return numbers.fillna(us_numbers.astype("float64"))


def _numeric_view(present: pd.Series) -> pd.Series | None:
    """The values as float64 if every one is a number (or a number written as text), else None."""
    if pd.api.types.is_bool_dtype(present.dtype):
        return None
    if _is_numberlike(present):
        return pd.Series(present.to_numpy(dtype="float64", na_value=np.nan), index=present.index)
    if not _is_textlike(present):
        return None
    text = _trimmed_text(present)
    head = text.dropna().iloc[:1000]
    if _numeric_share(head) < 1.0 and len(head):
        return None  # cheap early exit for text columns
    numbers = _to_numbers(text)
    if bool((numbers.isna() & text.notna()).any()):
        return None
    return numbers.astype("float64")


def _number_text(value: float) -> Any:
    if np.isnan(value):
        return np.nan
    if np.isfinite(value) and value == round(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _sorted_values(values: list[Any]) -> list[Any]:
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda v: (type(v).__name__, str(v)))
