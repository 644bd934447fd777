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
from scipy.spatial import cKDTree

from synthloop.synth._codec import _continuous_values

# A synthetic row must be at least this share of the typical real-to-real closest distance away from every real row.
DCR_FLOOR = 0.2
_FLOOR_ROWS = 300
# Rows checked against the floor first; all of them are checked only when one of these falls below it.
_PROBE_ROWS = 4000
# The guard's KD-tree works on this many leading principal directions: trees prune well in few dimensions.
_PROJECTED_DIMS = 16


class _Encoder:
    """The privacy matrix and canonical row hashes of any frame, learned once from the real rows.

    Numeric and datetime columns are standardized on the real rows (a missing value is 0 plus a missingness
    indicator when the real column has any); categorical and boolean columns are one-hot over the real levels
    plus one for missing. Row hashes use the real values' own codes, so they compare across frames.
    """

    def __init__(self, real: pd.DataFrame, kinds: Mapping[Any, str]):
        self.kinds = dict(kinds)
        self.stats: dict[Any, tuple] = {}
        for c, kind in self.kinds.items():
            if kind in ("numeric", "datetime"):
                v = _continuous_values(real[c], kind)
                obs = v[~np.isnan(v)]
                mean = obs.mean() if obs.size else 0.0
                std = obs.std() if obs.size and obs.std() > 0 else 1.0
                self.stats[c] = (mean, std, bool(np.isnan(v).any()))
            else:
                self.stats[c] = (pd.Index(real[c].astype(object).dropna().unique()),)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        out = []
        for c, kind in self.kinds.items():
            if kind in ("numeric", "datetime"):
                mean, std, flagged = self.stats[c]
                v = _continuous_values(frame[c], kind)
                z = (v - mean) / std
                out.append(np.where(np.isnan(z), 0.0, z)[:, None])
                if flagged:
                    out.append(np.isnan(v).astype(np.float64)[:, None])
            else:
                categories = self.stats[c][0]
                codes = categories.get_indexer(frame[c].astype(object))
                missing = frame[c].isna().to_numpy()
                onehot = np.zeros((len(frame), len(categories) + 1))
                known = codes >= 0
                onehot[np.flatnonzero(known), codes[known]] = 1.0
                onehot[missing, -1] = 1.0
                out.append(onehot)
        return np.hstack(out) if out else np.zeros((len(frame), 0))

    def hashes(self, frame: pd.DataFrame) -> np.ndarray:
        columns = {}
        for i, (c, kind) in enumerate(self.kinds.items()):
            if kind in ("numeric", "boolean", "datetime"):
                v = _continuous_values(frame[c], "datetime" if kind == "datetime" else "numeric")
                columns[f"c{i}"] = np.where(np.isnan(v), np.inf, v)  # one canonical missing value
            else:
                codes = self.stats[c][0].get_indexer(frame[c].astype(object))
                codes[frame[c].isna().to_numpy()] = -2
                columns[f"c{i}"] = codes
        return pd.util.hash_pandas_object(pd.DataFrame(columns), index=False).to_numpy()


def _privacy_matrix(frames: Sequence[pd.DataFrame], kinds: Mapping[Any, str]) -> list[np.ndarray]:
    """Numeric and datetime columns standardized on the first frame; categoricals one-hot."""
    encoder = _Encoder(frames[0], kinds)
    return [encoder.matrix(f) for f in frames]


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


def _nearest(reference: np.ndarray, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest reference rows of each query row, by brute force in BLAS-sized chunks.

    Trees lose to brute force beyond a dozen dimensions (one-hot columns soon get there), and a matrix product
    per chunk is what one core does fastest.
    """
    ref_sq = np.einsum("ij,ij->i", reference, reference)
    chunk = max(1, 4_000_000 // max(1, reference.shape[0]))  # about 32 MB of distances at a time
    dist = np.empty((len(queries), k))
    idx = np.empty((len(queries), k), dtype=np.int64)
    for lo in range(0, len(queries), chunk):
        q = queries[lo:lo + chunk]
        d2 = ref_sq[None, :] - 2.0 * (q @ reference.T) + np.einsum("ij,ij->i", q, q)[:, None]
        if k == 1:
            part = np.argmin(d2, axis=1)[:, None]
        elif reference.shape[0] > k:
            part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        else:
            part = np.argsort(d2, axis=1)[:, :k]
        part_d = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(part_d, axis=1)
        idx[lo:lo + chunk] = np.take_along_axis(part, order, axis=1)
        dist[lo:lo + chunk] = np.sqrt(np.clip(np.take_along_axis(part_d, order, axis=1), 0.0, None))
    return dist, idx


def real_dcr(matrix: np.ndarray, rows: int = _FLOOR_ROWS) -> np.ndarray:
    """Distance from (a fixed sample of) real rows to their closest *other* real row.

    The sample is seeded by nothing but the row count, so the guard and the report set the same floor.
    """
    n = matrix.shape[0]
    if n < 2:
        return np.zeros(0)
    pick = np.arange(n) if n <= rows else np.sort(np.random.default_rng(n).choice(n, size=rows, replace=False))
    dist, idx = _nearest(matrix, matrix[pick], k=2)
    # The closest point is the row itself unless an exact duplicate happens to come first.
    self_first = idx[:, 0] == pick
    return np.where(self_first, dist[:, 1], dist[:, 0])


class RowGuard:
    """Rejects synthetic rows that copy a real train row or sit closer to one than the DCR floor.

    Exact copies are looked for among all rows (canonical row hashes). The floor is checked on a random
    ``_PROBE_ROWS`` of the rows first, and on all of them as soon as one of those falls below it: a generator
    that does not crowd real rows (a copula on continuous columns) pays only for the probe, one that does
    (SMOTE, CART on few columns) gets every row checked. Distances are searched with a KD-tree on the real rows
    projected on their leading principal directions (at most ``_PROJECTED_DIMS``); a projection only shrinks
    distances, so a row with no real row within the floor there has none in full, and the few that have one are
    checked in full.

    Args:
        real: The real train features the generator was fitted on.
        kinds: Feature column name -> kind.
        floor: The floor as a share of the median real-to-real closest distance; 0 rejects exact copies only.
    """

    def __init__(self, real: pd.DataFrame, kinds: Mapping[Any, str], floor: float = DCR_FLOOR):
        self.kinds = dict(kinds)
        self.real = real[list(kinds)].reset_index(drop=True)
        self.floor_share = float(floor)
        self.distance = 0.0
        self._tree = None
        self._encoder = _Encoder(self.real, self.kinds)
        self._real_hashes = np.unique(self._encoder.hashes(self.real))
        if self.floor_share > 0 and len(self.real) > 1:
            matrix = self._encoder.matrix(self.real)
            self.distance = self.floor_share * float(np.median(real_dcr(matrix)))
            self._matrix = matrix
            self._mean = matrix.mean(axis=0)
            centred = matrix - self._mean
            _, _, vt = np.linalg.svd(centred[: min(len(centred), 20_000)], full_matrices=False)
            self._basis = vt[:_PROJECTED_DIMS].T
            self._tree = cKDTree(centred @ self._basis)
            self._exact = self._basis.shape[1] == matrix.shape[1]  # a rotation: projected distances are the distances

    def accept(self, synth: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the synthetic rows that are neither exact copies nor closer than the floor."""
        synth = synth[list(self.kinds)].reset_index(drop=True)
        ok = ~np.isin(self._encoder.hashes(synth), self._real_hashes, assume_unique=False)
        if self._tree is not None and self.distance > 0 and ok.any():
            rows = np.flatnonzero(ok)
            if rows.size > _PROBE_ROWS:
                probe = np.random.default_rng(rows.size).choice(rows, size=_PROBE_ROWS, replace=False)
                if not self._near(synth.loc[probe]).any():
                    return ok
            ok[rows[self._near(synth.loc[rows])]] = False
        return ok

    def _near(self, synth: pd.DataFrame) -> np.ndarray:
        """Which rows lie closer than the floor to some real row."""
        matrix = self._encoder.matrix(synth)
        projected = (matrix - self._mean) @ self._basis
        found, _ = self._tree.query(projected, k=1, distance_upper_bound=self.distance)
        near = np.isfinite(found)
        if self._exact:
            return near
        for i in np.flatnonzero(near):
            close = self._tree.query_ball_point(projected[i], r=self.distance)
            diff = self._matrix[close] - matrix[i]
            near[i] = bool(len(close)) and np.einsum("ij,ij->i", diff, diff).min() < self.distance ** 2
        return near


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
