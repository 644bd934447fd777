"""Annotate: labels for bought pool rows and re-labels for flagged rows, every vote booked in the ledger.

Simulated annotators (several, with votes combined by majority or Dawid–Skene) serve benchmarks and tests;
`annotation.mode: human` asks a person instead: the rows go to a CSV in the run's folder and the flow run
pauses (Prefect shows it as Paused, waiting for input) until it is resumed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.input import RunInput
from pydantic import Field

from synthloop.config import AnnotationConfig
from synthloop.faults import inject
from synthloop.errors import BudgetError, ConfigError
from synthloop.splits import LabelPool
from synthloop.types import Schema
from synthloop.tasks.cache import retry_unless_bad_input


class LabelsWritten(RunInput):
    """What resuming a flow run that waits for labels tells it."""

    done: bool = Field(True, description="The label file is filled in (column 'label'); read it now")


# Not cached: it books the cost in the run's ledger, which a cached result would skip.
@task(name="annotate", task_run_name="annotate-rows-it{iteration}", retries=3, retry_delay_seconds=[1, 5, 15],
      retry_condition_fn=retry_unless_bad_input)
def annotate_rows(pool: LabelPool, index: pd.Index, schema: Schema, cfg: AnnotationConfig, ledger, iteration: int,
                  seed: int, book=None) -> tuple[pd.DataFrame, LabelPool]:
    """Buy labels for chosen pool rows from the (simulated) annotators and book every vote's cost.

    Args:
        pool: Rows without bought labels.
        index: The pool rows to label.
        schema: Column kinds, task and classes.
        cfg: Annotators, votes per item, aggregation, price and budget.
        ledger: The run's budget ledger (booked only after the labels arrive, per annotator).
        iteration: Loop iteration.
        seed: Base seed.
        book: The run's :class:`synthloop.labelling.LabelBook` (votes and, privately, the truth); a fresh
            one when None.
    Returns:
        The newly labelled rows (features + target) and the pool without them.
    Raises:
        BudgetError: If the votes would cost more than the budget left (nothing is booked then).
        ConfigError: If the pool has no hidden labels to simulate annotators from.
    """
    from synthloop.annotation import SimulatedAnnotator
    from synthloop.labelling import LabelBook, item_cost, voters

    inject("annotate")
    rows, truth, rest = pool.take(index)
    if truth is None:
        raise ConfigError("the pool holds no labels to simulate an annotator; use annotation.mode: human")
    if book is None:
        book = LabelBook(schema.classes, truth=truth.iloc[:0])
    book.record_truth(truth)
    _check_affordable(ledger, len(rows), item_cost(cfg), iteration)
    cast: Counter[str] = Counter()
    for j, spec in enumerate(voters(cfg)):
        annotator = SimulatedAnnotator(spec, list(schema.classes or ()), task=schema.task,
                                       random_state=seed + 1000 * iteration + j)
        book.add_votes(rows.index, spec.name, book.simulate(rows.index, annotator))
        cast[spec.name] += 1
    _book_votes(ledger, cfg, cast, len(rows), iteration, "label")
    labelled = rows.copy()
    labelled[schema.target] = _typed(book.combine(rows.index, cfg.aggregation, seed=seed + iteration), schema)
    return labelled, rest


@task(name="reannotate", task_run_name="reannotate-rows-it{iteration}", retries=3, retry_delay_seconds=[1, 5, 15])
def reannotate_rows(labelled: pd.DataFrame, index: pd.Index, schema: Schema, cfg: AnnotationConfig, ledger, book,
                    iteration: int, seed: int) -> tuple[pd.DataFrame, int]:
    """Re-label flagged rows with more votes (or a better annotator's) and book the votes.

    A row labelled at the start has its given label counted as one vote of the source "data".

    Args:
        labelled: The real labelled train rows.
        index: The flagged rows to re-label.
        schema: Column kinds, task and classes.
        cfg: `reannotate_votes`, `reannotate_by`, `aggregation`, annotators and budget.
        ledger: The run's budget ledger.
        book: The run's LabelBook (holds the votes; simulates annotators from the hidden truth).
        iteration: Loop iteration.
        seed: Base seed.
    Returns:
        The labelled rows with the new labels, and how many labels changed.
    """
    from synthloop.annotation import SimulatedAnnotator
    from synthloop.labelling import item_cost, voters

    _check_affordable(ledger, len(index), item_cost(cfg, relabel=True), iteration)
    given = labelled.loc[index, schema.target]
    fresh = [i for i in index if book.n_votes(i) == 0]
    book.add_votes(fresh, "data", given.loc[fresh].to_numpy())
    cast: Counter[str] = Counter()
    for j, spec in enumerate(voters(cfg, relabel=True)):
        annotator = SimulatedAnnotator(spec, list(schema.classes or ()), task=schema.task,
                                       random_state=seed + 1000 * iteration + 500 + j)
        book.add_votes(index, spec.name, book.simulate(index, annotator))
        cast[spec.name] += 1
    _book_votes(ledger, cfg, cast, len(index), iteration, "relabel")
    new = _typed(book.combine(index, cfg.aggregation, only=cfg.reannotate_by, seed=seed + iteration), schema)
    out = labelled.copy()
    out.loc[index, schema.target] = new
    changed = int((pd.Series(new, index=index) != given).sum())
    return out, changed


def human_labels(rows: pd.DataFrame, schema: Schema, cfg: AnnotationConfig, ledger, iteration: int, folder: Path,
                 say: Callable[[str], None], current: pd.Series | None = None) -> pd.Series:
    """Ask a person for labels: write the rows as a CSV, pause the flow run, read the file back when resumed.

    Called from the flow (not a task): the flow run itself shows as Paused in Prefect, waiting for input.
    A file with problems is reported, left as it is, and the run pauses again until it is fixed.

    Args:
        rows: The rows to label (features; index = row id).
        schema: Column kinds and classes.
        cfg: `cost_per_label`, `human_timeout_s`, `human_poll_s`.
        ledger: The run's budget ledger (booked once the labels are read, source "human").
        iteration: Loop iteration (names the file).
        folder: The run's label folder.
        say: Progress for the terminal and the Prefect log.
        current: Given labels when flagged labels are reviewed (written as `current_label`).
    Returns:
        The labels, indexed like `rows`.
    """
    from prefect.flow_runs import pause_flow_run

    from synthloop.human import LABEL_COLUMN, LabelFileError, read_labels, write_request

    kind = "relabel" if current is not None else "label"
    _check_affordable(ledger, len(rows), cfg.cost_per_label, iteration)
    path = write_request(folder / f"iteration-{iteration}{'-review' if current is not None else ''}.csv",
                         rows[schema.features], current)
    say(f"  annotate (human): {len(rows)} rows to {'review' if current is not None else 'label'} in {path}; fill "
        f"the '{LABEL_COLUMN}' column, then resume the flow run (Prefect UI: Resume)")
    attempt = 0
    while True:
        attempt += 1
        pause_flow_run(wait_for_input=LabelsWritten, timeout=cfg.human_timeout_s, poll_interval=cfg.human_poll_s,
                       key=f"labels-it{iteration}-{kind}-{attempt}")
        try:
            labels = read_labels(path, list(rows.index), schema.classes)
        except LabelFileError as exc:
            say(f"  annotate (human): {exc}")
            continue
        break
    ledger.book("human", iteration, len(rows), cfg.cost_per_label, kind=kind)
    say(f"  annotate (human): read {len(labels)} labels from {path}")
    return labels


def _check_affordable(ledger, n_items: int, cost_per_item: float, iteration: int) -> None:
    if n_items > ledger.affordable(cost_per_item):
        raise BudgetError(f"labelling {n_items} rows at {cost_per_item:g} each in iteration {iteration} would exceed "
                          f"the budget ({ledger.spent:g} spent of {ledger.budget:g}); buy fewer or raise "
                          "annotation.budget")


def _book_votes(ledger, cfg: AnnotationConfig, cast: Counter, n_items: int, iteration: int, kind: str) -> None:
    from synthloop.labelling import annotator_specs

    price = {s.name: s.cost_per_label for s in annotator_specs(cfg)}
    for name, votes in cast.items():
        ledger.book(name, iteration, n_items * votes, price[name], kind=kind)


def _typed(labels, schema: Schema):
    """Labels as a plain array of the target's kind (class labels keep their type; regression floats)."""
    import numpy as np

    if schema.task == "regression":
        return np.asarray(labels, dtype=float)
    return pd.Series(list(labels), dtype=object).infer_objects().to_numpy()
