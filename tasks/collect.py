"""Collect: real rows from a source, split once; more rows from the pool; synthetic rows for train."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import task

from synthloop.config import DataConfig, SyntheticConfig
from synthloop.faults import inject
from synthloop.memory import release_freed_memory
from synthloop.splits import LabelPool, frame_digest, labelled_subset
from synthloop.types import Collected, Schema
from synthloop.tasks.cache import COLLECT_CACHE, RESULTS, STAGE_CACHE, retry_unless_bad_input


@task(name="collect", task_run_name="collect-real-data", retries=3, retry_delay_seconds=[1, 5, 15],
      retry_condition_fn=retry_unless_bad_input, cache_policy=COLLECT_CACHE, persist_result=True,
      result_serializer=RESULTS)
def collect_data(cfg: DataConfig, seed: int):
    """Load the source, check it, infer the schema and split train / validation / sealed test once.

    Args:
        cfg: The data section of the config.
        seed: Seed of the split.
    Returns:
        The collected real rows (train, validation, label pool) and the sealed test split.
    """
    from synthloop import data

    inject("collect")
    source_name = data.redact_url(cfg.source)
    from synthloop.preflight import checked_split, take_checked

    checked = take_checked(cfg, seed)  # `synthloop run` checked this file, with these settings, a moment ago
    if checked is None:
        try:
            raw = data.load_table(cfg.source, table=cfg.table, query=cfg.query)
        except data.DataError as exc:  # a database that could not be read may answer on the next try
            exc.retryable = "://" in cfg.source and "cannot be read" in str(exc)
            raise
        target = cfg.target or data.guess_target(list(raw.columns), source_name)
        checked = checked_split(raw, cfg, target, seed, source_name)
        del raw  # the split holds what is needed
    schema, notes, n_rows, train, val, sealed = checked
    del checked
    target = schema.target
    n_labelled = len(train)
    initial = cfg.initial_labelled
    if initial is None and cfg.strategy == "from_scratch":
        initial = max(50.0, 0.05 * len(train))
    if initial is not None:
        n_labelled = int(initial if initial >= 1 else round(initial * len(train)))
        n_labelled = max(n_labelled, len(schema.classes or ()) * 2, 2)
    labelled, pool = labelled_subset(train, schema, n_labelled, seed)
    lineage = {
        "source": source_name, "strategy": cfg.strategy, "rows": n_rows, "columns": len(schema.kinds), "task": schema.task,
        "target": target, "train_rows": len(labelled), "pool_rows": len(pool), "val_rows": len(val),
        "test_rows": sealed.n_rows, "train_digest": frame_digest(labelled), "val_digest": frame_digest(val),
        "test_digest": sealed.digest, "dropped": schema.dropped,
    }
    release_freed_memory()  # the loaded table, its parser's chunks and the prepared frame are gone
    return Collected(schema, labelled, val, pool, lineage, tuple(notes)), sealed


@task(name="collect-pool", task_run_name="collect-pool-rows-it{iteration}", retries=3, retry_delay_seconds=[1, 5, 15],
      retry_condition_fn=retry_unless_bad_input, cache_policy=STAGE_CACHE, persist_result=True,
      result_serializer=RESULTS)
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


@task(name="choose-generator", task_run_name="choose-generator-it{iteration}", cache_policy=STAGE_CACHE,
      persist_result=True, result_serializer=RESULTS)
def choose_generator(train: pd.DataFrame, schema: Schema, cfg: SyntheticConfig, iteration: int, threads: int,
                     seed: int, metric: str | None = None) -> tuple[str, dict[str, float]]:
    """The generator to use: the configured one, or for "auto" the one with the best utility on train.

    Args:
        train: Real labelled train rows (features + target); validation is never used for the choice.
        schema: Column kinds and task.
        cfg: The synthetic section (`generator`, `ratio`).
        iteration: Loop iteration.
        threads: Cores the choice may use: that many one-thread jobs at a time.
        seed: Base seed.
        metric: The goal metric; classification scores use it (log loss negated), regression scores R^2.
    Returns:
        The generator's name and the evidence of the choice (cross-validated scores; empty when configured).
    """
    if cfg.generator != "auto":
        return cfg.generator, {}
    from synthloop.synth import select_generator

    # Its (fold, generator) jobs are small fits on at most 2,000 rows, each capped at one thread: `threads` of them
    # at a time, in forks of this process where it can fork (`synthloop.parallel.can_fork`).
    return select_generator(train[schema.features], train[schema.target], schema.kinds, schema.task,
                            ratio=cfg.ratio, random_state=seed + iteration, metric=metric, slots=max(1, threads))


@task(name="synthesize", task_run_name="synthesize-rows-it{iteration}", cache_policy=STAGE_CACHE, persist_result=True,
      result_serializer=RESULTS)
def synthesize_rows(train: pd.DataFrame, schema: Schema, cfg: SyntheticConfig, iteration: int, seed: int,
                    balance: bool = False, generator: str | None = None):
    """Fit a generator to the real train rows and sample synthetic rows (labels exact and free).

    Args:
        train: Real labelled train rows (features + target).
        schema: Column kinds and task.
        cfg: Generator and how many synthetic rows per real row.
        iteration: Loop iteration.
        seed: Base seed.
        balance: Sample classes in equal shares (to lift a class the model misses), not in observed shares.
        generator: The generator to fit (what `choose_generator` returned); None takes `cfg.generator`, and
            "auto" there falls back to "cart".
    Returns:
        Synthetic features and their target as a Series.
    """
    from threadpoolctl import threadpool_limits

    from synthloop.env import default_threads, fit_threads
    from synthloop.synth import make_generator

    name = generator or cfg.generator
    gen = make_generator("cart" if name == "auto" else name, schema.kinds, random_state=seed + iteration)
    n = max(1, int(round(cfg.ratio * len(train))))
    weights = "balanced" if balance and schema.task == "classification" else None
    with threadpool_limits(fit_threads(default_threads(), len(train), len(schema.features))):
        gen.fit(train[schema.features], train[schema.target], task=schema.task)
        X_syn, y_syn = gen.sample(n, random_state=seed + iteration, class_weights=weights)
    return X_syn[schema.features], pd.Series(np.asarray(y_syn), name=schema.target)


@task(name="synthetic-report", task_run_name="synthetic-report-it{iteration}")
def assess_synthetic(train: pd.DataFrame, X_syn: pd.DataFrame, y_syn: pd.Series, val: pd.DataFrame, schema: Schema,
                     iteration: int, threads: int, seed: int) -> dict[str, float]:
    """Fidelity, utility and privacy of a synthetic set, measured against real train and validation rows.

    Args:
        train: The real rows the generator was fitted to.
        X_syn, y_syn: The synthetic rows.
        val: Real validation rows (utility is scored on them; they are the privacy baseline's holdout too).
        schema: Column kinds and task.
        iteration: Loop iteration.
        threads: Threads the utility models may use.
        seed: Random seed.
    Returns:
        Flat metrics: fidelity_*, utility_*, privacy_*.
    """
    from threadpoolctl import threadpool_limits

    from synthloop.env import fit_threads
    from synthloop.synth import quality_report

    f = schema.features
    with threadpool_limits(fit_threads(threads, len(train) + len(X_syn), len(f))):
        return quality_report(train[f], train[schema.target], X_syn, y_syn, schema.kinds, schema.task,
                              holdout_X=val[f], holdout_y=val[schema.target], val_X=val[f], val_y=val[schema.target],
                              random_state=seed)


@task(name="collect-pretrain", task_run_name="collect-pretrain-data", retries=3, retry_delay_seconds=[1, 5, 15])
def collect_pretrain_data(cfg: DataConfig, synthetic: SyntheticConfig, train: pd.DataFrame, schema: Schema, seed: int):
    """The large set to pre-train on: synthetic rows fitted to the real train split, a simulator, or a table.

    Args:
        cfg: The data section (pretrain_source, pretrain_rows).
        synthetic: Generator settings, when pretrain_source is "synthetic".
        train: The real labelled train rows.
        schema: Column kinds and task of the real data; a pre-training table must have the same columns.
        seed: Random seed.
    Returns:
        Features and target (a Series named as the real target) of the pre-training set.
    """
    from synthloop import data
    from synthloop.errors import ConfigError, DataError
    from synthloop.synth import make_generator, select_generator

    source = cfg.pretrain_source or "synthetic"
    if source == "synthetic":
        name = synthetic.generator
        if name == "auto":
            name, _ = select_generator(train[schema.features], train[schema.target], schema.kinds, schema.task,
                                       random_state=seed)
        gen = make_generator(name, schema.kinds, random_state=seed)
        gen.fit(train[schema.features], train[schema.target], task=schema.task)
        X, y = gen.sample(cfg.pretrain_rows, random_state=seed)
        return X[schema.features], pd.Series(np.asarray(y), name=schema.target)
    frame = data.load_table(source)
    if schema.target not in frame.columns and "target" in frame.columns:
        frame = frame.rename(columns={"target": schema.target})
    missing = [c for c in schema.features + [schema.target] if c not in frame.columns]
    if missing:
        if source.lower().startswith("simulate:"):
            raise ConfigError(f"data.pretrain_source {source}: a simulator makes columns x0..xN, but the real data "
                              f"has {', '.join(map(str, schema.features[:5]))} ...; use it as data.source, or "
                              "pre-train on 'synthetic'")
        raise DataError(f"{data.redact_url(source)}: pre-training table lacks columns {missing[:5]} of the real data")
    prepared, _ = data.prepare_frame(frame, schema)
    if schema.task == "classification":
        prepared = prepared[prepared[schema.target].isin(schema.classes)]
    prepared = prepared.sample(n=min(cfg.pretrain_rows, len(prepared)), random_state=seed)
    return prepared[schema.features], prepared[schema.target]
