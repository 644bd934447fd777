"""Labels from people: the CSV a person fills in, and reading it back with checks.

The flow writes the rows to label as a CSV with an ``id`` column, the features, and an empty ``label``
column (plus ``current_label`` when flagged labels are being reviewed), then pauses. When resumed it
reads the file back; every problem (unknown or duplicate ids, missing labels, labels outside the known
classes) is reported in one message, the file is left as it is, and the flow pauses again so the person
can fix it and resume. Nothing here imports Prefect.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from synthloop.errors import DataError

ID_COLUMN = "id"
LABEL_COLUMN = "label"
CURRENT_COLUMN = "current_label"


class LabelFileError(DataError):
    """The labelled CSV cannot be read back as it is; the message says what to fix."""


def labels_folder(tracking_uri: str, configured: str | None, flow_run_id: str) -> Path:
    """Where a flow run's label requests go: `annotation.labels_dir`, else `labels/` next to the MLflow store."""
    if configured:
        base = Path(configured)
    elif tracking_uri.startswith("sqlite:///"):
        base = Path(tracking_uri.removeprefix("sqlite:///")).parent / "labels"
    else:
        base = Path.cwd() / "mlruns" / "labels"
    return base / flow_run_id


def write_request(path: Path, rows: pd.DataFrame, current: pd.Series | None = None) -> Path:
    """Write the rows to label: `id`, the features, `current_label` (reviews only) and an empty `label`.

    An existing file is kept (a resumed run must not overwrite labels a person already entered).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path
    frame = rows.copy()
    frame.insert(0, ID_COLUMN, [str(i) for i in rows.index])
    if current is not None:
        frame[CURRENT_COLUMN] = current.loc[rows.index].to_numpy()
    frame[LABEL_COLUMN] = ""
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def read_labels(path: Path, ids: Sequence[Any], classes: Sequence[Any] | None) -> pd.Series:
    """Read a filled-in request back.

    Args:
        path: The CSV written by :func:`write_request` and filled in by a person.
        ids: The row ids that were asked for (the index of the requested rows).
        classes: The known classes (labels are matched by their text); None for regression (numbers).
    Returns:
        The labels, indexed like `ids` (same order), typed like the classes.
    Raises:
        LabelFileError: naming the file and every problem found, with a few examples of each.
    """
    if not path.is_file():
        raise LabelFileError(f"{path}: the label file is missing; write it back (columns '{ID_COLUMN}' and "
                             f"'{LABEL_COLUMN}') and resume the flow run")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise LabelFileError(f"{path}: cannot be read as CSV ({str(exc).splitlines()[0]}); fix it and resume") from None
    missing_cols = [c for c in (ID_COLUMN, LABEL_COLUMN) if c not in frame.columns]
    if missing_cols:
        raise LabelFileError(f"{path}: column(s) {', '.join(repr(c) for c in missing_cols)} missing; "
                             f"keep the columns '{ID_COLUMN}' and '{LABEL_COLUMN}' and resume")
    wanted = {str(i): i for i in ids}
    got_ids = frame[ID_COLUMN].str.strip()
    labels = frame[LABEL_COLUMN].str.strip()
    problems = []
    unknown = sorted(set(got_ids) - set(wanted))
    if unknown:
        problems.append(f"{len(unknown)} unknown id(s) {_examples(unknown)}")
    dup = sorted(set(got_ids[got_ids.duplicated()]))
    if dup:
        problems.append(f"{len(dup)} id(s) appear more than once {_examples(dup)}")
    absent = [i for i in wanted if i not in set(got_ids)]
    empty = sorted(set(got_ids[labels == ""]) & set(wanted))
    if absent or empty:
        lacking = absent + [i for i in empty if i not in absent]
        problems.append(f"{len(lacking)} row(s) without a label {_examples(lacking)}")
    filled = (labels != "") & got_ids.isin(list(wanted))
    if classes is not None:
        lookup = {str(c): c for c in classes}
        bad = sorted(set(labels[filled]) - set(lookup))
        if bad:
            problems.append(f"label(s) {_examples(bad)} not among the known classes {_examples(list(lookup), 12)}")
        parse = lookup.get
    else:
        parse = None
        numeric = pd.to_numeric(labels[filled], errors="coerce")
        bad = sorted(set(labels[filled][numeric.isna()]))
        if bad:
            problems.append(f"label(s) {_examples(bad)} are not numbers")
    if problems:
        raise LabelFileError(f"{path}: " + "; ".join(problems) + ". Nothing was read: fix the file and resume "
                             "the flow run")
    by_id = dict(zip(got_ids, labels))
    values = [parse(by_id[i]) if parse else float(by_id[i]) for i in wanted]
    return pd.Series(values, index=pd.Index(list(ids)), dtype=object if parse else float)


def _examples(values: Sequence[Any], n: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:n])
    return f"[{shown}{', ...' if len(values) > n else ''}]"
