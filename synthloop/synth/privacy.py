"""Privacy of synthetic rows: exact copies of real rows and a distance-to-closest-record (DCR) floor.

Distances are Euclidean on numeric and datetime columns standardized on the real rows (a missing value is 0 plus a
missingness indicator) and one-hot categorical and boolean columns, so one category mismatch counts sqrt(2). The
floor is ``DCR_FLOOR`` times the median distance from a real train row to its closest *other* real train row: a
synthetic row closer than that to some real row is a near copy. :class:`RowGuard` is what every generator passes
its rows through; :func:`synthloop.synth.quality_report` reports the same floor and how many rows fall below it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.neighbors import BallTree, KDTree

from synthloop.synth._codec import _continuous_values

# A synthetic row must be at least this share of the typical real-to-real closest distance away from every real row.
DCR_FLOOR = 0.2
_FLOOR_ROWS = 2000
# KD-trees prune well in few dimensions; one-hot categoricals soon make a ball tree the faster one.
_KD_MAX_DIMS = 24


def _privacy_matrix(frames: Sequence[pd.DataFrame], kinds: Mapping[Any, str]) -> list[np.ndarray]:
    """Numeric and datetime columns standardized on the first frame; categoricals one-hot."""
    ref = frames[0]
    columns: list[list[np.ndarray]] = [[] for _ in frames]
    for c, kind in kinds.items():
        if kind in ("numeric", "datetime"):
            values = [_continuous_values(f[c], kind) for f in frames]
            obs = values[0][~np.isnan(values[0])]
            mean = obs.mean() if obs.size else 0.0
            std = obs.std() if obs.size and obs.std() > 0 else 1.0
            flagged = bool(np.isnan(values[0]).any())
            for out, v in zip(columns, values):
                z = (v - mean) / std
                out.append(np.where(np.isnan(z), 0.0, z))
                if flagged:
                    out.append(np.isnan(v).astype(np.float64))
        else:
            categories = pd.Index(ref[c].astype(object).dropna().unique())
            for out, f in zip(columns, frames):
                codes = categories.get_indexer(f[c].astype(object))
                missing = f[c].isna().to_numpy()
                onehot = np.zeros((len(f), len(categories) + 1))
                known = codes >= 0
                onehot[np.flatnonzero(known), codes[known]] = 1.0
                onehot[missing, -1] = 1.0
                out.append(onehot)
    return [np.column_stack(cols) for cols in columns]


def _row_hashes(frames: Sequence[pd.DataFrame], kinds: Mapping[Any, str]) -> list[np.ndarray]:
    """One hash per row over canonical per-column codes, comparable across frames."""
    sizes = [len(f) for f in frames]
    codes = {}
    for c, kind in kinds.items():
        if kind in ("numeric", "boolean", "datetime"):
            joined = np.concatenate([_continuous_values(f[c], "datetime" if kind == "datetime" else "numeric")
                                     for f in frames])
        else:
            joined = pd.concat([f[c].astype(object) for f in frames], ignore_index=True)
        codes[f"c{len(codes)}"] = pd.factorize(joined, use_na_sentinel=True)[0]
    hashes = pd.util.hash_pandas_object(pd.DataFrame(codes), index=False).to_numpy()
    return np.split(hashes, np.cumsum(sizes)[:-1])


def _tree(matrix: np.ndarray):
    return KDTree(matrix) if matrix.shape[1] <= _KD_MAX_DIMS else BallTree(matrix)


def real_dcr(tree, matrix: np.ndarray, rng: np.random.Generator, rows: int = _FLOOR_ROWS) -> np.ndarray:
    """Distance from (a sample of) real rows to their closest other real row, on the tree built on ``matrix``."""
    n = matrix.shape[0]
    if n < 2:
        return np.zeros(0)
    pick = np.arange(n) if n <= rows else rng.choice(n, size=rows, replace=False)
    dist, idx = tree.query(matrix[pick], k=2)
    # The closest point is the row itself unless an exact duplicate happens to come first.
    self_first = idx[:, 0] == pick
    return np.where(self_first, dist[:, 1], dist[:, 0])


class RowGuard:
    """Rejects synthetic rows that copy a real train row or sit closer to one than the DCR floor.

    Args:
        real: The real train features the generator was fitted on.
        kinds: Feature column name -> kind.
        floor: The floor as a share of the median real-to-real closest distance; 0 rejects exact copies only.
        random_state: Seed for the sample of real rows that sets the floor.
    """

    def __init__(self, real: pd.DataFrame, kinds: Mapping[Any, str], floor: float = DCR_FLOOR, random_state: Any = 0):
        self.kinds = dict(kinds)
        self.real = real[list(kinds)].reset_index(drop=True)
        self.floor_share = float(floor)
        self.distance = 0.0
        self._tree = None
        if self.floor_share > 0 and len(self.real) > 1:
            matrix = _privacy_matrix([self.real], self.kinds)[0]
            self._tree = _tree(matrix)
            seed = random_state if isinstance(random_state, (int, np.integer)) else 0
            self.distance = self.floor_share * float(np.median(real_dcr(self._tree, matrix, np.random.default_rng(seed))))

    def accept(self, synth: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the synthetic rows that are neither exact copies nor closer than the floor."""
        synth = synth[list(self.kinds)].reset_index(drop=True)
        real_hashes, synth_hashes = _row_hashes([self.real, synth], self.kinds)
        ok = ~np.isin(synth_hashes, real_hashes)
        if self._tree is not None and self.distance > 0 and ok.any():
            matrix = _privacy_matrix([self.real, synth.loc[ok]], self.kinds)[1]
            near = self._tree.query_radius(matrix, r=self.distance, count_only=True) > 0
            ok[np.flatnonzero(ok)[near]] = False
        return ok


def guard_rows(
    draw, counts: np.ndarray | None, guard: RowGuard, rng: np.random.Generator, rounds: int = 6
) -> tuple[pd.DataFrame, pd.Series | None]:
    """Draw rows until every group has its count of rows that pass ``guard``; drop what still fails.

    Args:
        draw: ``draw(counts, rng) -> (X, y, group)`` makes raw rows: ``counts[g]`` rows of group ``g`` (class
            codes for classification; one group otherwise) and the group of each row.
        counts: Rows wanted per group; a one-element array for one group.
        guard: The guard the rows must pass.
        rng: Random generator.
        rounds: Redraws at most; rows still failing after them are dropped, so fewer rows may come back.

    Returns:
        Features and target (None without one), rows in random order with a fresh RangeIndex.
    """
    need = np.asarray(counts, dtype=np.int64).copy()
    kept_X, kept_y = [], []
    for attempt in range(rounds):
        if attempt and need.sum() <= 0:
            break
        # Draw a little more than is missing after the first round: the rejection rate is known by then.
        ask = need if attempt == 0 else np.ceil(need * 1.5 + 2).astype(np.int64)
        X, y, group = draw(ask, rng)
        ok = guard.accept(X)
        take = np.zeros(len(X), dtype=bool)
        for g in np.flatnonzero(need):
            rows = np.flatnonzero(ok & (group == g))[: need[g]]
            take[rows] = True
            need[g] -= rows.size
        kept_X.append(X.loc[take])
        kept_y.append(None if y is None else y.loc[take])
    X = pd.concat(kept_X, ignore_index=True)
    y = None if kept_y[0] is None else pd.concat(kept_y, ignore_index=True)
    order = rng.permutation(len(X))
    X = X.iloc[order].reset_index(drop=True)
    if y is not None:
        y = y.iloc[order].reset_index(drop=True)
    return X, y
