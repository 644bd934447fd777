"""Splits made once, and the two objects that keep data out of reach.

* :class:`SealedTest` holds the test split. It can be opened once, after the loop; a second
  opening raises. Nothing upstream of the final stage receives it.
* :class:`LabelPool` holds train rows whose labels have not been bought. Only an annotator can
  read a hidden label, and only for rows it is paid to label.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from synthloop.errors import DataError, SealedTestError
from synthloop.types import Schema


def frame_digest(frame: pd.DataFrame) -> str:
    """A short content digest of a frame (stable across runs for equal content)."""
    h = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    h.update(",".join(map(str, frame.columns)).encode())
    return h.hexdigest()[:12]


class SealedTest:
    """The test split, readable once.

    Only its size and digest are visible before it is opened. `open()` returns the rows and records
    when; any later `open()` raises :class:`SealedTestError`.
    """

    def __init__(self, frame: pd.DataFrame):
        self._seal(frame, len(frame))
        self.digest = frame_digest(frame)

    def _seal(self, frame: Any, n_rows: int) -> None:
        self.__frame = frame
        self.n_rows = n_rows
        self.opened_at: str | None = None

    def open(self) -> pd.DataFrame:
        if self.opened_at is not None:
            raise SealedTestError(f"the test split was already opened at {self.opened_at}; it is opened once per run")
        self.opened_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        frame, self.__frame = self.__frame, None
        return frame

    def __repr__(self) -> str:
        state = f"opened at {self.opened_at}" if self.opened_at else "sealed"
        return f"SealedTest({self.n_rows} rows, digest {self.digest}, {state})"


class LabelPool:
    """Train rows whose labels have not been bought yet.

    `features` is public (rows can be inspected and chosen); the labels are not: `reveal` is how a
    (simulated) annotator sees the truth of the rows it labels, and those rows leave the pool.
    """

    def __init__(self, features: pd.DataFrame, labels: pd.Series | None):
        self.features = features
        self.__labels = labels

    def __len__(self) -> int:
        return len(self.features)

    @property
    def has_truth(self) -> bool:
        return self.__labels is not None

    def take(self, index: pd.Index) -> tuple[pd.DataFrame, pd.Series | None, LabelPool]:
        """Rows at `index` with their hidden labels (for an annotator), and the pool without them."""
        rows = self.features.loc[index]
        truth = self.__labels.loc[index] if self.__labels is not None else None
        rest = self.features.drop(index)
        rest_labels = self.__labels.drop(index) if self.__labels is not None else None
        return rows, truth, LabelPool(rest, rest_labels)


def _strata(y: pd.Series, task: str, n_bins: int = 10) -> pd.Series | np.ndarray | None:
    if task == "classification":
        # The classes' codes in sorted order: the same strata, and the same draws, as the labels themselves, without
        # scikit-learn sorting a million strings to find the classes.
        return pd.factorize(y, sort=True)[0]
    try:
        return pd.qcut(y, q=min(n_bins, max(2, len(y) // 20)), labels=False, duplicates="drop")
    except ValueError:
        return None


def split_frame(frame: pd.DataFrame, schema: Schema, *, val_fraction: float, test_fraction: float, seed: int,
                source_name: str = "data") -> tuple[pd.DataFrame, pd.DataFrame, SealedTest]:
    """Split real rows into train, validation and a sealed test, once, deterministic by seed.

    Stratified by class for classification and by target quantile for regression.
    """
    from sklearn.model_selection import train_test_split

    y = frame[schema.target]
    n = len(frame)
    n_test, n_val = int(round(n * test_fraction)), int(round(n * val_fraction))
    if n_test < 1 or n_val < 1 or n - n_test - n_val < 2:
        raise DataError(f"{source_name}: {n} rows are too few to split into train, validation and test "
                        f"({val_fraction:.0%} validation, {test_fraction:.0%} test)")
    if schema.task == "classification":
        k = y.nunique()
        if n_test < k or n_val < k:
            raise DataError(f"{source_name}: column '{schema.target}' has {k} classes but the test split would hold "
                            f"{n_test} rows and validation {n_val}; every class needs a row in each (add rows or "
                            "raise data.val_fraction / data.test_fraction)")
    # The splits are drawn as row positions (the same draws as splitting the frame itself) and each row is copied
    # once, into its split: no intermediate train+validation frame.
    try:
        rest, test = train_test_split(np.arange(n), test_size=n_test, random_state=seed,
                                      stratify=_strata(y, schema.task))
        train, val = train_test_split(rest, test_size=n_val, random_state=seed + 1,
                                      stratify=_strata(y.iloc[rest], schema.task))
    except ValueError as exc:
        raise DataError(f"{source_name}: column '{schema.target}' cannot be split with stratification: {exc}") from None
    return frame.iloc[train], frame.iloc[val], SealedTest(frame.iloc[test])


def labelled_subset(train: pd.DataFrame, schema: Schema, n_labelled: int, seed: int) -> tuple[pd.DataFrame, LabelPool]:
    """The first labelled rows of train (stratified when it can be) and the pool of the rest."""
    from sklearn.model_selection import train_test_split

    if n_labelled >= len(train):
        return train, LabelPool(train.iloc[:0][schema.features], None)
    y = train[schema.target]
    strata = y if schema.task == "classification" and n_labelled >= y.nunique() and y.value_counts().min() >= 2 else None
    labelled, pool = train_test_split(train, train_size=n_labelled, random_state=seed + 2, stratify=strata)
    return labelled, LabelPool(pool[schema.features], pool[schema.target])


def encode_target(y: pd.Series, schema: Schema) -> np.ndarray:
    """Class labels → 0..K-1 (by the schema's class order); regression targets → float."""
    if schema.task == "regression":
        return y.to_numpy(dtype=float)
    lookup = {c: i for i, c in enumerate(schema.classes)}
    codes = y.map(lookup)
    if codes.isna().any():
        unknown = sorted(set(y[codes.isna()].astype(str)))[:3]
        raise DataError(f"column '{schema.target}': labels {unknown} are not among the known classes")
    return codes.to_numpy(dtype=int)
