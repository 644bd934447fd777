"""Checks made before any Prefect flow run or MLflow run exists: a typo must leave no run anywhere.

`check_run(config)` reads the source the way the collect stage will (a large file only up to its header),
finds the target, checks the columns the config names, infers the task and checks that the goal metric
belongs to it, and tries the split. Every problem is a `SynthloopError` with one line naming the fix, so
`synthloop run` exits with status 2 before it starts Prefect or opens the MLflow store.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from synthloop.config import CLASSIFICATION_METRICS, REGRESSION_METRICS, Config
from synthloop.errors import ConfigError, DataError

#: Files up to this size are read whole (every check the collect stage makes); larger ones only to their header,
#: so the check stays cheap: the collect stage reads them whole anyway.
FULL_READ_BYTES = 64 * 1024 * 1024
#: A simulator is tried on this many rows: its settings are checked, not its output.
SIMULATE_CHECK_ROWS = 300


def check_run(config: Config) -> dict[str, Any]:
    """Check what a development run needs before it starts.

    Args:
        config: The validated config of the run.
    Returns:
        What was found: `target`, `task` (None when only the header was read and no task was given),
        `columns` and `full` (whether the whole source was read).
    Raises:
        DataError, ConfigError: one line naming the source, column or field and the fix.
    """
    from synthloop import data

    cfg = config.data
    name = data.redact_url(cfg.source)
    frame, full = _read(cfg.source, cfg.table, cfg.query)
    target = cfg.target or data.guess_target(list(frame.columns), name)
    columns = list(frame.columns)
    if target not in columns:
        frame.attrs["source"] = name
        data.require_target(frame, target, name)
    for option, names in (("data.column_types", list(cfg.column_types)), ("data.drop_columns", cfg.drop_columns)):
        for col in names:
            if col not in columns:
                raise DataError(f"{name}: column {col!r} named in {option} is not in the table"
                                f"{data.close_hint(col, columns)}")
    task = cfg.task
    if full:
        frame.attrs["source"] = name
        checked = checked_split(frame, cfg, target, config.seed, name)
        task = checked[0].task
        key = handoff_key(cfg, config.seed)
        if key is not None:  # the collect stage takes this work instead of doing it again
            _CHECKED.clear()
            _CHECKED[key] = checked
            data.load._HANDOFF.clear()  # nor does it need the file's frame then
    if task is not None:
        check_goal_metric(config.goal.metric, task, target)
    return {"target": target, "task": task, "columns": columns, "full": full}


#: What the check made of a file (schema, notes, rows, train, validation, sealed test), for the collect stage.
_CHECKED: dict[tuple, tuple] = {}


def checked_split(raw, cfg, target: str, seed: int, name: str) -> tuple:
    """Check the table, infer its schema, prepare it and split it, as the collect stage does.

    Returns:
        (schema, notes, rows, train, validation, sealed test)
    """
    from synthloop import data
    from synthloop.data.leak import find_leaks, leak_notes, without_leaks
    from synthloop.splits import split_frame

    data.check_frame(raw, target, source_name=name, task=cfg.task)
    schema, notes = data.infer_schema(raw, target, task=cfg.task, column_types=cfg.column_types,
                                      drop=cfg.drop_columns)
    frame, prep_notes = data.prepare_frame(raw, schema)
    if schema.task == "classification":
        data.check_frame(frame, target, source_name=name, task="classification")
    split = dict(val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=seed, source_name=name)
    train, val, sealed = split_frame(frame, schema, **split)
    notes = list(notes) + list(prep_notes)
    if cfg.leak_check != "off":
        leaks = find_leaks(train, schema, seed)  # train rows only: validation and test stay unseen
        notes += leak_notes(leaks, target, cfg.leak_check)
        if leaks and cfg.leak_check == "drop":
            schema = without_leaks(schema, leaks)
            frame = frame.drop(columns=list(leaks))
            train, val, sealed = split_frame(frame, schema, **split)  # the split is drawn from the target: same rows
    return schema, notes, len(frame), train, val, sealed


def handoff_key(cfg, seed: int) -> tuple | None:
    """What the check's work depends on: the unchanged file and the data settings (None: not a plain file)."""
    import json

    from synthloop.data.load import _file_key

    if cfg.table is not None or cfg.query is not None:
        return None
    file_key = _file_key(cfg.source)
    if file_key is None:
        return None
    return (file_key, cfg.target, cfg.task, json.dumps(cfg.column_types, sort_keys=True, default=str),
            tuple(cfg.drop_columns), cfg.val_fraction, cfg.test_fraction, cfg.leak_check, seed)


def take_checked(cfg, seed: int) -> tuple | None:
    """The check's work on this file with these settings, once (None: do it)."""
    key = handoff_key(cfg, seed)
    checked = _CHECKED.pop(key, None) if key is not None else None
    _CHECKED.clear()  # another file or setting: what was kept is of no use
    return checked


def check_goal_metric(metric: str | None, task: str, target: str) -> None:
    """A goal metric of the other task (e.g. rmse for a classification target) is refused, with the close one."""
    if metric is None:
        return
    allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if metric not in allowed:
        close = difflib.get_close_matches(metric, allowed, n=1, cutoff=0.4)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"goal: {metric} is a {'regression' if task == 'classification' else 'classification'} "
                          f"metric but '{target}' is a {task} target; {hint}choose one of {', '.join(allowed)}"
                          f"{' (or pass --task regression)' if task == 'classification' else ''}")


def _read(source: str, table: str | None, query: str | None):
    """The source as a frame, and whether it is whole (False: the header only, for a large file)."""
    import pandas as pd

    from synthloop import data

    text = str(source).strip()
    lower = text.lower()
    if lower.startswith("simulate:"):
        small = _small_simulation(text)
        try:
            return data.load_table(small, table=table, query=query), True
        except DataError as exc:  # name the source as the user wrote it
            raise DataError(str(exc).replace(small, text)) from None
    if lower.startswith("sklearn:") or "://" in text:
        return data.load_table(text, table=table, query=query), True
    path = Path(text).expanduser()
    if path.is_file() and path.stat().st_size > FULL_READ_BYTES:
        if table is not None or query is not None:
            data.load_table(text, table=table, query=query)  # raises: table/query only apply to databases
        return pd.DataFrame(columns=data.read_columns(text)), False
    return data.load_table(text, table=table, query=query, keep_for_next=True), True


def _small_simulation(source: str) -> str:
    """The same simulator spec with few rows: its settings are checked at the cost of a few hundred rows."""
    from urllib.parse import parse_qsl, urlencode

    head, _, query = source.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    asked = next((v for k, v in pairs if k == "n_rows"), None)
    rows = str(min(int(asked), SIMULATE_CHECK_ROWS)) if asked and asked.isdigit() else asked or str(SIMULATE_CHECK_ROWS)
    settings = [(k, v) for k, v in pairs if k != "n_rows"]
    return f"{head}?{urlencode([*settings, ('n_rows', rows)])}"
