"""A labelled table from nothing: scikit-learn's generators with exact (or deliberately noisy) labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_regression

from synthloop.synth._codec import TaskName, _check_task


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
