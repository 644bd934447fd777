"""Retrain stages: drift against the champion's data, champion vs challenger on fresh validation rows, promotion."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from synthloop.types import Collected, Schema


def _features(collected: Collected) -> pd.DataFrame:
    """The train split's features, labelled rows and pool alike: what the data looks like now."""
    feats = collected.schema.features
    parts = [collected.train[feats]]
    if len(collected.pool):
        parts.append(collected.pool.features[feats])
    return pd.concat(parts, ignore_index=True)


@task(name="measure-drift", task_run_name="measure-drift", cache_policy=NO_CACHE)
def measure_drift(collected: Collected, client, champion_run_id: str | None) -> dict[str, Any]:
    """Per-feature PSI (and KS p-value for numeric features) of the fresh data against the champion's.

    Args:
        collected: The freshly collected data.
        client: An MlflowClient on the store.
        champion_run_id: The MLflow run that produced the champion, or None.
    Returns:
        {"measured": bool, "note": str, "features": [FeatureDrift as dicts]}.
    """
    from synthloop import drift

    if champion_run_id is None:
        return {"measured": False, "note": "no champion yet: nothing to measure drift against", "features": []}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(champion_run_id, drift.REFERENCE_ARTIFACT, tmp)
        except Exception:  # the champion was made by a plain `synthloop run` and promoted by hand
            return {"measured": False, "features": [],
                    "note": f"the champion's run {champion_run_id} has no reference sample ({drift.REFERENCE_ARTIFACT}); "
                            "drift is measured once a retrain has produced the champion"}
        reference = pd.read_parquet(path)
    drifts = drift.feature_drift(reference, _features(collected), collected.schema.kinds)
    return {"measured": True, "note": "", "features": [d.to_dict() for d in drifts]}


@task(name="save-reference", task_run_name="save-reference-sample", cache_policy=NO_CACHE)
def save_reference(collected: Collected, tracker, run_id: str, rows: int, seed: int) -> str:
    """Keep a sample of the data a model was trained on among its run's artifacts, for later drift checks."""
    from synthloop import drift

    sample = drift.reference_sample(_features(collected), collected.schema.features, rows, seed)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(drift.REFERENCE_ARTIFACT).name
        sample.to_parquet(local, index=False)
        tracker.client.log_artifact(run_id, str(local), str(Path(drift.REFERENCE_ARTIFACT).parent))
    tracker.log_dict(run_id, dict(collected.schema.kinds), drift.REFERENCE_KINDS)
    return drift.REFERENCE_ARTIFACT


def score_model(model, X: pd.DataFrame, y: pd.Series, schema: Schema) -> dict[str, float]:
    """Metrics of a registered model on labelled rows, its classes aligned with the schema's."""
    from synthloop.models import compute_metrics
    from synthloop.splits import encode_target

    if schema.task == "regression":
        return compute_metrics("regression", y.to_numpy(dtype=float), np.asarray(model.predict(X), dtype=float))
    classes = list(schema.classes)
    proba_model = np.asarray(model.predict_proba(X))
    proba = np.zeros((len(X), len(classes)))
    for j, c in enumerate(list(getattr(model, "classes_", classes))):
        if c in classes:
            proba[:, classes.index(c)] = proba_model[:, j]
    y_enc = encode_target(y, schema)
    return compute_metrics("classification", y_enc, proba.argmax(axis=1), proba, len(classes))


@task(name="compare-models", task_run_name="compare-champion-challenger", cache_policy=NO_CACHE)
def compare_models(collected: Collected, challenger_uri: str, champion_uri: str | None,
                   metric: str, tracking_uri: str) -> dict[str, Any]:
    """Both models scored on the same fresh validation rows (never the test split).

    Returns:
        {"challenger": metrics, "champion": metrics or None, "champion_error": str or None, "rows": n}.
    """
    from synthloop.modelstore import load_model

    schema = collected.schema
    X, y = collected.val[schema.features], collected.val[schema.target]
    out: dict[str, Any] = {"rows": len(X), "champion": None, "champion_error": None}
    out["challenger"] = score_model(load_model(challenger_uri, tracking_uri), X, y, schema)
    if champion_uri is not None:
        try:
            out["champion"] = score_model(load_model(champion_uri, tracking_uri), X, y, schema)
        except Exception as exc:  # a column the champion needs is gone from the fresh data; its files changed
            out["champion_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return out


@task(name="promote", task_run_name="promote-if-better", cache_policy=NO_CACHE)
def promote_if_better(client, name: str, challenger_version: str, comparison: dict[str, Any], metric: str,
                      margin: float, champion_version: str | None, same_rows: bool,
                      goal_met: bool = True) -> dict[str, Any]:
    """Move the `champion` alias to the challenger only when its run met its goal and it is better by the margin;
    say why either way."""
    from synthloop import registry

    if not goal_met:
        kept = "champion kept" if champion_version else "no champion yet"
        return {"promoted": False, "champion": champion_version,
                "reason": f"the challenger's run missed its goal, so it is not served by default; {kept}"}

    challenger_score = comparison["challenger"].get(metric, float("nan"))
    if not same_rows:
        return {"promoted": False, "champion": champion_version,
                "reason": "the challenger's validation rows differ from the rows scored here (the source changed "
                          "during the run); champion kept"}
    if not np.isfinite(challenger_score):
        return {"promoted": False, "champion": champion_version,
                "reason": f"the challenger's {metric} could not be computed on validation; champion kept"}
    champion_score = (comparison["champion"] or {}).get(metric)
    promote, reason = registry.decide(metric, challenger_score, champion_score, margin, champion_version)
    if comparison.get("champion_error"):
        reason += f" (champion error: {comparison['champion_error']})"
    if promote:
        change = registry.promote(client, name, challenger_version, reason)
        return {"promoted": True, "champion": change.champion, "previous": change.previous, "reason": reason}
    return {"promoted": False, "champion": champion_version, "reason": reason}
