"""The boosted model that draws a regression target for synthetic feature rows (cart's and smote's target).

A model trained on synthetic rows learns the target from them; a target drawn by a gradient-boosted model of the
real rows follows the features as smoothly as such a model learns them. Categorical codes (at most 255) enter as
categories, with HistGradientBoosting's native splits on sets of levels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthloop.synth._codec import _Column


def regression_teacher(design: np.ndarray, y: np.ndarray, columns: Sequence[_Column], rng: np.random.Generator):
    """A gradient-boosted regressor of `y` on the encoded feature columns `design` (described by `columns`, in
    order), fitted. Discrete columns of at most 255 codes are split as categories, the rest as numbers.

    From 1,000 rows it grows until 30 rounds bring nothing on 15 % of the rows held out (at most 300 rounds);
    below that it takes 100 rounds, as a holdout that small stops at random.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    params: dict = dict(max_iter=100, min_samples_leaf=20, early_stopping=False)
    if len(y) >= 1000:
        params = dict(max_iter=300, min_samples_leaf=10, early_stopping=True, validation_fraction=0.15,
                      n_iter_no_change=30)
    flags = np.array([not c.continuous and c.n_codes <= 255 for c in columns], dtype=bool)
    return HistGradientBoostingRegressor(categorical_features=flags if flags.any() else None,
                                         random_state=int(rng.integers(np.iinfo(np.int32).max)),
                                         **params).fit(design, y)
