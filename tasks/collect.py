"""Collect: real rows from a source, split once; more rows from the pool; synthetic rows for train."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import task

from synthloop.config import DataConfig, SyntheticConfig
from synthloop.splits import LabelPool, frame_digest, labelled_subset, split_frame
from synthloop.types import Collected, Schema


@task(name="collect", task_run_name="collect-real-data", retries=3, retry_delay_seconds=[1, 5, 15])
def collect_data(cfg: DataConfig, seed: int):
    """Load the source, check it, infer the schema and split train / validation / sealed test once.

    Args:
        cfg: The data section of the config.
        seed: Seed of the split.
    Returns:
        The collected real rows (train, validation, label pool) and the sealed test split.
    """
    from synthloop import data

    source_name = data.redact_url(cfg.source)
    raw = data.load_table(cfg.source, table=cfg.table, query=cfg.query)
    target = cfg.target or _guess_target(raw, source_name)
    data.check_frame(raw, target, source_name=source_name, task=cfg.task)
    schema, notes = data.infer_schema(raw, target, task=cfg.task, column_types=cfg.column_types,
                                      drop=cfg.drop_columns)
    frame, prep_notes = data.prepare_frame(raw, schema)
    notes = list(notes) + list(prep_notes)
    if schema.task == "classification":
        data.check_frame(frame, target, source_name=source_name, task="classification")
    train, val, sealed = split_frame(frame, schema, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                                     seed=seed, source_name=source_name)
    n_labelled = len(train)
    if cfg.initial_labelled is not None:
        n_labelled = int(cfg.initial_labelled if cfg.initial_labelled >= 1 else round(cfg.initial_labelled * len(train)))
        n_labelled = max(n_labelled, len(schema.classes or ()) * 2, 2)
    labelled, pool = labelled_subset(train, schema, n_labelled, seed)
    lineage = {
        "source": source_name, "rows": len(frame), "columns": len(schema.kinds), "task": schema.task,
        "target": target, "train_rows": len(labelled), "pool_rows": len(pool), "val_rows": len(val),
        "test_rows": sealed.n_rows, "train_digest": frame_digest(labelled), "val_digest": frame_digest(val),
        "test_digest": sealed.digest, "dropped": schema.dropped,
    }
    return Collected(schema, labelled, val, pool, lineage, tuple(notes)), sealed


def _guess_target(frame: pd.DataFrame, source_name: str) -> str:
    from synthloop.errors import DataError

    for name in ("target", "label", "y", "class"):
        if name in frame.columns:
            return name
    raise DataError(f"{source_name}: no target column given; pass --target COLUMN "
                    f"(columns: {', '.join(map(str, frame.columns[:8]))}{' ...' if frame.shape[1] > 8 else ''})")


@task(name="collect-pool", task_run_name="collect-pool-rows-it{iteration}", retries=3, retry_delay_seconds=[1, 5, 15])
def select_pool_rows(pool: LabelPool, n: int, strategy: str, model, iteration: int, seed: int) -> pd.Index:
    """Choose which pool rows to buy labels for.

    Args:
        pool: Train rows whose labels are not bought yet.
        n: How many rows to buy.
        strategy: "uncertainty", "margin" or "random".
        model: The current fitted pipeline (for uncertainty), or None.
        iteration: Loop iteration (names the task run and seeds the choice).
        seed: Base seed.
    Returns:
        Index labels of the chosen pool rows.
    """
    from synthloop.annotation import select_rows

    n = min(n, len(pool))
    proba = None
    if strategy != "random" and model is not None and hasattr(model, "predict_proba"):
        proba = model.predict_proba(pool.features)
    elif strategy != "random":
        strategy = "random"
    chosen = select_rows(n, strategy=strategy, proba=proba, candidates=np.arange(len(pool)),
                         random_state=seed + iteration)
    return pool.features.index[np.asarray(chosen, dtype=int)]


@task(name="synthesize", task_run_name="synthesize-rows-it{iteration}")
def synthesize_rows(train: pd.DataFrame, schema: Schema, cfg: SyntheticConfig, iteration: int, seed: int):
    """Fit a generator to the real train rows and sample synthetic rows (labels exact and free).

    Args:
        train: Real labelled train rows (features + target).
        schema: Column kinds and task.
        cfg: Generator and how many synthetic rows per real row.
        iteration: Loop iteration.
        seed: Base seed.
    Returns:
        Synthetic features and their target as a Series.
    """
    from synthloop.synth import make_generator

    gen = make_generator(cfg.generator, schema.kinds, random_state=seed + iteration)
    gen.fit(train[schema.features], train[schema.target], task=schema.task)
    n = max(1, int(round(cfg.ratio * len(train))))
    X_syn, y_syn = gen.sample(n, random_state=seed + iteration)
    return X_syn[schema.features], pd.Series(np.asarray(y_syn), name=schema.target)
