"""Loading, checking and typing of tables.

The collect stage calls these in order:

1. :func:`load_table` reads a CSV/TSV/Parquet file, a bundled scikit-learn dataset or a SQL
   table into a DataFrame. What it had to guess (encoding fallback, decimal commas) is kept in
   ``df.attrs["notes"]``, and a display name for the source in ``df.attrs["source"]``.
2. :func:`check_frame` rejects tables that cannot be learned from, with a one-line message.
3. :func:`infer_schema` decides the task and the kind of every column, dropping useless ones.
4. :func:`prepare_frame` returns a new frame with one consistent dtype per column kind.

Every problem with the input raises :class:`~synthloop.errors.DataError` whose message is one
line naming the source, the column where there is one, and what to fix. Problems with option
values (an unknown task or column kind) raise :class:`~synthloop.errors.ConfigError`.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import io
import os
import re
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthloop.errors import ConfigError, DataError
from synthloop.types import ColumnKind, Schema, Task

__all__ = [
    "SKLEARN_DATASETS",
    "check_frame",
    "infer_schema",
    "load_table",
    "prepare_frame",
    "redact_url",
]

#: Bundled scikit-learn datasets that ship with the library (no download), by ``sklearn:NAME``.
SKLEARN_DATASETS: dict[str, str] = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
    "diabetes": "load_diabetes",
}

SNIFF_BYTES = 64 * 1024
_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_TASKS = ("classification", "regression")
_KINDS = ("numeric", "categorical", "boolean", "datetime")

# Task guessing: an integer-valued target is a class label when it has few distinct values.
_MAX_CLASSES = 20
_MAX_CLASS_RATIO = 0.5
# Column typing thresholds.
_MOSTLY_NUMERIC = 0.9
_DATE_PARSE_RATIO = 0.95
_DATE_SAMPLE = 500
_ID_MIN_ROWS = 20
_RANGE_ID_MIN_ROWS = 10
_FREE_TEXT_MIN_ROWS = 50
_FREE_TEXT_RATIO = 0.5

_EXTRA_MISSING = ["?"]
_BOOLEAN_PAIRS = ({"0", "1"}, {"true", "false"}, {"yes", "no"})
_TRUE_WORDS = {"1", "1.0", "true", "yes", "t", "y"}
_FALSE_WORDS = {"0", "0.0", "false", "no", "f", "n"}
_ID_NAME = re.compile(
    r"^(id|uuid|guid|index|idx|row_?id|unnamed: ?\d+)$|[_\s-](id|uuid|guid)$", re.IGNORECASE
)
_CAMEL_ID = re.compile(r"[a-z](ID|Id|UUID|Uuid)$")

_DATE_SHAPE = r"(?:^|\D)[12]\d{3}(?:\D|$)|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+$")
_DOT_DECIMAL = re.compile(r"^[+-]?\d*\.\d+([eE][+-]?\d+)?$")
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_UNTERMINATED = re.compile(r"EOF inside string starting at row (\d+)")
_URL_USERINFO = re.compile(r"(?P<head>://[^:/?#@]*):(?P<password>.*)@(?=[^@]*$)")
_URL_SECRET_PARAM = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd|secret|token|api_?key|access_?key)=)[^&#]*", re.IGNORECASE
)


# --------------------------------------------------------------------------------------------
# Loading


def redact_url(url: str) -> str:
    """Hide the password (and secret-looking query parameters) of a URL.

    Args:
        url: A database URL such as ``postgresql://user:secret@host/db``.

    Returns:
        The URL with the password replaced by ``***``; strings without one come back unchanged.
    """
    text = _URL_USERINFO.sub(lambda m: f"{m['head']}:***@", str(url))
    return _URL_SECRET_PARAM.sub(lambda m: f"{m['head']}***", text)


_SECRET_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_VAR_PREFIX = "SYNTHLOOP_DATA_SECRET_"


def expand_secrets(url: str) -> str:
    """Fill `${NAME}` references in a database URL from the environment, at the moment of connecting.

    The configuration (which Prefect stores as the flow's parameters and MLflow as params) keeps the
    reference, never the secret.
    """
    def value(m: re.Match) -> str:
        if m["name"] not in os.environ:
            raise DataError(f"{url}: environment variable {m['name']} is not set")
        return os.environ[m["name"]]

    return _SECRET_REF.sub(value, url)


def move_secrets_to_environment(url: str) -> str:
    """A URL's password and secret query values → `${SYNTHLOOP_DATA_SECRET_n}` references, set in this
    process's environment; other sources unchanged. Keeps secrets out of every run record."""
    if "://" not in url:
        return url
    count = 0

    def stash(secret: str) -> str:
        nonlocal count
        if _SECRET_REF.fullmatch(secret):
            return secret
        count += 1
        os.environ[f"{SECRET_VAR_PREFIX}{count}"] = secret
        return f"${{{SECRET_VAR_PREFIX}{count}}}"

    url = _URL_USERINFO.sub(lambda m: f"{m['head']}:{stash(m['password'])}@", url)
    return _URL_SECRET_PARAM.sub(lambda m: m["head"] + stash(m.group(0)[len(m["head"]):]), url)


def load_table(source: str, *, table: str | None = None, query: str | None = None) -> pd.DataFrame:
    """Read a table from a file, a bundled scikit-learn dataset or a database.

    Args:
        source: A path to a ``.csv``/``.tsv``/``.txt`` (optionally ``.gz``) or ``.parquet``/``.pq``
            file; ``sklearn:NAME`` for one of :data:`SKLEARN_DATASETS` (label column ``target``);
            or a SQLAlchemy URL such as ``sqlite:///data.db``.
        table: Table to read when ``source`` is a database URL.
        query: SQL query to run when ``source`` is a database URL (instead of ``table``).

    Returns:
        The table. ``attrs["source"]`` holds a display name for messages (passwords redacted) and
        ``attrs["notes"]`` a list of things worth telling the user (encoding fallback, decimal commas).

    Raises:
        DataError: The source is missing, empty, malformed or not readable.
    """
    source = str(source).strip()
    if not source:
        raise DataError("no data source given; pass a file path, sklearn:NAME or a database URL")
    notes: list[str] = []
    if source.lower().startswith("sklearn:"):
        _no_sql_options(source, table, query)
        df, name = _load_sklearn(source)
    elif source.lower().startswith("simulate:"):
        _no_sql_options(source, table, query)
        df, name = _load_simulated(source)
    elif "://" in source:
        df, name = _load_sql(expand_secrets(source), table, query)  # its name hides what was a secret
    else:
        _no_sql_options(source, table, query)
        df, name = _load_file(source, notes)
    _check_unique_columns(df.columns, name)
    if df.shape[1] == 0:
        raise _error(name, "has no columns")
    if len(df) == 0:
        raise _error(name, "has column names but no data rows")
    df.attrs["source"] = name
    df.attrs["notes"] = notes
    return df


SIMULATE_SETTINGS = {"n_rows": int, "n_features": int, "n_informative": int, "n_classes": int, "class_sep": float,
                     "label_noise": float, "noise": float, "seed": int}


def _load_simulated(source: str) -> tuple[pd.DataFrame, str]:
    """`simulate:classification?n_rows=2000&class_sep=1.0` — rows made from nothing with exact labels."""
    from urllib.parse import parse_qsl

    from synthloop.synth import simulate

    spec, _, query = source.partition(":")[2].partition("?")
    task = spec.strip().lower()
    if task not in ("classification", "regression"):
        raise DataError(f"{source}: write simulate:classification or simulate:regression")
    settings: dict[str, Any] = {"n_rows": 2000}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in SIMULATE_SETTINGS:
            raise DataError(f"{source}: unknown simulator setting {key!r}; known: {', '.join(SIMULATE_SETTINGS)}")
        try:
            settings[key] = SIMULATE_SETTINGS[key](value)
        except ValueError:
            raise DataError(f"{source}: setting {key}={value!r} is not a number") from None
    seed = settings.pop("seed", 0)
    n_rows = settings.pop("n_rows")
    if task == "regression":
        settings = {k: v for k, v in settings.items() if k not in ("n_classes", "class_sep", "label_noise")}
    try:
        X, y = simulate(task, n_rows, random_state=seed, **settings)
    except ValueError as exc:
        raise DataError(f"{source}: {exc}") from None
    frame = X.copy()
    frame["target"] = np.asarray(y)
    return frame, source


def _no_sql_options(source: str, table: str | None, query: str | None) -> None:
    if table is not None or query is not None:
        raise _error(source, "table/query only apply to database URLs such as sqlite:///data.db")


def _load_sklearn(source: str) -> tuple[pd.DataFrame, str]:
    key = source.split(":", 1)[1].strip().lower()
    if key not in SKLEARN_DATASETS:
        close = difflib.get_close_matches(key, SKLEARN_DATASETS, n=1)
        hint = f"did you mean 'sklearn:{close[0]}'? " if close else ""
        raise _error(
            source,
            f"unknown bundled dataset {key!r}; {hint}choose one of " + ", ".join(SKLEARN_DATASETS),
        )
    from sklearn import datasets  # heavy import, only when a bundled set is asked for

    frame = getattr(datasets, SKLEARN_DATASETS[key])(as_frame=True).frame.copy()
    if key == "digits":
        features = [c for c in frame.columns if c != "target"]
        frame = frame.rename(columns={c: f"pixel_{i}" for i, c in enumerate(features)})
    return frame, f"sklearn:{key}"


def _load_sql(url: str, table: str | None, query: str | None) -> tuple[pd.DataFrame, str]:
    import sqlalchemy as sa  # only needed for database sources
    from sqlalchemy import exc as sa_exc

    name = redact_url(url)
    if table is not None and query is not None:
        raise _error(name, "give either table or query, not both")
    try:
        parsed = sa.engine.make_url(url)
    except sa_exc.ArgumentError:
        raise _error(name, "is not a valid database URL (expected e.g. sqlite:///data.db)") from None
    if parsed.get_backend_name() == "sqlite":
        # sqlite would silently create a missing file; say it is missing instead.
        database = parsed.database or ""
        on_disk = database and database != ":memory:" and not database.startswith("file:")
        if on_disk and not Path(database).is_file():
            raise _error(name, f"database file {database!r} not found")
        # A local file takes no credentials: arguments such as ?token= (kept for a server database in the same
        # config) mean nothing to it. The driver would ignore them anyway, with an SAWarning; drop them here.
        ignored = [k for k in parsed.query if k not in _PYSQLITE_ARGS]
        parsed = parsed.difference_update_query(ignored)
    try:
        engine = sa.create_engine(parsed)
    except sa_exc.NoSuchModuleError:
        raise _error(name, f"unknown database type {parsed.drivername!r}") from None
    except ImportError as exc:
        raise _error(name, f"the database driver is not installed ({exc})") from None
    label = name if table is None else f"{name} table {table!r}"
    try:
        with engine.connect() as conn:
            if table is None and query is None:
                tables = sa.inspect(conn).get_table_names()
                raise _error(name, f"give a table or a query to read; tables here: {_listing(tables)}")
            if table is not None:
                if not sa.inspect(conn).has_table(table):
                    tables = sa.inspect(conn).get_table_names()
                    raise _error(name, f"table {table!r} not found; tables here: {_listing(tables)}")
                df = pd.read_sql_table(table, conn)
            else:
                label = f"{name} query"
                df = pd.read_sql_query(query, conn)
    except DataError:
        raise
    except (sa_exc.SQLAlchemyError, pd.errors.DatabaseError, ValueError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ else exc
        detail = " ".join(str(getattr(cause, "orig", None) or cause).split())[:300] or type(exc).__name__
        raise _error(label, f"cannot be read: {_hide_password(detail, parsed.password)}") from None
    finally:
        engine.dispose()
    return df, label


#: Query arguments SQLAlchemy's pysqlite dialect reads from a sqlite:/// URL (the others it ignores with a warning).
_PYSQLITE_ARGS = {"timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements", "uri",
                  "mode", "cache", "nolock", "immutable", "vfs", "modeof"}


def _hide_password(text: str, password: Any) -> str:
    if password:
        text = text.replace(str(password), "***")
    return redact_url(text)


def _load_file(source: str, notes: list[str]) -> tuple[pd.DataFrame, str]:
    path = Path(source).expanduser()
    if not path.exists():
        raise _error(source, "file not found" + _nearby_files_hint(path))
    if path.is_dir():
        raise _error(source, "is a folder, not a data file")
    lower = path.name.lower()
    if lower.endswith(_PARQUET_SUFFIXES):
        if path.stat().st_size == 0:
            raise _error(source, "file is empty (0 bytes)")
        return _load_parquet(path, source), source
    if lower.endswith(_TEXT_SUFFIXES):
        if path.stat().st_size == 0:
            raise _error(source, "file is empty (0 bytes)")
        return _load_delimited(path, source, notes), source
    raise _error(source, "unsupported file type; use .csv, .tsv, .txt (optionally .gz), .parquet or .pq")


def _nearby_files_hint(path: Path) -> str:
    try:
        siblings = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
    except OSError:
        return ""
    close = difflib.get_close_matches(path.name, siblings, n=3)
    return f"; similar files there: {_listing(close)}" if close else ""


def _load_parquet(path: Path, name: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _error(name, f"is not a readable Parquet file ({detail})") from None
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        if type(exc).__module__.startswith("pyarrow"):
            raise _error(name, f"is not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        raise


def _load_delimited(path: Path, name: str, notes: list[str]) -> pd.DataFrame:
    compressed = path.name.lower().endswith(".gz")
    sample, truncated = _read_head(path, name, compressed)
    if not sample:
        raise _error(name, "file is empty (0 bytes)")
    encoding, text = _sample_encoding(sample, truncated, name, notes)
    if truncated and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # sniff whole lines only
    if not text.strip():
        raise _error(name, "file is empty (only blank lines)")

    delimiter = _sniff_delimiter(text, prefer_tab=".tsv" in path.name.lower())
    header = _inspect_records(text, delimiter, name, truncated)
    decimal = _sniff_decimal(text, delimiter, len(header))
    if decimal == ",":
        notes.append(f"{name}: read as {_DELIMITER_NAMES[delimiter]}-separated with decimal commas")

    df = _read_csv(path, name, delimiter, decimal, encoding, compressed, notes)
    df.columns = [c.strip() if isinstance(c, str) else c for c in df.columns]
    return df


def _read_head(path: Path, name: str, compressed: bool) -> tuple[bytes, bool]:
    try:
        opener = gzip.open if compressed else open
        with opener(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES + 1)
    except (gzip.BadGzipFile, EOFError, zlib.error):
        raise _error(name, "is not a valid gzip file") from None
    except OSError as exc:
        raise _error(name, f"cannot be read ({exc.strerror or exc})") from None
    return head[:SNIFF_BYTES], len(head) > SNIFF_BYTES


def _sample_encoding(sample: bytes, truncated: bool, name: str, notes: list[str]) -> tuple[str, str]:
    if sample.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in sample:
        raise _error(
            name,
            "does not look like a text table (it contains NUL bytes); "
            "if it is a spreadsheet or UTF-16 file, save it as a UTF-8 CSV",
        )
    else:
        encoding = "utf-8"
    try:
        return encoding, _decode(sample, encoding, final=not truncated)
    except UnicodeDecodeError as exc:
        if encoding == "utf-16":
            raise _error(name, f"is not valid UTF-16 (byte offset {exc.start}); save it as UTF-8") from None
        fallback = _fallback_encoding(sample)
        notes.append(_encoding_note(name, sample[exc.start], exc.start, fallback))
        return fallback, _decode(sample, fallback, final=True)


def _decode(data: bytes, encoding: str, *, final: bool) -> str:
    return codecs.getincrementaldecoder(encoding)().decode(data, final=final)


def _fallback_encoding(data: bytes) -> str:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


def _encoding_note(name: str, byte: int, offset: int, encoding: str) -> str:
    return (
        f"{name}: not valid UTF-8 (byte 0x{byte:02x} at offset {offset}); read it as {encoding} instead; "
        "re-save the file as UTF-8 if accented text looks wrong"
    )


def _records(text: str, delimiter: str, limit: int | None = None) -> Iterable[tuple[int, list[str]]]:
    """Yield (physical line number, fields) for the non-blank records of ``text``."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"', doublequote=True)
    count = 0
    try:
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            yield reader.line_num, fields
            count += 1
            if limit is not None and count >= limit:
                return
    except csv.Error:
        return


def _sniff_delimiter(text: str, *, prefer_tab: bool) -> str:
    best: tuple[float, int, int] | None = None
    chosen = "\t" if prefer_tab else ","
    for rank, delimiter in enumerate(_DELIMITERS):
        rows = [fields for _, fields in _records(text, delimiter, limit=200)]
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        data = rows[1:]
        fitting = sum(
            1 for r in data if len(r) == width or (len(r) > width and not "".join(r[width:]).strip())
        )
        consistency = fitting / len(data) if data else 1.0
        preferred = 1 if (prefer_tab and delimiter == "\t") else 0
        score = (consistency, width, preferred * 10 - rank)
        if best is None or score > best:
            best, chosen = score, delimiter
    return chosen


def _inspect_records(text: str, delimiter: str, name: str, truncated: bool) -> list[str]:
    """Check the raw header for duplicates and the sampled rows for extra fields."""
    records = list(_records(text, delimiter))
    if not records:
        raise _error(name, "file is empty (only blank lines)")
    header = records[0][1]
    _check_unique_columns([h.strip() for h in header if h.strip()], name)
    width = len(header)
    last = len(records) - 1 if truncated else len(records)
    for line, fields in records[1:last]:
        if len(fields) > width and "".join(fields[width:]).strip():
            raise _error(name, _ragged_message(line, len(fields), width, delimiter))
    return header


def _ragged_message(line: int, saw: int, width: int, delimiter: str) -> str:
    return (
        f"line {line} has {saw} fields but the header has {width}; fix the quoting or the "
        f"{_DELIMITER_NAMES[delimiter]} delimiters on that line"
    )


def _sniff_decimal(text: str, delimiter: str, width: int) -> str:
    if delimiter == ",":
        return "."
    comma = dot = 0
    for _, fields in _records(text, delimiter, limit=1000):
        for value in fields[:width]:
            value = value.strip()
            if _COMMA_DECIMAL.match(value):
                comma += 1
            elif _DOT_DECIMAL.match(value):
                dot += 1
    return "," if comma and not dot else "."


def _read_csv(
    path: Path, name: str, delimiter: str, decimal: str, encoding: str, compressed: bool, notes: list[str]
) -> pd.DataFrame:
    # Besides pandas' own missing markers ("", NA, N/A, null, NaN, ...), "?" means missing in many exports
    # (UCI files). A lone "-" is not one: it is a category in +/- columns and zero in accounting formats.
    options = {"sep": delimiter, "decimal": decimal, "engine": "c", "low_memory": False, "index_col": False,
               "na_values": _EXTRA_MISSING}
    tried: set[str] = set()
    while True:
        tried.add(encoding)
        try:
            with warnings.catch_warnings():
                # With index_col=False pandas only warns when a row longer than the header loses data.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                return pd.read_csv(path, encoding=encoding, **options)
        except UnicodeDecodeError:
            if encoding.startswith("utf-8"):
                offset, byte = _first_bad_utf8(path, compressed)
                fallback = "cp1252"
                notes.append(_encoding_note(name, byte, offset, fallback))
            elif encoding == "cp1252":
                fallback = "latin-1"
                notes.append(f"{name}: not valid cp1252 either; read it as latin-1")
            else:
                raise _error(name, f"cannot be decoded as {encoding}; save it as UTF-8") from None
            if fallback in tried:
                raise _error(name, "cannot be decoded; save it as UTF-8") from None
            encoding = fallback
        except pd.errors.ParserWarning:
            raise _error(name, "the first data row has more fields than the header; fix that row") from None
        except pd.errors.EmptyDataError:
            raise _error(name, "file is empty (no header row)") from None
        except pd.errors.ParserError as exc:
            raise _error(name, _parser_message(str(exc), delimiter)) from None
        except (EOFError, zlib.error, gzip.BadGzipFile):
            raise _error(name, "is not a valid gzip file (truncated or corrupt)") from None


def _parser_message(detail: str, delimiter: str) -> str:
    ragged = _RAGGED.search(detail)
    if ragged:
        width, line, saw = (int(g) for g in ragged.groups())
        return _ragged_message(line, saw, width, delimiter)
    unterminated = _UNTERMINATED.search(detail)
    if unterminated:
        return f'a quoted field starting at row {unterminated.group(1)} is never closed (unbalanced ")'
    return "cannot be parsed: " + " ".join(detail.split())


def _first_bad_utf8(path: Path, compressed: bool) -> tuple[int, int]:
    """Return (byte offset, byte value) of the first invalid UTF-8 byte, reading in chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    opener = gzip.open if compressed else open
    with opener(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                data = pending + chunk
                return offset - len(pending) + exc.start, data[exc.start]
            offset += len(chunk)
    return offset, 0


# --------------------------------------------------------------------------------------------
# Checking


def check_frame(
    df: pd.DataFrame,
    target: str,
    *,
    source_name: str,
    task: str | None = None,
    min_rows_per_class: int = 3,
) -> None:
    """Reject a table that cannot be learned from, naming the column and the fix.

    Rows whose target is missing are allowed here; :func:`prepare_frame` drops them.

    Args:
        df: The loaded table.
        target: Name of the label column.
        source_name: File name or redacted URL used in messages.
        task: "classification" or "regression"; guessed from the target when None.
        min_rows_per_class: Fewest rows a class may have (classification), so that the
            train/validation/test split can be stratified.

    Raises:
        DataError: The target is missing, empty or has too few rows per class, or a column holds
            infinite values or stray text among numbers.
        ConfigError: ``task`` or ``min_rows_per_class`` is not a valid value.
    """
    src = source_name
    _check_task_value(task)
    if not isinstance(min_rows_per_class, int) or min_rows_per_class < 1:
        raise ConfigError(f"min_rows_per_class must be a positive integer, got {min_rows_per_class!r}")
    _check_unique_columns(df.columns, src)
    if len(df) == 0:
        raise _error(src, "has no data rows")
    _require_target(df, target, src)
    y = df[target]
    present_y = _present(y)
    if present_y.empty:
        raise _error(src, f"target column {target!r} is empty (every value is missing)")

    _check_values(df, src)

    chosen = task or _guess_task(present_y)[0]
    if chosen == "regression":
        if _numeric_view(present_y) is None:
            examples = _bad_numbers(present_y[pd.to_numeric(present_y, errors="coerce").isna()])
            raise _error(
                src,
                f"target column {target!r} holds text (e.g. {examples}) but regression needs numbers; "
                "fix the values or set the task to classification",
            )
        return
    counts = _labels(y[~_missing_mask(y)]).value_counts()
    if len(counts) < 2:
        raise _error(
            src,
            f"target column {target!r} has a single class ({_show(counts.index[0])}); "
            "classification needs at least two",
        )
    rare = counts[counts < min_rows_per_class]
    if len(rare):
        shown = ", ".join(f"{_show(label)} ({n} rows)" for label, n in rare.head(3).items())
        more = f" and {len(rare) - 3} more" if len(rare) > 3 else ""
        raise _error(
            src,
            f"target column {target!r}: class {shown}{more} has fewer than {min_rows_per_class} rows, "
            "so the data cannot be stratified into train/validation/test; collect more rows of that "
            "class or remove it",
        )


def _check_values(df: pd.DataFrame, src: str) -> None:
    infinite: list[tuple[Any, int]] = []
    stray: list[tuple[Any, str]] = []
    for col in df.columns:
        s = df[col]
        if _is_numberlike(s):
            n_inf = int(np.isinf(s.to_numpy(dtype="float64", na_value=np.nan)).sum())
            if n_inf:
                infinite.append((col, n_inf))
        elif _is_textlike(s):
            present = _present(s)
            if present.empty or _numeric_share(present.sample(min(len(present), 2000), random_state=0)) < 0.5:
                continue  # clearly a text column; skip parsing every value
            parsed = _to_numbers(present)
            ok = parsed.notna()
            share = float(ok.mean())
            if share == 1.0:
                n_inf = int(np.isinf(parsed.to_numpy(dtype="float64")).sum())
                if n_inf:
                    infinite.append((col, n_inf))
            elif share >= _MOSTLY_NUMERIC:
                stray.append((col, _bad_numbers(present[~ok])))
    if stray:
        col, examples = stray[0]
        also = f"; also in {_listing([c for c, _ in stray[1:]])}" if len(stray) > 1 else ""
        raise _error(
            src,
            f"column {col!r} holds text in a numeric column (e.g. {examples}); "
            f"fix or remove those values{also}",
        )
    if infinite:
        col, n_inf = infinite[0]
        also = f"; also in {_listing([c for c, _ in infinite[1:]])}" if len(infinite) > 1 else ""
        raise _error(src, f"column {col!r} holds {n_inf} infinite value(s); replace or remove them{also}")


def _bad_numbers(values: pd.Series) -> str:
    distinct = list(dict.fromkeys(values.tolist()))[:3]
    return ", ".join(_show(v) for v in distinct)


# --------------------------------------------------------------------------------------------
# Schema inference


def infer_schema(
    df: pd.DataFrame,
    target: str,
    *,
    task: str | None = None,
    column_types: dict[str, str] | None = None,
    drop: list[str] | None = None,
) -> tuple[Schema, list[str]]:
    """Decide the learning task and the kind of every feature column.

    Constant, all-missing, ID-like and free-text columns are dropped. The returned notes start
    with those :func:`load_table` kept in ``df.attrs["notes"]``.

    Args:
        df: The loaded table (not changed).
        target: Name of the label column.
        task: "classification" or "regression"; guessed from the target when None.
        column_types: Column -> kind overrides ("numeric", "categorical", "boolean", "datetime");
            a column named here is kept with that kind even if it looks useless.
        drop: Columns to leave out.

    Returns:
        The schema and human-readable notes on what was guessed or dropped.

    Raises:
        DataError: The target or a column named in ``column_types``/``drop`` is missing, the
            target is empty, or no usable feature column is left.
        ConfigError: ``task`` or a kind in ``column_types`` is not a valid value.
    """
    src = _source_of(df)
    notes = [str(n) for n in df.attrs.get("notes", [])]
    _check_task_value(task)
    column_types = dict(column_types or {})
    drop = list(drop or [])
    for col, kind in column_types.items():
        if kind not in _KINDS:
            raise ConfigError(
                f"column_types[{col!r}] = {kind!r} is not a column kind; use one of {', '.join(_KINDS)}"
            )
    _check_unique_columns(df.columns, src)
    _require_target(df, target, src)
    for option, names in (("column_types", list(column_types)), ("drop", drop)):
        for col in names:
            if col not in df.columns:
                raise _error(
                    src, f"column {col!r} named in {option} is not in the table{_close_hint(col, df.columns)}"
                )
    if target in drop:
        raise _error(src, f"column {target!r} is the target and cannot be dropped")
    if target in column_types:
        notes.append(f"column_types entry for the target {target!r} ignored; the task sets its type")

    present_y = _present(df[target])
    if present_y.empty:
        raise _error(src, f"target column {target!r} is empty (every value is missing)")
    if task is None:
        task, reason = _guess_task(present_y)
        notes.append(f"task: {task} (guessed: target {target!r} {reason})")
    if task == "regression" and _numeric_view(present_y) is None:
        raise _error(
            src,
            f"target column {target!r} holds text but regression needs numbers; "
            "set the task to classification",
        )

    kinds: dict[Any, ColumnKind] = {}
    dropped: dict[Any, str] = {}
    n_rows = len(df)
    for col in df.columns:
        if col == target:
            continue
        if col in drop:
            dropped[col] = "listed in drop"
        elif col in column_types:
            kinds[col] = column_types[col]  # type: ignore[assignment]
        else:
            kind, reason, note = _classify_column(col, df[col], n_rows)
            if kind is None:
                dropped[col] = reason or "unusable"
            else:
                kinds[col] = kind
            if note:
                notes.append(note)
    for col, reason in dropped.items():
        hint = "" if reason == "listed in drop" else " (name it in column_types to keep it)"
        notes.append(f"dropped column {col!r}: {reason}{hint}")
    if not kinds:
        raise _error(
            src,
            f"no usable feature columns left besides the target {target!r} "
            f"(dropped: {_listing(list(dropped))})",
        )

    classes = None
    if task == "classification":
        y = df[target]
        classes = tuple(_sorted_values(_labels(y[~_missing_mask(y)]).drop_duplicates().tolist()))
        if _is_textlike(y):
            notes += _case_variant_notes(y, target, len(classes))
    schema = Schema(target=target, task=task, kinds=kinds, dropped=dropped, classes=classes)  # type: ignore[arg-type]
    return schema, notes


def _case_variant_notes(y: pd.Series, target: Any, n_classes: int) -> list[str]:
    text = _trimmed_text(y).dropna()
    variants = [list(g) for g in text.groupby(text.str.casefold()).unique() if len(g) > 1]
    if not variants:
        return []
    shown = "; ".join("/".join(_show(v) for v in group) for group in variants[:3])
    if n_classes < text.nunique():
        return [f"target {target!r}: labels {shown} differ only in case and were read as one class"]
    return [f"target {target!r}: labels {shown} differ only in case and are kept as separate classes; "
            "give them one spelling if they mean the same"]


def _classify_column(col: Any, s: pd.Series, n_rows: int) -> tuple[ColumnKind | None, str | None, str | None]:
    """Return (kind, None, note) for a usable column or (None, reason, None) for one to drop."""
    present = _present(s)
    if present.empty:
        return None, "all values missing", None
    n_distinct = _n_distinct(present)
    if n_distinct <= 1:
        only = _show(present.iloc[0])
        missing = len(s) - len(present)
        return None, f"constant (every value is {only}" + (f", {missing} missing)" if missing else ")"), None
    if _is_booleanlike(s, present, n_distinct):
        return "boolean", None, None
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "datetime", None, None

    note = None
    kind: ColumnKind
    if _is_numberlike(s) or pd.api.types.is_timedelta64_dtype(s.dtype):
        kind = "numeric"
    elif _numeric_view(present) is not None:
        kind = "numeric"
        note = f"column {col!r} holds numbers stored as text; read as numeric"
    elif _looks_like_dates(present):
        return "datetime", None, None
    else:
        kind = "categorical"

    unique_all = n_distinct == n_rows and len(present) == n_rows
    if unique_all and _is_id_name(col):
        return None, f"ID-like (named like an identifier, all {n_rows} values unique)", None
    integer = _is_integer_column(s, present)
    if unique_all and n_rows >= _ID_MIN_ROWS and (integer or kind == "categorical"):
        return None, f"ID-like (all {n_rows} values unique)", None
    if integer and n_rows >= _RANGE_ID_MIN_ROWS and len(present) == n_rows and _is_row_counter(present):
        return None, "ID-like (a row counter 0..n-1 or 1..n)", None
    if (
        kind == "categorical"
        and len(present) >= _FREE_TEXT_MIN_ROWS
        and n_distinct / len(present) > _FREE_TEXT_RATIO
    ):
        return (
            None,
            f"too many categories ({n_distinct} distinct among {len(present)} values; free text?)",
            None,
        )
    return kind, None, note


def _is_id_name(col: Any) -> bool:
    name = str(col).strip()
    return bool(_ID_NAME.search(name) or _CAMEL_ID.search(name))


def _is_integer_column(s: pd.Series, present: pd.Series) -> bool:
    """True for integer columns, including whole numbers stored as text (but not floats)."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return False
    if pd.api.types.is_integer_dtype(s.dtype):
        return True
    if _is_textlike(s):
        numbers = _numeric_view(present)
        return numbers is not None and bool(np.all(numbers.to_numpy() == np.round(numbers.to_numpy())))
    return False


def _is_row_counter(present: pd.Series) -> bool:
    numbers = _numeric_view(present)
    if numbers is None or not np.all(np.isfinite(numbers.to_numpy())):
        return False
    values = numbers.to_numpy().astype("int64")
    start = int(values[0])
    return start in (0, 1) and np.array_equal(values, np.arange(start, start + len(values)))


def _is_booleanlike(s: pd.Series, present: pd.Series, n_distinct: int) -> bool:
    if pd.api.types.is_bool_dtype(s.dtype):
        return True
    if n_distinct > 6:  # two words, allowing case variants such as Yes/yes/YES
        return False
    distinct = present.unique().tolist()
    if _is_numberlike(s):
        return {float(v) for v in distinct} == {0.0, 1.0}
    if not _is_textlike(s):
        return False
    words = {str(v).strip().lower() for v in distinct}
    return any(words == pair for pair in _BOOLEAN_PAIRS)


def _looks_like_dates(present: pd.Series) -> bool:
    if pd.api.types.infer_dtype(present, skipna=True) in ("datetime", "datetime64", "date"):
        return True
    sample = present.iloc[:_DATE_SAMPLE].astype(str)
    # Demand a year or a d/m/y triple so that bins ("1-5"), times ("12:30") and ordinals ("2nd"),
    # which the date parser happily accepts, stay categorical.
    if sample.str.contains(_DATE_SHAPE, regex=True).mean() < _DATE_PARSE_RATIO:
        return False
    parsed, _ = _parse_dates(sample)
    return float(parsed.notna().mean()) >= _DATE_PARSE_RATIO


def _parse_dates(values: pd.Series) -> tuple[pd.Series, bool]:
    """Parse text as dates, trying day-first when month-first parses fewer values."""
    best = _to_datetime(values, dayfirst=False)
    dayfirst = False
    if best.notna().mean() < 1.0:
        alt = _to_datetime(values, dayfirst=True)
        if alt.notna().sum() > best.notna().sum():
            best, dayfirst = alt, True
    return best, dayfirst


def _to_datetime(values: pd.Series, *, dayfirst: bool) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for utc in (False, True):
            try:
                return pd.to_datetime(values, errors="coerce", dayfirst=dayfirst, utc=utc)
            except (ValueError, TypeError, OverflowError):
                continue
    return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")


def _guess_task(present_y: pd.Series) -> tuple[Task, str]:
    if pd.api.types.is_bool_dtype(present_y.dtype):
        return "classification", "is boolean"
    numbers = _numeric_view(present_y)
    if numbers is None:
        if pd.api.types.infer_dtype(present_y, skipna=True) == "boolean":
            return "classification", "is boolean"
        return "classification", "holds text labels"
    values = numbers.to_numpy(dtype="float64")
    finite = values[np.isfinite(values)]
    n_distinct = len(np.unique(finite))
    integral = bool(len(finite)) and bool(np.all(finite == np.round(finite)))
    if (
        integral
        and n_distinct <= _MAX_CLASSES
        and (n_distinct <= 2 or n_distinct <= _MAX_CLASS_RATIO * len(values))
    ):
        return "classification", f"has {n_distinct} distinct integer values"
    if integral:
        return "regression", f"has {n_distinct} distinct integer values"
    return "regression", "holds non-integer numbers"


# --------------------------------------------------------------------------------------------
# Preparation


def prepare_frame(df: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, list[str]]:
    """Return a new frame holding only the schema's features and target, with one dtype per kind.

    numeric -> float64 (numbers stored as text converted); boolean -> float64 0/1 with NaN;
    datetime -> datetime64; categorical -> object strings (trimmed) with NaN for missing. The
    target is int64 for integer class labels, bool or object strings for other labels, and
    float64 for regression. Rows with a missing target are dropped; the index is kept.

    Args:
        df: The loaded table (not changed).
        schema: The schema from :func:`infer_schema`.

    Returns:
        The prepared frame and notes on what was converted or dropped.

    Raises:
        DataError: A schema column is missing from the table, or no row has a target.
    """
    src = _source_of(df)
    target = schema.target
    _check_unique_columns(df.columns, src)
    missing = [c for c in [*schema.features, target] if c not in df.columns]
    if missing:
        raise _error(src, f"columns {_listing(missing)} from the schema are not in the table")
    notes: list[str] = []
    y_missing = _missing_mask(df[target])
    n_missing = int(y_missing.sum())
    if n_missing == len(df):
        raise _error(src, f"target column {target!r} is empty (every value is missing)")
    if n_missing:
        notes.append(f"dropped {n_missing} of {len(df)} rows whose target {target!r} is missing")
    rows = df.loc[~y_missing.to_numpy()]

    columns, converted_notes = _convert_features(rows, schema.kinds)
    notes += converted_notes
    columns[target] = _prepare_target(rows[target], schema, src)
    if schema.classes is not None:
        unseen = sorted(
            {str(v) for v in columns[target].unique().tolist()} - {str(c) for c in schema.classes}
        )
        if unseen:
            notes.append(f"target {target!r} holds classes not in the schema: {_listing(unseen)}")
    out = pd.DataFrame(columns, index=rows.index)
    out.attrs["source"] = src
    return out, notes


def prepare_features(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """The feature columns of new rows converted as training converted them (see :func:`prepare_frame`).

    Used by a loaded model on the frames it is asked to predict: the same text numbers, yes/no booleans
    and date strings a training table held are read the same way. Prepared frames pass through unchanged.

    Raises:
        DataError: A feature column the model needs is not in the table (all of them are named).
    """
    src = _source_of(df)
    _check_unique_columns(df.columns, src)
    missing = [c for c in kinds if c not in df.columns]
    if missing:
        raise _error(src, f"columns {_listing(missing)} the model needs are not in the table")
    return pd.DataFrame(_convert_features(df, kinds)[0], index=df.index)


def _convert_features(rows: pd.DataFrame, kinds: dict[Any, str]) -> tuple[dict[Any, pd.Series], list[str]]:
    """Each feature column converted to its kind's dtype, and notes on what was converted."""
    unknown = {kind for kind in kinds.values() if kind not in _CONVERTERS}
    if unknown:
        raise ConfigError(
            f"schema has unknown column kinds {_listing(sorted(unknown))}; use {', '.join(_KINDS)}"
        )
    columns: dict[Any, pd.Series] = {}
    notes: list[str] = []
    for col, kind in kinds.items():
        columns[col], note = _CONVERTERS[kind](rows[col], col)
        if note:
            notes.append(note)
    return columns, notes


def _to_numeric_column(s: pd.Series, col: Any) -> tuple[pd.Series, str | None]:
    if pd.api.types.is_bool_dtype(s.dtype) or _is_numberlike(s):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index, name=col), None
    if pd.api.types.is_timedelta64_dtype(s.dtype):
        return s.dt.total_seconds().astype("float64"), None
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        seconds = (s - pd.Timestamp(0, tz=getattr(s.dt, "tz", None))).dt.total_seconds()
        return seconds.astype("float64"), f"column {col!r}: dates converted to seconds since 1970"
    text = _trimmed_text(s)
    numbers = _to_numbers(text)
    lost = int((text.notna() & numbers.isna()).sum())
    note = f"column {col!r}: {lost} value(s) are not numbers and were treated as missing" if lost else None
    return numbers.rename(col), note


def _to_boolean_column(s: pd.Series, col: Any) -> tuple[pd.Series, str | None]:
    if pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index, name=col), None
    if _is_numberlike(s):
        keys = pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
        mapping: dict[Any, float] = {1.0: 1.0, 0.0: 0.0}
    else:
        keys = _trimmed_text(s).str.lower()
        mapping = dict.fromkeys(_TRUE_WORDS, 1.0) | dict.fromkeys(_FALSE_WORDS, 0.0)
    present = keys.dropna()
    distinct = _sorted_values(present.unique().tolist())
    note = None
    if not set(distinct) <= set(mapping) and len(distinct) == 2:
        mapping = {distinct[0]: 0.0, distinct[1]: 1.0}
        note = f"column {col!r}: boolean read as {_show(distinct[0])} -> 0, {_show(distinct[1])} -> 1"
    values = keys.map(mapping).astype("float64")
    lost = int(len(present) - values.notna().sum())
    if lost and note is None:
        note = (
            f"column {col!r}: {lost} value(s) are not yes/no, true/false or 0/1 and were treated as missing"
        )
    return values.rename(col), note


def _to_datetime_column(s: pd.Series, col: Any) -> tuple[pd.Series, str | None]:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        tz = getattr(s.dtype, "tz", None)
        note = f"column {col!r}: times in {tz} converted to UTC" if str(tz) not in ("None", "UTC") else None
        return _naive_utc(s).rename(col), note
    if _is_numberlike(s):
        numbers = pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
        return pd.to_datetime(numbers, unit="s", errors="coerce").rename(col), (
            f"column {col!r}: numbers read as seconds since 1970"
        )
    text = _trimmed_text(s)
    present = text.dropna()
    if present.empty:
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]", name=col), None
    _, dayfirst = _parse_dates(present.iloc[:_DATE_SAMPLE].astype(str))
    parsed = _to_datetime(text, dayfirst=dayfirst)
    lost = int((text.notna() & parsed.isna()).sum())
    note = f"column {col!r}: {lost} value(s) are not dates and were treated as missing" if lost else None
    return _naive_utc(parsed).rename(col), note


def _naive_utc(s: pd.Series) -> pd.Series:
    """Datetimes with a time zone as the same instants in naive UTC (the models and generators take naive
    datetimes; subtracting a naive epoch from aware ones raises). Naive datetimes are kept as they are."""
    if getattr(s.dtype, "tz", None) is not None:
        return s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.copy()


def _to_categorical_column(s: pd.Series, col: Any) -> tuple[pd.Series, str | None]:
    if pd.api.types.is_bool_dtype(s.dtype):
        values = s.astype(object).map({True: "True", False: "False"})
    elif _is_numberlike(s):
        numbers = s.to_numpy(dtype="float64", na_value=np.nan)
        values = pd.Series([_number_text(v) for v in numbers], index=s.index, dtype=object)
    elif pd.api.types.is_datetime64_any_dtype(s.dtype):
        values = pd.Series([np.nan if pd.isna(v) else v.isoformat() for v in s], index=s.index, dtype=object)
    else:
        values = _trimmed_text(s)
    return pd.Series(values.to_numpy(dtype=object), index=s.index, dtype=object, name=col), None


_CONVERTERS = {
    "numeric": _to_numeric_column,
    "boolean": _to_boolean_column,
    "datetime": _to_datetime_column,
    "categorical": _to_categorical_column,
}


def _prepare_target(y: pd.Series, schema: Schema, src: str) -> pd.Series:
    if schema.task == "regression":
        numbers = _numeric_view(y)
        if numbers is None:
            raise _error(src, f"target column {schema.target!r} holds text but the task is regression")
        return numbers.astype("float64").rename(schema.target)
    return _labels(y).rename(schema.target)


def _labels(y: pd.Series) -> pd.Series:
    """Class labels of non-missing values: int64 for integer labels, bool, else float or trimmed text."""
    if isinstance(y.dtype, pd.CategoricalDtype):
        y = y.astype(object)
    if pd.api.types.is_bool_dtype(y.dtype):
        return y.astype(bool)
    if _is_numberlike(y):
        values = y.to_numpy(dtype="float64", na_value=np.nan)
        finite = values[np.isfinite(values)]
        if len(finite) == len(values) and np.all(finite == np.round(finite)):
            return pd.Series(values.astype("int64"), index=y.index)
        return pd.Series(values, index=y.index)
    kind = pd.api.types.infer_dtype(y, skipna=True)
    if kind == "boolean":
        return y.astype(bool)
    if kind == "integer":
        return y.astype("int64")
    text = _trimmed_text(y)
    folded = text.str.casefold()
    if text.nunique() > 2 and any(set(folded.dropna().unique()) == pair for pair in _BOOLEAN_PAIRS):
        # 'Yes', 'yes' and 'YES' in a yes/no column are one class, spelled as most rows spell it
        text = folded.map(text.groupby(folded).agg(lambda v: v.value_counts().index[0]))
    return pd.Series(text.to_numpy(dtype=object), index=y.index, dtype=object)


# --------------------------------------------------------------------------------------------
# Helpers


def guess_target(columns: list[Any], source_name: str) -> str:
    """The target when none is given: a column named target, label, y or class; else a DataError naming them."""
    for name in ("target", "label", "y", "class"):
        if name in columns:
            return name
    raise DataError(f"{source_name}: no target column given; pass --target COLUMN "
                    f"(columns: {', '.join(map(str, columns[:8]))}{' ...' if len(columns) > 8 else ''})")


def read_columns(source: str) -> list[Any]:
    """The column names of a CSV/TSV or Parquet file, read from its header or schema only (cheap on any size)."""
    path = Path(source).expanduser()
    lower = path.name.lower()
    if lower.endswith(_PARQUET_SUFFIXES):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow's own error types for corrupt files
            raise _error(source, f"is not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    if not lower.endswith(_TEXT_SUFFIXES):
        raise _error(source, "unsupported file type; use .csv, .tsv, .txt (optionally .gz), .parquet or .pq")
    compressed = lower.endswith(".gz")
    sample, truncated = _read_head(path, source, compressed)
    if not sample:
        raise _error(source, "file is empty (0 bytes)")
    _, text = _sample_encoding(sample, truncated, source, [])
    if truncated and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    delimiter = _sniff_delimiter(text, prefer_tab=".tsv" in lower)
    return [h.strip() for h in _inspect_records(text, delimiter, source, truncated)]


def require_target(df: pd.DataFrame, target: str, source_name: str) -> None:
    """A DataError naming the close column names when `target` is not a column of `df`."""
    _require_target(df, target, source_name)


def close_hint(name: Any, columns: Iterable[Any]) -> str:
    """'; close matches: ...' (or the columns) for a column name that is not there."""
    return _close_hint(name, columns)


def _error(source: str, message: str) -> DataError:
    text = f"{source}: {message}"
    return DataError(re.sub(r"\s*[\r\n]+\s*", " ", text))


def _show(value: Any, limit: int = 40) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(names: Iterable[Any], limit: int = 8) -> str:
    names = list(names)
    if not names:
        return "(none)"
    shown = ", ".join(_show(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _close_hint(name: Any, columns: Iterable[Any]) -> str:
    columns = [str(c) for c in columns]
    close = difflib.get_close_matches(str(name), columns, n=3, cutoff=0.5)
    folded = [c for c in columns if c.lower() == str(name).lower() and c not in close]
    close = folded + close
    if close:
        return f"; close matches: {_listing(close[:3])}"
    return f"; columns are: {_listing(columns)}"


def _source_of(df: pd.DataFrame) -> str:
    return str(df.attrs.get("source") or "table")


def _check_task_value(task: str | None) -> None:
    if task is not None and task not in _TASKS:
        raise ConfigError(f"task must be 'classification' or 'regression', got {task!r}")


def _check_unique_columns(columns: Iterable[Any], name: str) -> None:
    seen: set[Any] = set()
    duplicated: list[Any] = []
    for col in columns:
        if col in seen and col not in duplicated:
            duplicated.append(col)
        seen.add(col)
    if duplicated:
        raise _error(name, f"column names appear more than once: {_listing(duplicated)}; rename them")


def _require_target(df: pd.DataFrame, target: str, src: str) -> None:
    if target not in df.columns:
        single = (
            "; the table has one column only: is its delimiter not a comma, semicolon, tab or pipe?"
            if df.shape[1] == 1
            else ""
        )
        raise _error(src, f"target column {target!r} not found{_close_hint(target, df.columns)}{single}")


def _is_textlike(s: pd.Series) -> bool:
    return s.dtype == object or isinstance(s.dtype, (pd.StringDtype, pd.CategoricalDtype))


def _is_numberlike(s: pd.Series) -> bool:
    """True for int/float columns (numpy or nullable), excluding booleans."""
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _trimmed_text(s: pd.Series) -> pd.Series:
    """Object strings with surrounding space removed; missing and blank values become NaN."""
    if isinstance(s.dtype, pd.StringDtype):
        text = s.str.strip()  # vectorised for Arrow-backed strings
        return text.where(text != "").astype(object).where(text.notna() & (text != ""), np.nan)
    values = s.astype(object)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        text = values.str.strip()
    else:
        mask = values.notna().to_numpy()
        text = pd.Series(np.nan, index=s.index, dtype=object)
        text[mask] = [str(v).strip() for v in values.to_numpy()[mask]]
    return text.where(text.notna() & (text != ""), np.nan).astype(object)


def _missing_mask(s: pd.Series) -> pd.Series:
    """True where a value is missing (NaN/None/NaT, or a blank string in a text column)."""
    if _is_textlike(s):
        return _trimmed_text(s).isna()
    return s.isna()


def _present(s: pd.Series) -> pd.Series:
    """Non-missing values; for text columns, trimmed and without blank strings."""
    if _is_textlike(s):
        return _trimmed_text(s).dropna()
    return s.dropna()


def _n_distinct(present: pd.Series) -> int:
    try:
        return int(present.nunique(dropna=True))
    except TypeError:  # unhashable cells such as lists
        return int(present.astype(str).nunique())


def _numeric_share(text: pd.Series) -> float:
    """Share of (non-missing, trimmed) text values that parse as numbers."""
    return float(_to_numbers(text).notna().mean()) if len(text) else 0.0


_US_NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"     # 1,234,567.89
_EU_NUMBER = r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?"     # 1.234.567,89
_CURRENCY_SIGNS = "$€£¥₹"


def _to_numbers(text: pd.Series) -> pd.Series:
    """Values as float64, NaN where not a number. Besides what `pd.to_numeric` reads, numbers written for
    people are read: a currency sign, a trailing %, and thousands separators ("$1,234.50", "12%", "1.234,56",
    "1 234"). A column is read with dot groups and a decimal comma ("1,5", "1.234,5") only when some value can be
    read no other way and none needs the other reading; otherwise commas are thousands ("1,500" is 1500)."""
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    failed = numbers.isna() & text.notna()
    if not bool(failed.any()):
        return numbers
    values = text.astype(str).str.strip()
    values = values.str.replace(f"^([+-]?)\\s*[{_CURRENCY_SIGNS}]\\s*", r"\1", regex=True)
    values = values.str.replace(f"\\s*(?:[{_CURRENCY_SIGNS}%]|EUR|USD|GBP)$", "", regex=True)
    values = values.str.replace(r"(?<=\d)[ \u00a0\u202f](?=\d{3}(?:\D|$))", "", regex=True)
    us = values.str.fullmatch(_US_NUMBER).fillna(False).astype(bool)
    eu = values.str.fullmatch(_EU_NUMBER).fillna(False).astype(bool)
    if bool((eu & ~us).any()) and not bool((us & ~eu).any()):
        eu_numbers = values.where(eu).str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        return pd.to_numeric(eu_numbers, errors="coerce").astype("float64").fillna(numbers)
    us_numbers = pd.to_numeric(values.where(us).str.replace(",", "", regex=False), errors="coerce")
    return numbers.fillna(us_numbers.astype("float64"))


def _numeric_view(present: pd.Series) -> pd.Series | None:
    """The values as float64 if every one is a number (or a number written as text), else None."""
    if pd.api.types.is_bool_dtype(present.dtype):
        return None
    if _is_numberlike(present):
        return pd.Series(present.to_numpy(dtype="float64", na_value=np.nan), index=present.index)
    if not _is_textlike(present):
        return None
    text = _trimmed_text(present)
    head = text.dropna().iloc[:1000]
    if _numeric_share(head) < 1.0 and len(head):
        return None  # cheap early exit for text columns
    numbers = _to_numbers(text)
    if bool((numbers.isna() & text.notna()).any()):
        return None
    return numbers.astype("float64")


def _number_text(value: float) -> Any:
    if np.isnan(value):
        return np.nan
    if np.isfinite(value) and value == round(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _sorted_values(values: list[Any]) -> list[Any]:
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda v: (type(v).__name__, str(v)))
