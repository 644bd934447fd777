"""What the stage tasks share: when to retry, and how a resumed run finds the results of finished stages.

Retries: only failures that may pass on their own are retried (a lost connection, a busy server).
A :class:`~synthloop.errors.SynthloopError` says the input is wrong and is final at once, unless it
is marked ``retryable`` (a database that could not be read).

Caching: a stage's result is persisted (Prefect result storage; the `synthloop` command puts it in
``<store>/.prefect-results``) under a key made of

* the run's *resume scope* — a fresh id per run, inherited by a run that resumes a KILLED or FAILED
  run of the same config, so a resumed run reuses finished stages while a new run (e.g. a scheduled
  retrain) always reads its sources anew;
* the task's source (Prefect's ``TASK_SOURCE``: a changed stage is recomputed), its name, and a digest of
  the project's code (`code_digest`: after an upgrade or a fix in a library module such as
  ``synthloop/data/load.py``, a resumed run recomputes rather than reuse what the old code made);
* cheap digests of the inputs (Prefect's ``INPUTS`` would JSON-encode or pickle whole frames; here
  frames and arrays are hashed with ``pandas.util.hash_pandas_object`` / raw bytes, config sections
  by their JSON, models by their pickle); for the collect stage also the source file's size and
  modification time.

A result is pickled straight into a file of its scope's folder (`FilePickle`), and Prefect's record of it
holds only that file's name: Prefect's own pickle serializer would hold the pickle, its base64 and the JSON
record in memory at once, about five times the collected frames.

Results of a run that finished are deleted (its scope is never resumed).
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import TASK_SOURCE, CachePolicy
from prefect.serializers import Serializer
from pydantic import Field

_SCOPE: contextvars.ContextVar[str | None] = contextvars.ContextVar("synthloop_cache_scope", default=None)


def retry_unless_bad_input(task, task_run, state) -> bool:
    """Prefect `retry_condition_fn`: retry unless the failure is bad input (final at once)."""
    from synthloop.errors import SynthloopError

    try:
        state.result()
    except SynthloopError as exc:
        return bool(getattr(exc, "retryable", False))
    except BaseException:
        return True
    return True


def set_scope(scope: str | None) -> contextvars.Token:
    """Make `scope` the resume scope of the stage tasks called from here on (in this context)."""
    return _SCOPE.set(scope)


def reset_scope(token: contextvars.Token) -> None:
    _SCOPE.reset(token)


def storage_dir() -> Path:
    """Where Prefect persists task results (PREFECT_LOCAL_STORAGE_PATH)."""
    from prefect.settings import get_current_settings

    return Path(get_current_settings().results.local_storage_path).expanduser()


def discard_scope(scope: str) -> None:
    """Delete the persisted results of a scope (a finished run's: nothing will resume it)."""
    shutil.rmtree(storage_dir() / f"scope-{scope}", ignore_errors=True)


def digest(value: Any, _depth: int = 0) -> str:
    """A content digest of a task input, stable across processes and cheap for big frames."""
    import numpy as np
    import pandas as pd
    from pydantic import BaseModel

    h = hashlib.sha256()
    if value is None or isinstance(value, (str, int, float, bool)):
        h.update(f"{type(value).__name__}:{value!r}".encode())
    elif isinstance(value, pd.DataFrame):
        h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
        h.update(repr([(str(c), str(t)) for c, t in value.dtypes.items()]).encode())
    elif isinstance(value, (pd.Series, pd.Index)):
        h.update(pd.util.hash_pandas_object(value, index=isinstance(value, pd.Series)).to_numpy().tobytes())
        h.update(f"{value.name}:{value.dtype}".encode())
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            h.update(pd.util.hash_pandas_object(pd.Series(value.ravel()), index=False).to_numpy().tobytes())
        else:
            h.update(np.ascontiguousarray(value).tobytes())
        h.update(f"{value.dtype}{value.shape}".encode())
    elif isinstance(value, BaseModel):
        h.update(type(value).__name__.encode() + value.model_dump_json().encode())
    elif isinstance(value, dict):
        for k in sorted(value, key=repr):
            h.update(repr(k).encode() + digest(value[k], _depth + 1).encode())
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        h.update(type(value).__name__.encode())
        for v in items:
            h.update(digest(v, _depth + 1).encode())
    elif dataclasses.is_dataclass(value) and _depth < 6:
        h.update(type(value).__qualname__.encode())
        for f in dataclasses.fields(value):
            h.update(f.name.encode() + digest(getattr(value, f.name), _depth + 1).encode())
    elif hasattr(value, "get_params") or not hasattr(value, "__dict__") or _depth >= 6:
        import cloudpickle  # fitted models and anything else: their pickle

        h.update(cloudpickle.dumps(value))
    else:  # plain objects holding frames (the label pool): their attributes
        h.update(type(value).__qualname__.encode())
        h.update(digest(vars(value), _depth + 1).encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 over the source of the `synthloop`, `tasks` and `flows` packages (computed once per process)."""
    from synthloop import flows
    import synthloop

    return source_tree_digest([Path(p.__file__).parent for p in (synthloop, sys.modules[__package__], flows)])


def source_tree_digest(roots: list[Path]) -> str:
    """SHA-256 over every ``.py`` file under `roots`: their paths and contents."""
    h = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            h.update(path.relative_to(root.parent).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def source_fingerprint(source: str | None) -> str:
    """Size and modification time of a local source file ('' for URLs and bundled datasets)."""
    if not source or "://" in source or source.startswith("sklearn:"):
        return ""
    try:
        st = os.stat(source)
    except OSError:
        return ""
    return f"{os.path.abspath(source)}:{st.st_size}:{st.st_mtime_ns}"


@dataclass
class StageCache(CachePolicy):
    """Resume scope + task name and source + cheap input digests (see the module docstring)."""

    fingerprint_input: str | None = None  # the input holding a config section whose `source` is a file

    def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs) -> str | None:
        scope = _SCOPE.get()
        if scope is None or task_ctx is None:
            return None
        h = hashlib.sha256(task_ctx.task.name.encode())
        h.update((TASK_SOURCE.compute_key(task_ctx, inputs, flow_parameters) or "").encode())
        h.update(code_digest().encode())
        for name in sorted(inputs or {}):
            h.update(name.encode() + digest(inputs[name]).encode())
        if self.fingerprint_input and self.fingerprint_input in (inputs or {}):
            h.update(source_fingerprint(getattr(inputs[self.fingerprint_input], "source", None)).encode())
        return f"scope-{scope}/{h.hexdigest()[:32]}"


STAGE_CACHE = StageCache()
COLLECT_CACHE = StageCache(fingerprint_input="cfg")


class FilePickle(Serializer):
    """A Prefect result serializer that streams the pickle to a file next to the record and records its name.

    The file lives in the folder of the current resume scope, so `discard_scope` deletes it with the records.
    """

    type: str = Field(default="synthloop-file-pickle", frozen=True)

    def dumps(self, obj: Any) -> bytes:
        import json
        import uuid

        import cloudpickle

        scope = _SCOPE.get()
        name = f"{f'scope-{scope}' if scope else 'unscoped'}/{uuid.uuid4().hex}.pickle"
        path = storage_dir() / name
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        with open(part, "wb") as fh:
            cloudpickle.dump(obj, fh, protocol=5)
        os.replace(part, path)
        return json.dumps({"file": name}).encode()

    def loads(self, blob: bytes) -> Any:
        import json
        import pickle

        with open(storage_dir() / json.loads(blob)["file"], "rb") as fh:
            return pickle.load(fh)


RESULTS = FilePickle()
