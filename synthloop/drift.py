"""Drift of the feature distributions between a reference sample and fresh data.

Per feature: the population stability index (PSI) for numeric and categorical columns, and for
numeric columns the two-sample Kolmogorov–Smirnov p-value too. PSI reads as: below 0.1 stable,
0.1–0.25 moderate, above 0.25 major. The reference is the data the current champion was trained on,
kept as a sample (`reference/features.parquet`) among the artifacts of its MLflow run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

REFERENCE_ARTIFACT = "reference/features.parquet"
REFERENCE_KINDS = "reference/kinds.json"
_EPS = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    """The drift of one feature."""

    feature: str
    kind: str
    psi: float
    ks_pvalue: float | None
    level: str  # "stable", "moderate", "major"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def psi_level(psi: float) -> str:
    return "stable" if psi < 0.1 else "moderate" if psi < 0.25 else "major"


def _psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    r = np.clip(ref_share, _EPS, None)
    c = np.clip(cur_share, _EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    """PSI over the reference's quantile bins (missing values are a bin of their own)."""
    ref = pd.to_numeric(reference, errors="coerce").astype(float)
    cur = pd.to_numeric(current, errors="coerce").astype(float)
    present = ref.dropna().to_numpy()
    if not len(present):
        return 0.0
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))

    def shares(values: pd.Series) -> np.ndarray:
        v = values.to_numpy()
        counts = np.bincount(np.searchsorted(edges, v[~np.isnan(v)], side="right"), minlength=len(edges) + 1)
        return np.append(counts, np.isnan(v).sum()) / max(1, len(v))

    return _psi(shares(ref), shares(cur))


def categorical_psi(reference: pd.Series, current: pd.Series) -> float:
    """PSI over the categories seen in either sample (missing values are a category of their own)."""
    ref = reference.astype(object).where(reference.notna(), "<missing>").astype(str)
    cur = current.astype(object).where(current.notna(), "<missing>").astype(str)
    cats = sorted(set(ref.unique()) | set(cur.unique()))
    r = ref.value_counts(normalize=True).reindex(cats, fill_value=0.0).to_numpy()
    c = cur.value_counts(normalize=True).reindex(cats, fill_value=0.0).to_numpy()
    return _psi(r, c)


def ks_pvalue(reference: pd.Series, current: pd.Series) -> float | None:
    from scipy.stats import ks_2samp

    ref = pd.to_numeric(reference, errors="coerce").dropna().to_numpy(dtype=float)
    cur = pd.to_numeric(current, errors="coerce").dropna().to_numpy(dtype=float)
    if len(ref) < 2 or len(cur) < 2:
        return None
    return float(ks_2samp(ref, cur).pvalue)


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, kinds: dict[str, str]) -> list[FeatureDrift]:
    """Drift of every feature both frames share, most drifted first.

    Args:
        reference: The sample the champion was trained on.
        current: The fresh data.
        kinds: Feature name -> "numeric", "categorical", "boolean" or "datetime".
    Returns:
        One FeatureDrift per shared feature, sorted by PSI (highest first).
    """
    out = []
    for col, kind in kinds.items():
        if col not in reference.columns or col not in current.columns:
            continue
        ref, cur = reference[col], current[col]
        if kind == "datetime":
            ref = pd.to_datetime(ref, errors="coerce").astype("int64").where(ref.notna())
            cur = pd.to_datetime(cur, errors="coerce").astype("int64").where(cur.notna())
            kind_used = "numeric"
        else:
            kind_used = kind
        if kind_used == "numeric":
            value, p = numeric_psi(ref, cur), ks_pvalue(ref, cur)
        else:
            value, p = categorical_psi(ref, cur), None
        out.append(FeatureDrift(str(col), kind, round(value, 6), None if p is None else round(p, 6), psi_level(value)))
    return sorted(out, key=lambda d: -d.psi)


def reference_sample(frame: pd.DataFrame, features: list[str], rows: int, seed: int) -> pd.DataFrame:
    """A reproducible sample of at most `rows` rows of the features, the profile later data is compared with."""
    sample = frame[features]
    if len(sample) > rows:
        sample = sample.sample(n=rows, random_state=seed)
    return sample.reset_index(drop=True)


def summarize(drifts: list[FeatureDrift], alert: float) -> str:
    """One line: how many features drifted and the worst ones."""
    if not drifts:
        return "drift: no shared features to compare"
    major = [d for d in drifts if d.psi >= alert]
    worst = ", ".join(f"{d.feature} PSI {d.psi:.3f}" + (f" (KS p {d.ks_pvalue:.3g})" if d.ks_pvalue is not None else "")
                      for d in drifts[:3])
    return (f"drift: {len(major)} of {len(drifts)} features at PSI >= {alert:g}; largest: {worst}")
