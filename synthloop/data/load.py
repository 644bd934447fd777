"""Reading tables: CSV/TSV files (encoding, delimiter and decimal comma sniffed), Parquet, SQL, bundled
scikit-learn datasets and simulators.

What :func:`load_table` had to guess (encoding fallback, decimal commas) is kept in ``df.attrs["notes"]``,
and a display name for the source in ``df.attrs["source"]``.
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

from synthloop.data._common import _check_unique_columns, _error, _listing
from synthloop.errors import DataError

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
_EXTRA_MISSING = ["?"]
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+$")
_DOT_DECIMAL = re.compile(r"^[+-]?\d*\.\d+([eE][+-]?\d+)?$")
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_UNTERMINATED = re.compile(r"EOF inside string starting at row (\d+)")
_URL_USERINFO = re.compile(r"(?P<head>://[^:/?#@]*):(?P<password>.*)@(?=[^@]*$)")
_URL_SECRET_PARAM = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd|secret|token|api_?key|access_?key)=)[^&#]*", re.IGNORECASE
)


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


# A file read by the pre-flight check, kept for the run's own read of the same unchanged file (taken once).
_HANDOFF: dict[tuple, pd.DataFrame] = {}


def _file_key(source: str) -> tuple | None:
    try:
        path = Path(source).expanduser()
        st = path.stat()
    except (OSError, ValueError):
        return None
    return (str(path.resolve()), st.st_size, st.st_mtime_ns) if path.is_file() else None


def load_table(source: str, *, table: str | None = None, query: str | None = None,
               keep_for_next: bool = False) -> pd.DataFrame:
    """Read a table from a file, a bundled scikit-learn dataset or a database.

    Args:
        source: A path to a ``.csv``/``.tsv``/``.txt`` (optionally ``.gz``) or ``.parquet``/``.pq``
            file; ``sklearn:NAME`` for one of :data:`SKLEARN_DATASETS` (label column ``target``);
            or a SQLAlchemy URL such as ``sqlite:///data.db``.
        table: Table to read when ``source`` is a database URL.
        query: SQL query to run when ``source`` is a database URL (instead of ``table``).
        keep_for_next: For a file: keep the frame for the next `load_table` of the same file, while its size and
            modification time are unchanged (the pre-flight check reads the file, then the run reads it again).

    Returns:
        The table. ``attrs["source"]`` holds a display name for messages (passwords redacted) and
        ``attrs["notes"]`` a list of things worth telling the user (encoding fallback, decimal commas).

    Raises:
        DataError: The source is missing, empty, malformed or not readable.
    """
    source = str(source).strip()
    if not source:
        raise DataError("no data source given; pass a file path, sklearn:NAME or a database URL")
    is_file = not source.lower().startswith(("sklearn:", "simulate:")) and "://" not in source
    key = _file_key(source) if is_file and table is None and query is None else None
    if key is not None and key in _HANDOFF:
        return _HANDOFF.pop(key)
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
    if keep_for_next and key is not None:
        kept = df.copy(deep=False)  # copy-on-write: what the check does to its frame never reaches this one
        kept.attrs = {"source": name, "notes": list(notes)}
        _HANDOFF.clear()
        _HANDOFF[key] = kept
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
    if sample.startswith(b"PAR1"):  # a Parquet file under a text name (renamed, or saved with the wrong suffix)
        notes.append(f"{name}: is a Parquet file despite its name; read it as Parquet")
        return _load_parquet(path, name)
    for magic, what in _BINARY_MAGIC.items():
        if sample.startswith(magic):
            raise _error(name, f"is {what}, not a text table")
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
    if not compressed and len(df):
        df = _drop_cut_off_row(path, df, name, delimiter, encoding, len(header), notes)
    return df


#: File signatures of binary formats a user may hand over under a text name.
_BINARY_MAGIC = {b"PK\x03\x04": "a zip archive (an Excel .xlsx workbook is one); save the sheet as CSV",
                 b"\xd0\xcf\x11\xe0": "an old Excel (.xls) or other OLE document; save the sheet as CSV",
                 b"\x1f\x8b": "gzip-compressed; name it .csv.gz (or .tsv.gz) and it is read as such",
                 b"SQLite format 3\x00": "a SQLite database; pass sqlite:///PATH with --table or --query"}


def _drop_cut_off_row(path: Path, df: pd.DataFrame, name: str, delimiter: str, encoding: str, width: int,
                      notes: list[str]) -> pd.DataFrame:
    """A file that ends inside its last row (copied or downloaded in part): that row has fewer fields than the
    header and no line end. pandas fills the missing fields with NaN; the row is dropped, with a note."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    if tail.endswith((b"\n", b"\r")):
        return df
    last = tail.rsplit(b"\n", 1)[-1].decode(encoding, errors="replace")
    fields = next(csv.reader([last], delimiter=delimiter), [])
    if len(fields) >= width or last.count('"') % 2:  # complete, or inside a quoted field spanning lines
        return df
    notes.append(f"{name}: the file ends inside its last row (row {len(df)}: {len(fields)} of {width} fields, "
                 "no line end), as a file cut off in copying does; that row was dropped")
    return df.iloc[:-1]


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
                if path.stat().st_size <= _WHOLE_READ_BYTES:
                    return pd.read_csv(path, encoding=encoding, **options)
                return _read_csv_in_chunks(path, encoding, options)
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


#: Files up to this size are read in one piece. Larger ones are read in chunks of about _CHUNK_BYTES, so that
#: the parser's tokens for the whole file (several times the frame) are never in memory at once.
_WHOLE_READ_BYTES = 32 * 2**20
_CHUNK_BYTES = 16 * 2**20


def _read_csv_in_chunks(path: Path, encoding: str, options: dict[str, Any]) -> pd.DataFrame:
    """The frame `pd.read_csv(path, **options)` reads in one piece, read in chunks of rows.

    Each chunk infers its own dtypes. Where the chunks agree, the joined column is what one read gives. Where
    they differ only between integer and float, one read gives float64, as joining does. Any other disagreement
    (text in some chunks, booleans or missing values in others) is settled by reading that column in one piece.
    """
    with (gzip.open if path.name.lower().endswith(".gz") else open)(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    bytes_per_row = max(1.0, len(head) / max(1, head.count(b"\n")))
    rows = max(1000, int(_CHUNK_BYTES / bytes_per_row))
    with pd.read_csv(path, encoding=encoding, chunksize=rows, **options) as reader:
        chunks = list(reader)
    if len(chunks) <= 1:
        return chunks[0] if chunks else pd.read_csv(path, encoding=encoding, **options)
    columns = list(chunks[0].columns)
    mixed = []
    for i in range(len(columns)):
        dtypes = {chunk.dtypes.iloc[i] for chunk in chunks}
        if len(dtypes) > 1 and not all(pd.api.types.is_integer_dtype(t) or pd.api.types.is_float_dtype(t)
                                       for t in dtypes):
            mixed.append(i)
    if not mixed:
        return pd.concat(chunks, ignore_index=True)
    keep = [i for i in range(len(columns)) if i not in mixed]
    frame = pd.concat([chunk.iloc[:, keep] for chunk in chunks], ignore_index=True)
    del chunks
    whole = pd.read_csv(path, encoding=encoding, usecols=mixed, **options)
    for i in mixed:
        frame.insert(i, columns[i], whole[columns[i]])
    return frame


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
