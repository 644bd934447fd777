"""The stages on a Dask cluster: thin Prefect tasks over `synthloop.cluster_data`, `cluster_model` and `cluster_loop`.

Nothing here is cached or persisted by Prefect: the stages' values are Dask collections that live on the cluster
for the length of one flow run.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from synthloop.cluster_data import ClusterData, SealedClusterTest
from synthloop.cluster_model import ClusterFit, Matrices
from synthloop.config import DaskConfig, DataConfig, GoalConfig
from synthloop.faults import inject
from synthloop.models import ModelSpec
from synthloop.tasks.cache import retry_unless_bad_input
from synthloop.types import ValidationReport

_CLUSTER = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="collect", task_run_name="collect-dataset", retries=3, retry_delay_seconds=[1, 5, 15],
      retry_condition_fn=retry_unless_bad_input, **_CLUSTER)
def collect_on_cluster(client, cfg: DataConfig, dask: DaskConfig, seed: int) -> tuple[ClusterData, SealedClusterTest]:
    """Sample the dataset, infer its schema, then check, prepare and hash-split every part on the cluster.

    Args:
        client: The cluster's client.
        cfg: The data section (source, target, task, column kinds, split fractions).
        dask: The dask section (`sample_rows`, `split_key`).
        seed: Salts the split and seeds the sample.
    Returns:
        Train and validation rows on the cluster with the schema and lineage, and the sealed test rows.
    """
    from synthloop.cluster_data import collect_dataset

    inject("collect")
    return collect_dataset(client, cfg.source, target=cfg.target, task=cfg.task, column_types=cfg.column_types,
                           drop=cfg.drop_columns, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                           seed=seed, sample_rows=dask.sample_rows, split_key=dask.split_key, leak_check=cfg.leak_check)


@task(name="preprocess", task_run_name="preprocess-on-sample", **_CLUSTER)
def preprocess_on_cluster(client, data: ClusterData) -> tuple[Any, Matrices]:
    """Fit the preprocessor on the driver's sample and apply it to every train and validation partition.

    Returns:
        The fitted preprocessor and the model inputs, persisted on the cluster.
    """
    from synthloop.cluster_model import fit_preprocessor, model_inputs

    pre = fit_preprocessor(data)
    return pre, model_inputs(client, data, pre)


@task(name="train", task_run_name="train-it{iteration}", **_CLUSTER)
def train_on_cluster(client, m: Matrices, spec: ModelSpec, data: ClusterData, iteration: int, seed: int) -> ClusterFit:
    """Train the xgboost design with `xgboost.dask` on the train partitions, early-stopping on validation.

    Args:
        client: The cluster's client.
        m: Model inputs on the cluster.
        spec: The xgboost design.
        data: Schema and split sizes.
        iteration: Loop iteration.
        seed: xgboost's seed.
    Returns:
        The booster (cut at its best round) and its loss curves.
    """
    from synthloop.cluster_model import train_booster

    inject("train")
    return train_booster(client, m, spec, data.schema, seed=seed, n_rows=int(data.lineage["train_rows"]))


@task(name="validate", task_run_name="validate-it{iteration}", **_CLUSTER)
def validate_on_cluster(client, data: ClusterData, m: Matrices, fit: ClusterFit, goal: GoalConfig, prior,
                        iteration: int, seed: int, learning_curve: bool = True, reference: ClusterFit | None = None,
                        reference_score: float | None = None) -> ValidationReport:
    """Validation metrics, the baseline and the diagnosis, all computed on the cluster (see
    `synthloop.cluster_loop.validate_fit`); with the best fit so far as `reference`, the paired noise of the gain."""
    from synthloop.cluster_loop import validate_fit

    inject("validate")
    return validate_fit(client, data, m, fit, goal, prior, seed=seed, learning_curve=learning_curve,
                        reference=reference, reference_score=reference_score)


@task(name="design", task_run_name="design-search-it{iteration}", **_CLUSTER)
def search_on_cluster(client, data: ClusterData, m: Matrices, candidates: list[ModelSpec], metric: str, prior,
                      iteration: int, seed: int) -> list[dict[str, Any]]:
    """Train a few xgboost designs on the cluster and score each on validation, best first.

    Returns:
        One dict per design: spec, fit, validation metrics and the oriented score.
    """
    from synthloop.cluster_model import cluster_stats, metrics_from_stats, train_booster
    from synthloop.judge import oriented

    schema = data.schema
    k = len(schema.classes) if schema.classes else None
    out = []
    for spec in candidates:
        fit = train_booster(client, m, spec, schema, seed=seed, n_rows=int(data.lineage["train_rows"]))
        metrics = metrics_from_stats(cluster_stats(client, m.val, fit.booster, m.features, schema.task, k, prior),
                                     schema.task)
        out.append({"spec": spec, "fit": fit, "metrics": metrics, "score": oriented(metric, metrics[metric])})
    return sorted(out, key=lambda t: -t["score"])


@task(name="test", task_run_name="evaluate-on-holdout", retries=0, **_CLUSTER)  # opened once: never retried
def evaluate_on_cluster(client, sealed: SealedClusterTest, data: ClusterData, pre, fit: ClusterFit) -> dict[str, float]:
    """Open the sealed test rows (once) and score the chosen booster on them, on the cluster."""
    from synthloop.cluster_model import cluster_stats, metrics_from_stats, output_width, transform_test

    inject("test")
    test = transform_test(data, sealed.open(), pre)
    schema = data.schema
    k = len(schema.classes) if schema.classes else None
    features = [f"f{i}" for i in range(output_width(pre, data))]
    return metrics_from_stats(cluster_stats(client, test, fit.booster, features, schema.task, k, None if k is None
                                            else [1.0 / k] * k), schema.task)
