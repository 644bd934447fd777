"""Loading, checking and typing of tables.

The collect stage calls these in order:

1. :func:`load_table` reads a CSV/TSV/Parquet file, a bundled scikit-learn dataset or a SQL
   table into a DataFrame. What it had to guess (encoding fallback, decimal commas) is kept in
   ``df.attrs["notes"]``, and a display name for the source in ``df.attrs["source"]``.
2. :func:`check_frame` rejects tables that cannot be learned from, with a one-line message.
3. :func:`infer_schema` decides the task and the kind of every column, dropping useless ones.
4. :func:`prepare_frame` returns a new frame with one consistent dtype per column kind.

The modules: :mod:`~synthloop.data.load` (files, CSV sniffing and encodings, Parquet, SQL, bundled and
simulated sets), :mod:`~synthloop.data.check`, :mod:`~synthloop.data.infer` (column kinds, the task) and
:mod:`~synthloop.data.prepare` (conversions, the target). Everything others import is re-exported here.

Every problem with the input raises :class:`~synthloop.errors.DataError` whose message is one
line naming the source, the column where there is one, and what to fix. Problems with option
values (an unknown task or column kind) raise :class:`~synthloop.errors.ConfigError`.
"""

from synthloop.data._common import _listing  # noqa: F401 (cli_predict's messages use it)
from synthloop.data.check import check_frame, close_hint, require_target
from synthloop.data.infer import guess_target, infer_schema
from synthloop.data.load import (
    SECRET_VAR_PREFIX,
    SIMULATE_SETTINGS,
    SKLEARN_DATASETS,
    SNIFF_BYTES,
    expand_secrets,
    load_table,
    move_secrets_to_environment,
    read_columns,
    redact_url,
)
from synthloop.data.prepare import prepare_features, prepare_frame
from synthloop.errors import ConfigError, DataError  # noqa: F401 (the collect task catches data.DataError)

__all__ = [
    "SECRET_VAR_PREFIX",
    "SIMULATE_SETTINGS",
    "SKLEARN_DATASETS",
    "SNIFF_BYTES",
    "check_frame",
    "close_hint",
    "expand_secrets",
    "guess_target",
    "infer_schema",
    "load_table",
    "move_secrets_to_environment",
    "prepare_features",
    "prepare_frame",
    "read_columns",
    "redact_url",
    "require_target",
]
