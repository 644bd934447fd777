"""A dataset the Dask cluster reads: a Parquet directory or glob (or a CSV glob), checked and split on the workers.

The driver never collects the table. It reads a bounded sample (`dask.sample_rows` rows, drawn on the workers from
every part), infers the schema from it with the same code as the pandas path (`synthloop.data.check_frame`,
`infer_schema`, `prepare_frame`) and fits the preprocessing on it. Every part (a Parquet row group, or a CSV file)
is then read, checked and prepared on a worker, where a bad value gives the same kind of one-line error, naming the
part, the column and the value.

The split is a salted hash of each prepared row (or of a key column, `dask.split_key`) into 10,000 buckets:
test, then validation, then train. It needs no shuffle, does not depend on how rows are laid out in files, puts
equal rows (or rows of one key) in one split, and gives the same split on every run with the same seed.
Validation and test hold real rows only: nothing else exists on the cluster.
"""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthloop.errors import DataError
from synthloop.splits import SealedTest
from synthloop.types import Schema

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
BUCKETS = 10_000
BUCKET = "_synthloop_bucket"
MISSING_WORDS = {"", "?", "na", "n/a", "nan", "null", "none", "-"}


def dataset_files(source: str) -> tuple[str, list[Path]]:
    """The files of a dataset source and their format ("parquet" or "csv"); one-line DataError if there are none."""
    if Path(source).is_dir():
        files = sorted(p for p in Path(source).rglob("*") if p.is_file() and not p.name.startswith(("_", ".")))
    else:
        files = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
    parquet = [p for p in files if p.name.lower().endswith(PARQUET_SUFFIXES)]
    csv = [p for p in files if p.name.lower().endswith(CSV_SUFFIXES)]
    if parquet and csv:
        raise DataError(f"{source}: holds both Parquet and CSV files; point at one kind (e.g. {source}/*.parquet)")
    if not parquet and not csv:
        raise DataError(f"{source}: no Parquet (.parquet, .pq) or CSV (.csv, .tsv) files found")
    return ("parquet", parquet) if parquet else ("csv", csv)


@dataclass(frozen=True)
class Part:
    """One unit of work on a worker: a Parquet row group, or a whole CSV file."""

    path: str
    kind: str
    row_group: int | None = None
    rows: int | None = None
    sep: str = ","

    @property
    def label(self) -> str:
        name = Path(self.path).name
        return f"{name} (row group {self.row_group})" if self.row_group is not None and self.row_group > 0 else name


def dataset_parts(source: str) -> list[Part]:
    """Every part of the dataset, in file order. Parquet footers are read here (cheap); data is not."""
    kind, files = dataset_files(source)
    parts: list[Part] = []
    if kind == "parquet":
        import pyarrow.parquet as pq

        for f in files:
            try:
                meta = pq.ParquetFile(f).metadata
            except Exception as exc:  # not Parquet, truncated ...
                raise DataError(f"{f.name}: not a readable Parquet file ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
            for i in range(meta.num_row_groups):
                parts.append(Part(str(f), "parquet", i, meta.row_group(i).num_rows))
    else:
        sep = _sniff_sep(files[0])
        parts = [Part(str(f), "csv", None, None, sep) for f in files]
    return parts


def _sniff_sep(path: Path) -> str:
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
        header = fh.readline()
    return max((",", ";", "\t", "|"), key=header.count)


def read_part(part: Part, columns: list[str] | None = None) -> pd.DataFrame:
    """The raw rows of a part (on a worker); DataError naming the part when it cannot be read."""
    try:
        if part.kind == "parquet":
            import pyarrow.parquet as pq

            table = pq.ParquetFile(part.path).read_row_group(part.row_group, columns=columns)
            frame = table.to_pandas()
        else:
            frame = pd.read_csv(part.path, sep=part.sep, usecols=columns, encoding="utf-8-sig", low_memory=False)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{part.label}: cannot be read ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    frame.attrs["source"] = part.label
    return frame


def sample_part(part: Part, n: int, seed: int) -> tuple[str, pd.DataFrame]:
    """Up to `n` raw rows of a part, drawn with the seed (on a worker)."""
    frame = read_part(part)
    if len(frame) > n:
        frame = frame.sample(n=n, random_state=seed)
    return part.label, frame


# checks ----------------------------------------------------------------------------------------
def _as_numbers(values: pd.Series) -> pd.Series:
    text = values.astype(str).str.strip()
    comma = text.str.fullmatch(r"[+-]?\d+,\d+")
    text = text.where(~comma, text.str.replace(",", ".", regex=False))
    return pd.to_numeric(text, errors="coerce")


def _present_text(s: pd.Series) -> pd.Series:
    present = s[s.notna()]
    words = present.astype(str).str.strip().str.lower()
    return present[~words.isin(MISSING_WORDS)]


def _number_problem(s: pd.Series) -> tuple[str, list[Any], int | None] | None:
    """('text', examples, first row) or ('inf', [count], None) for a column that should hold numbers."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return None
    if pd.api.types.is_numeric_dtype(s.dtype):
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        n_inf = int(np.isinf(values).sum())
        return ("inf", [n_inf], None) if n_inf else None
    present = _present_text(s)
    parsed = _as_numbers(present)
    bad = present[parsed.isna()]
    if len(bad):
        first = int(np.flatnonzero(s.index.isin(bad.index[:1]))[0]) if len(s) else None
        return "text", list(dict.fromkeys(bad.tolist()))[:3], first
    n_inf = int(np.isinf(parsed.to_numpy(dtype="float64")).sum())
    return ("inf", [n_inf], None) if n_inf else None


def _raise_number_problem(label: str, col: str, problem: tuple[str, list[Any], int | None]) -> None:
    kind, examples, row = problem
    if kind == "inf":
        raise DataError(f"{label}: column {col!r} holds {examples[0]} infinite value(s); replace or remove them")
    where = f" at row {row + 1} of that part" if row is not None else ""
    shown = ", ".join(repr(v) for v in examples)
    raise DataError(f"{label}: column {col!r} holds text in a numeric column (e.g. {shown}{where}); "
                    "fix or remove those values")


def check_sample_pieces(pieces: list[tuple[str, pd.DataFrame]], target: str) -> None:
    """Before the schema exists: a column that is numbers nearly everywhere in the sample but text in one part is
    reported with that part's name (the whole-sample check could only name the sample)."""
    frames = [f for _, f in pieces]
    if not frames:
        return
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    for label, frame in pieces:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"{label}: columns {', '.join(map(repr, missing[:5]))} are not in this part "
                            "(other parts of the dataset have them)")
    for col in columns:
        values = pd.concat([f[col] for f in frames], ignore_index=True)
        present = _present_text(values)
        if present.empty:
            continue
        share = float(_as_numbers(present).notna().mean()) if not pd.api.types.is_numeric_dtype(values.dtype) else 1.0
        if share < 0.9:
            continue  # a text column
        for label, frame in pieces:
            problem = _number_problem(frame[col])
            if problem:
                _raise_number_problem(label, col, problem)


def check_part(frame: pd.DataFrame, schema: Schema, label: str) -> None:
    """A part against the schema: every column there, numbers where the schema has numbers (on a worker)."""
    wanted = [*schema.features, schema.target]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"{label}: columns {', '.join(map(repr, missing[:5]))} are not in this part "
                        "(the schema, read from a sample of every part, has them)")
    numeric = schema.columns_of("numeric") + ([schema.target] if schema.task == "regression" else [])
    for col in numeric:
        problem = _number_problem(frame[col])
        if problem:
            _raise_number_problem(label, col, problem)


# preparing and splitting -----------------------------------------------------------------------
@dataclass(frozen=True)
class SplitPlan:
    """Bucket bounds of the hash split: test is [0, test_end), validation [test_end, val_end), train the rest."""

    test_end: int
    val_end: int
    salt: str
    key: str | None = None

    @classmethod
    def of(cls, val_fraction: float, test_fraction: float, seed: int, key: str | None = None) -> SplitPlan:
        test_end = int(round(test_fraction * BUCKETS))
        return cls(test_end, test_end + int(round(val_fraction * BUCKETS)), f"synthloop{seed:07d}"[-16:].rjust(16, "0"),
                   key)

    def train_fraction_end(self, fraction: float) -> int:
        """Upper bucket of the first `fraction` of train (nested: a smaller fraction is a subset of a larger one)."""
        return self.val_end + int(round(fraction * (BUCKETS - self.val_end)))


def hash_buckets(frame: pd.DataFrame, columns: list[str], salt: str) -> np.ndarray:
    """Bucket 0..9,999 of every row, from a salted hash of the given columns' values (not of the index)."""
    h = pd.util.hash_pandas_object(frame[columns], index=False, hash_key=salt).to_numpy()
    return (h % np.uint64(BUCKETS)).astype("int64")


def prepare_part(part: Part, schema: Schema, empty: pd.DataFrame, plan: SplitPlan,
                 leaks: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read, check and prepare one part, with each row's split bucket (on a worker). `schema` and `empty` are
    the schema before the leak check; the `leaks` it found count in the row's hash, then leave the frame, so that
    dropping them moves no row to another split."""
    from synthloop.data import prepare_frame

    raw = read_part(part)
    check_part(raw, schema, part.label)
    if raw[schema.target].notna().sum() == 0:
        return empty.drop(columns=list(leaks)).copy()
    prepared, _ = prepare_frame(raw, schema)
    out = pd.DataFrame({c: prepared[c].astype(empty[c].dtype) if str(empty[c].dtype) != "object" else prepared[c]
                        for c in [*schema.features, schema.target]}, index=prepared.index)
    out[BUCKET] = _buckets(out, raw.loc[prepared.index], schema, plan)
    return out.drop(columns=list(leaks)).reset_index(drop=True)


def _buckets(prepared: pd.DataFrame, raw: pd.DataFrame, schema: Schema, plan: SplitPlan) -> np.ndarray:
    """Each row's split bucket: the hash of its prepared values, or of the split key's."""
    key = [plan.key] if plan.key else [*schema.features, schema.target]
    return hash_buckets(raw if plan.key and plan.key not in prepared.columns else prepared, key, plan.salt)


@dataclass(frozen=True)
class ClusterData:
    """What collect leaves for the loop: the prepared rows on the cluster (train and validation) and the driver's sample.

    The test rows are not here: they travel as a `SealedClusterTest` to the final stage only.
    """

    schema: Schema
    train: Any  # dask DataFrame: features, target, bucket
    val: Any  # dask DataFrame
    plan: SplitPlan
    sample: pd.DataFrame  # prepared sample rows (features + target) the schema and preprocessing were fitted on
    lineage: dict[str, Any]
    bucket_counts: np.ndarray  # rows per bucket (for the sizes of nested hash fractions)
    notes: tuple[str, ...] = field(default_factory=tuple)
    raw_example: pd.DataFrame | None = None  # a few sample rows as the files hold them (the model's input example)

    def rows_between(self, lo: int, hi: int) -> int:
        return int(self.bucket_counts[lo:hi].sum())


class SealedClusterTest(SealedTest):
    """The test split on the cluster (a Dask frame), readable once, as `synthloop.splits.SealedTest` (no digest:
    it would read every row)."""

    def __init__(self, frame: Any, n_rows: int):
        self._seal(frame, n_rows)

    def __repr__(self) -> str:
        return f"SealedClusterTest({self.n_rows} rows, {'opened at ' + self.opened_at if self.opened_at else 'sealed'})"


def _sorted_labels(values: list[Any]) -> tuple[Any, ...]:
    try:
        return tuple(sorted(values))
    except TypeError:
        return tuple(sorted(values, key=str))


def _drop_leaks(sample: pd.DataFrame, prepared: pd.DataFrame, schema: Schema, plan: SplitPlan, seed: int, mode: str,
                notes: list[str]) -> tuple[Schema, pd.DataFrame, dict[str, dict]]:
    """The pandas path's leak check on the sample rows that the split puts in train: the schema and sample without
    the leaks ("drop"; "warn" keeps them), and the leaks dropped. Each is named in `notes`."""
    from synthloop.data.leak import find_leaks, leak_notes, without_leaks

    buckets = _buckets(prepared, sample.loc[prepared.index], schema, plan)
    found = find_leaks(prepared.loc[buckets >= plan.val_end], schema, seed)
    notes += leak_notes(found, schema.target, mode)
    if not found or mode != "drop":
        return schema, prepared, {}
    schema = without_leaks(schema, found)
    return schema, prepared.drop(columns=list(found)), found


def collect_dataset(client, source: str, *, target: str | None, task: str | None, column_types: dict[str, str],
                    drop: list[str], val_fraction: float, test_fraction: float, seed: int, sample_rows: int,
                    split_key: str | None = None, leak_check: str = "drop") -> tuple[ClusterData, SealedClusterTest]:
    """Read a dataset on the cluster: sample → schema → check and prepare every part → hash split.

    Args:
        client: A `distributed.Client`.
        source: A Parquet directory or glob, or a CSV glob.
        target, task, column_types, drop: As `data.*` in the config.
        val_fraction, test_fraction: Shares of rows in validation and test.
        seed: Salts the hash split and seeds the sample.
        sample_rows: Rows the driver reads for schema and preprocessing (drawn evenly from every part).
        split_key: A column whose value decides the split (rows of one key stay together); None hashes whole rows.
        leak_check: As `data.leak_check`: the sample's train rows (by the split's hash) are looked at for target
            leaks (`synthloop.data.leak`), which are dropped and named ("drop"), named ("warn"), or not looked for.
    Returns:
        The train and validation rows on the cluster with the schema, and the sealed test rows.
    Raises:
        DataError: one line naming the part (file, row group), the column and the value.
    """
    import dask
    import dask.dataframe as dd

    from synthloop.data import check_frame, guess_target, infer_schema, prepare_frame

    parts = dataset_parts(source)
    per_part = max(1, math.ceil(sample_rows / len(parts)))
    pieces = client.compute([dask.delayed(sample_part)(p, per_part, seed) for p in parts], sync=True)
    pieces = [(label, frame) for label, frame in pieces if len(frame)]
    if not pieces:
        raise DataError(f"{source}: has no data rows")
    check_sample_pieces(pieces, target or "")
    sample = pd.concat([f for _, f in pieces], ignore_index=True)
    name = f"{source} (sample of {len(sample)} rows from {len(pieces)} parts)"
    sample.attrs["source"] = name
    target = target or guess_target(list(sample.columns), name)
    if split_key is not None and split_key not in sample.columns:
        raise DataError(f"{source}: dask.split_key column {split_key!r} is not in the table")
    check_frame(sample, target, source_name=name, task=task, min_rows_per_class=1)
    schema, notes = infer_schema(sample, target, task=task, column_types=column_types, drop=drop)
    prepared_sample, more = prepare_frame(sample, schema)
    notes += [f"{note} (in the sample)" for note in more]
    meta = prepared_sample.iloc[:0].copy()
    meta[BUCKET] = pd.Series(dtype="int64")
    plan = SplitPlan.of(val_fraction, test_fraction, seed, split_key)
    full_schema, leaks = schema, {}
    if leak_check != "off":
        schema, prepared_sample, leaks = _drop_leaks(sample, prepared_sample, schema, plan, seed, leak_check, notes)
    frame = dd.from_map(prepare_part, parts, schema=full_schema, empty=meta, plan=plan, leaks=tuple(leaks),
                        meta=meta.drop(columns=list(leaks)), enforce_metadata=False, label="prepare-part")
    frame = client.persist(frame)
    counts_lazy = frame[BUCKET].value_counts(sort=False)
    if schema.task == "classification":
        class_lazy = frame[schema.target].value_counts(sort=False)
        counts, class_counts = client.compute([counts_lazy, class_lazy], sync=True)
        rare = class_counts[class_counts < 3]
        if len(class_counts) < 2:
            raise DataError(f"{source}: target column {target!r} has a single class; classification needs two")
        if len(rare):
            raise DataError(f"{source}: target column {target!r}: class {rare.index[0]!r} has {int(rare.iloc[0])} "
                            "row(s), too few to have one in train, validation and test; collect more or remove it")
        missing = set(class_counts.index) - set(schema.classes or ())
        if missing:
            notes.append(f"{len(missing)} class(es) not in the sample found on the cluster: "
                         f"{', '.join(map(str, list(missing)[:3]))}")
        schema = replace(schema, classes=_sorted_labels(list(class_counts.index)))
    else:
        counts = client.compute(counts_lazy, sync=True)
    bucket_counts = np.zeros(BUCKETS, dtype="int64")
    bucket_counts[counts.index.to_numpy(dtype=int)] = counts.to_numpy()
    n_rows = int(bucket_counts.sum())
    n_test, n_val = int(bucket_counts[:plan.test_end].sum()), int(bucket_counts[plan.test_end:plan.val_end].sum())
    n_train = n_rows - n_test - n_val
    if min(n_test, n_val) < 1 or n_train < 2:
        if split_key:
            raise DataError(f"{source}: the hash of dask.split_key {split_key!r} left a split empty (train {n_train}, "
                            f"validation {n_val}, test {n_test} rows): it needs many distinct values")
        raise DataError(f"{source}: {n_rows} rows are too few to split into train, validation and test")
    bucket = frame[BUCKET]
    train = frame[bucket >= plan.val_end]
    val = frame[(bucket >= plan.test_end) & (bucket < plan.val_end)]
    test = frame[bucket < plan.test_end]
    files = sorted({p.path for p in parts})
    lineage = {"source": source, "format": parts[0].kind, "files": len(files), "parts": len(parts), "rows": n_rows,
               "columns": len(schema.features), "train_rows": n_train, "val_rows": n_val, "test_rows": n_test,
               "pool_rows": 0, "sample_rows": len(sample), "split": "hash of " + (split_key or "the row"),
               "split_salt_seed": seed}
    raw_example = sample.loc[prepared_sample.index[:5], schema.features].reset_index(drop=True)
    data = ClusterData(schema, train, val, plan, prepared_sample, lineage, bucket_counts, tuple(notes), raw_example)
    return data, SealedClusterTest(test, n_test)
