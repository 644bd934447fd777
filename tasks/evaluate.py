"""Test: the sealed test split, opened once after the loop, scores the chosen model."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from synthloop.faults import inject
from synthloop.splits import SealedTest, encode_target
from synthloop.types import Schema


@task(name="test", task_run_name="evaluate-on-holdout", retries=0, cache_policy=NO_CACHE)  # opened once: never reused
def evaluate_on_holdout(model, sealed: SealedTest, schema: Schema) -> dict[str, float]:
    """Open the sealed test split (once) and score the chosen model on it.

    Args:
        model: The fitted pipeline chosen on validation.
        sealed: The sealed test split; opening it a second time raises.
        schema: Column kinds, task and classes.
    Returns:
        Test metrics.
    """
    from synthloop.models import compute_metrics, predict

    inject("test")
    test = sealed.open()
    y = encode_target(test[schema.target], schema)
    pred, proba = predict(model, test[schema.features], schema.task)
    return compute_metrics(schema.task, y, pred, proba, len(schema.classes) if schema.classes else None)
