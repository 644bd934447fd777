"""Annotate: labels for bought pool rows, booked in the ledger; synthetic rows booked at zero."""

from __future__ import annotations

import pandas as pd
from prefect import task

from synthloop.config import AnnotationConfig
from synthloop.splits import LabelPool
from synthloop.types import Schema


@task(name="annotate", task_run_name="annotate-rows-it{iteration}", retries=3, retry_delay_seconds=[1, 5, 15])
def annotate_rows(pool: LabelPool, index: pd.Index, schema: Schema, cfg: AnnotationConfig, ledger, iteration: int,
                  seed: int) -> tuple[pd.DataFrame, LabelPool]:
    """Buy labels for chosen pool rows from a (simulated) annotator and book their cost.

    Args:
        pool: Rows without bought labels.
        index: The pool rows to label.
        schema: Column kinds, task and classes.
        cfg: Price per label, budget and the annotator's error rate.
        ledger: The run's budget ledger (booked only after the labels arrive).
        iteration: Loop iteration.
        seed: Base seed.
    Returns:
        The newly labelled rows (features + target) and the pool without them.
    """
    from synthloop.annotation import AnnotatorSpec, SimulatedAnnotator

    rows, truth, rest = pool.take(index)
    if truth is None:
        raise ValueError("the pool holds no labels to simulate an annotator; use annotation.mode: human")
    spec = AnnotatorSpec(name="annotator", cost_per_label=cfg.cost_per_label, noise_rate=cfg.noise_rate)
    annotator = SimulatedAnnotator(spec, list(schema.classes or ()), task=schema.task, random_state=seed + 1000 * iteration)
    labels = annotator.label(truth.to_numpy())
    ledger.book("annotator", iteration, len(rows), cfg.cost_per_label)
    labelled = rows.copy()
    labelled[schema.target] = labels
    return labelled, rest
