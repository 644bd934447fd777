"""All MLflow tracking goes through here.

Runs are addressed by id through `MlflowClient` (never the thread-local active run), so a task on a
worker thread cannot start a stray top-level run, and `get_or_create_*` makes a retried step reuse
its run instead of making a second one. The store is created or migrated once, under a file lock,
before runs proceed: processes started together on a fresh store otherwise collide in setup.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import socket
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from synthloop.errors import SynthloopError

TAG_PREFECT_RUN = "prefect.flow_run_id"
TAG_PREFECT_NAME = "prefect.flow_run_name"
TAG_ITERATION = "synthloop.iteration"
TAG_KIND = "synthloop.kind"
TAG_PID = "synthloop.pid"
TAG_HOST = "synthloop.host"
PARENT_TAG = "mlflow.parentRunId"
TAG_DIGEST = "synthloop.config_digest"
TAG_SCOPE = "synthloop.cache_scope"
TAG_RESUMED_FROM = "synthloop.resumed_from"
TAG_RESUMED_BY = "synthloop.resumed_by"
MODEL_REQUIREMENTS = ["mlflow", "scikit-learn", "skops", "xgboost-cpu", "pandas", "numpy", "synthloop"]


def default_store(root: Path | None = None) -> tuple[str, str]:
    """The local store: `sqlite:///<root>/mlruns/mlflow.db` with artifacts under `<root>/mlruns/artifacts`."""
    base = (root or Path.cwd()).resolve() / "mlruns"
    return f"sqlite:///{base / 'mlflow.db'}", (base / "artifacts").as_uri()


def resolve_tracking_uri(configured: str | None) -> tuple[str, str | None]:
    """Tracking URI and artifact root: MLFLOW_TRACKING_URI wins, then the config, then ./mlruns."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured
    if uri:
        if uri.startswith("sqlite:///"):
            db = Path(uri.removeprefix("sqlite:///"))
            return uri, (db.parent / "artifacts").resolve().as_uri()
        return uri, None
    return default_store()


def _lock_path(uri: str) -> Path:
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        return db.parent / ".synthloop-store.lock"
    digest = hashlib.sha1(uri.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"synthloop-store-{digest}.lock"


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def flatten(params: Mapping[str, Any]) -> dict[str, str]:
    """Nested params → dotted keys with string values (MLflow limits a value to 6,000 characters)."""
    out: dict[str, Any] = {}
    _flatten("", params, out)
    return {k: (json.dumps(v) if isinstance(v, (list, tuple, dict)) else str(v))[:6000] for k, v in out.items()}


_SECRET_KEY = re.compile(r"(^|_)(password|passwd|pwd|secret|token|api_?key|access_?key|credentials?)($|_)", re.IGNORECASE)


def redact(key: str, value: str) -> str:
    """What may be recorded of a param or tag: passwords in URLs and values of secret-looking keys hidden."""
    from synthloop.data import redact_url

    if _SECRET_KEY.search(key.rsplit(".", 1)[-1]) and value not in ("", "None", "null"):
        return "***"
    return redact_url(value) if "@" in value or "=" in value else value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _raw_rows_signature(signature, kinds: dict[str, str]):
    """The signature with the input columns as a user's rows hold them: numeric columns as numbers, the others
    (yes/no flags, categories, dates as text or as dates) as whatever the file holds.

    The model prepares raw rows itself (`synthloop.modelstore.LoadedModel.prepare`), as `synthloop predict` does; a
    signature read off prepared rows would make MLflow refuse raw ones (a yes/no column typed as double).
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    if signature.inputs is None:
        return signature
    cols = [c if kinds.get(c.name) == "numeric" else ColSpec(AnyType(), c.name, required=c.required)
            for c in signature.inputs.inputs]
    return ModelSignature(inputs=Schema(cols), outputs=signature.outputs, params=signature.params)


class Tracker:
    """One experiment in one MLflow store, addressed by run id."""

    def __init__(self, tracking_uri: str | None, experiment: str):
        from filelock import FileLock
        from mlflow import MlflowClient

        self.uri, artifact_root = resolve_tracking_uri(tracking_uri)
        # The fluent API (model logging, registry) needs the URI; MLflow also exports it as MLFLOW_TRACKING_URI,
        # which would then win over the configured store of every later Tracker in this process: undo that.
        self._fluent()
        with FileLock(str(_lock_path(self.uri)), timeout=300):
            try:  # the client opens (and creates or migrates) the store at once: under the lock
                self.client = MlflowClient(self.uri)
                self.client.search_registered_models(max_results=1)  # the registry's store too
                exp = self.client.get_experiment_by_name(experiment)
                self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(
                    experiment, artifact_location=artifact_root)
            except Exception as exc:  # an unreachable server or unusable store: say which
                raise SynthloopError(f"MLflow store {self.uri}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None

    # runs ---------------------------------------------------------------------------------------
    def _find(self, filter_string: str) -> str | None:
        runs = self.client.search_runs([self.experiment_id], filter_string, max_results=1)
        return runs[0].info.run_id if runs else None

    def get_or_create_parent(self, flow_run_id: str, flow_run_name: str, run_name: str | None = None) -> str:
        """The parent run of a Prefect flow run (created once per flow run)."""
        found = self._find(f"tags.`{TAG_PREFECT_RUN}` = '{flow_run_id}' and tags.`{TAG_KIND}` = 'parent'")
        if found:
            self.client.update_run(found, status="RUNNING")
            return found
        run = self.client.create_run(self.experiment_id, run_name=run_name or flow_run_name, tags={
            TAG_PREFECT_RUN: flow_run_id, TAG_PREFECT_NAME: flow_run_name, TAG_KIND: "parent",
            TAG_PID: str(os.getpid()), TAG_HOST: socket.gethostname()})
        return run.info.run_id

    def get_or_create_child(self, parent_id: str, key: str, run_name: str, tags: dict[str, str] | None = None) -> str:
        """A nested run of `parent_id` identified by `key` (an iteration or trial), created once."""
        found = self._find(f"tags.`{PARENT_TAG}` = '{parent_id}' and tags.`synthloop.key` = '{key}'")
        if found:
            return found
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags={
            PARENT_TAG: parent_id, "synthloop.key": key, TAG_KIND: "child", TAG_PID: str(os.getpid()),
            TAG_HOST: socket.gethostname(), **(tags or {})})
        return run.info.run_id

    def finish(self, run_id: str, status: str = "FINISHED", reason: str | None = None) -> None:
        if reason:
            self.client.set_tag(run_id, "failure_reason" if status != "FINISHED" else "note", reason[:5000])
        self.client.set_terminated(run_id, status=status)

    def status(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.status

    def resume_scope(self, parent_id: str, config_digest: str) -> tuple[str | None, str]:
        """Decide whether the run `parent_id` resumes an earlier one, and tag both.

        The latest ended parent run of the same config digest is resumed when it was KILLED or FAILED
        and no run has resumed it yet. Returns the resumed run's id (or None) and the cache scope:
        the resumed run's, else this run's own id.
        """
        own = self.client.get_run(parent_id).data.tags
        if own.get(TAG_SCOPE):  # a retried flow run keeps the scope it had
            return own.get(TAG_RESUMED_FROM), own[TAG_SCOPE]
        runs = self.client.search_runs(
            [self.experiment_id], f"tags.`{TAG_DIGEST}` = '{config_digest}' and tags.`{TAG_KIND}` = 'parent'",
            max_results=20, order_by=["attributes.start_time DESC"])
        previous = next((r for r in runs if r.info.run_id != parent_id and r.info.status != "RUNNING"), None)
        tags = {TAG_DIGEST: config_digest, TAG_SCOPE: parent_id}
        resumed = None
        if (previous and previous.info.status in ("KILLED", "FAILED") and TAG_RESUMED_BY not in previous.data.tags
                and previous.data.tags.get(TAG_SCOPE)):
            resumed = previous.info.run_id
            tags.update({TAG_SCOPE: previous.data.tags[TAG_SCOPE], TAG_RESUMED_FROM: resumed})
            self.client.set_tag(resumed, TAG_RESUMED_BY, parent_id)
        self.set_tags(parent_id, tags)
        return resumed, tags[TAG_SCOPE]

    def mark_ghost_runs(self) -> list[str]:
        """Runs left RUNNING by a process on this host that no longer exists → KILLED, with a note."""
        host, killed = socket.gethostname(), []
        for run in self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'", max_results=500):
            tags = run.data.tags
            pid = tags.get(TAG_PID)
            if tags.get(TAG_HOST) == host and pid and pid.isdigit() and not _pid_alive(int(pid)):
                self.client.set_tag(run.info.run_id, "failure_reason",
                                    f"process {pid} ended without closing this run; marked KILLED by a later run")
                self.client.set_terminated(run.info.run_id, status="KILLED")
                killed.append(run.info.run_id)
        return killed

    # values -------------------------------------------------------------------------------------
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = flatten(params)
        items = [Param(k[:250], redact(k, v)) for k, v in flat.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i:i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None and v == v]
        for i in range(0, len(items), 500):
            self.client.log_batch(run_id, metrics=items[i:i + 500])

    def log_curves(self, run_id: str, curves: Mapping[str, Iterable[float]]) -> None:
        """Per-step series (e.g. train_loss and val_loss per boosting round) as step metrics."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(name, float(v), now, step) for name, values in curves.items()
                 for step, v in enumerate(values)]
        for i in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[i:i + 1000])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, redact(k, str(v))[:5000]) for k, v in tags.items()])

    def log_figure(self, run_id: str, figure: Any, path: str) -> None:
        import matplotlib.pyplot as plt

        # Light PNG compression: a plot is written in half the time, a few KB larger.
        self.client.log_figure(run_id, figure, path, save_kwargs={"pil_kwargs": {"compress_level": 1}}
                               if path.endswith(".png") else None)
        plt.close(figure)

    def log_dict(self, run_id: str, data: Any, path: str) -> None:
        self.client.log_dict(run_id, data, path)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_dataset(self, run_id: str, frame: Any, name: str, source: str, context: str, targets: str | None) -> None:
        """Record a dataset (name, digest, source, schema) as an input of a run.

        The digest is the project's own content hash of the whole frame and the schema is read off its first
        rows: MLflow's `from_pandas` profiles the whole frame, which took seconds at 100k rows.
        """
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.models import infer_signature

        from synthloop.splits import frame_digest

        is_file = "://" not in source and Path(source).is_file()
        with warnings.catch_warnings():  # MLflow's schema hints on int columns and its two equal readings of a
            warnings.simplefilter("ignore")  # local path as a dataset source: known, by design
            origin = resolve_dataset_source(str(Path(source).resolve())) if is_file else \
                CodeDatasetSource(tags={"source": source, "targets": targets or ""})
            schema = infer_signature(frame.head(100)).inputs
        ds = MetaDataset(origin, name=name if is_file else f"{name}:{source}", digest=frame_digest(frame)[:8],
                         schema=schema)
        self.client.log_inputs(run_id, [DatasetInput(ds._to_mlflow_entity(),
                                                     [InputTag("mlflow.data.context", context)])])

    # models -------------------------------------------------------------------------------------
    def _fluent(self) -> None:
        """Point MLflow's fluent API (model logging, registry) at this store without exporting the URI."""
        import mlflow

        exported = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.uri)
        if exported is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = exported

    def log_model(self, run_id: str, pipeline: Any, *, task: str, family: str, classes: list[Any] | None,
                  kinds: dict[str, str], example: Any, registered_name: str | None,
                  goal_met: bool | None = None) -> tuple[str, str | None]:
        """Log a fitted pipeline in native formats (see `synthloop.modelstore`), record its file digests, register it.

        A registered version is tagged with whether its run met its goal (`goal_met`; None reads the run's
        `goal_met` tag). When the model has no champion yet, the first version whose run met its goal becomes
        `champion`; a version whose run missed its goal never does (see `synthloop.registry.register_outcome`).

        Returns:
            The model URI and the registered version (None when not registered).
        """
        import mlflow
        import mlflow.artifacts
        import mlflow.pyfunc
        from mlflow.models import Model, infer_signature

        from synthloop import modelstore

        self._fluent()
        # MLflow's hints on int columns are known; its registry prints "Created version ..." to stderr: the caller
        # reports the version itself.
        with (warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()),
              tempfile.TemporaryDirectory(prefix="synthloop-model-") as tmp):
            warnings.simplefilter("ignore")
            native = Path(tmp) / modelstore.NATIVE_DIR
            loaded = modelstore.save_native(pipeline, task=task, family=family, classes=classes, kinds=kinds,
                                            directory=native)
            signature = _raw_rows_signature(infer_signature(example, loaded.predict(example),
                                                            params={"output": "label"}), kinds)
            # Created here, in this experiment: Model.log alone files it under the process's active experiment.
            params = self.client.get_run(run_id).data.params
            created = self.client.create_logged_model(self.experiment_id, name="model", source_run_id=run_id,
                                                      params={k: str(v) for k, v in params.items()})
            info = Model.log(artifact_path=None, name="model", flavor=mlflow.pyfunc, run_id=run_id,
                             model_id=created.model_id,
                             python_model=str(modelstore.CODE_PATH), artifacts={modelstore.NATIVE_DIR: str(native)},
                             signature=signature, input_example=example, pip_requirements=MODEL_REQUIREMENTS)
            logged = self.client.get_logged_model(info.model_id)
            copy = mlflow.artifacts.download_artifacts(artifact_uri=logged.artifact_location,
                                                       dst_path=str(Path(tmp) / "logged"), tracking_uri=self.uri)
            digests = json.dumps(modelstore.file_digests(Path(copy)), separators=(",", ":"))
            self.client.set_logged_model_tags(info.model_id, {modelstore.TAG_DIGESTS: digests})
            version = None
            if registered_name:
                mv = mlflow.register_model(info.model_uri, registered_name, await_registration_for=60)
                version = str(mv.version)
        if version is not None:
            from synthloop import registry

            met = goal_met if goal_met is not None else self.client.get_run(run_id).data.tags.get("goal_met") == "true"
            registry.settle_new_version(registry.client_for(self.uri), registered_name, version, met)
        return info.model_uri, version

    def experiment_link(self, ui_base: str = "http://127.0.0.1:5000") -> str:
        return f"{ui_base}/#/experiments/{self.experiment_id}/runs"

    def run_link(self, run_id: str, ui_base: str = "http://127.0.0.1:5000") -> str:
        return f"{ui_base}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def compare_link(self, run_ids: list[str], ui_base: str = "http://127.0.0.1:5000") -> str:
        runs = json.dumps(run_ids, separators=(",", ":"))
        return f"{ui_base}/#/compare-runs?runs={runs}&experiments=[\"{self.experiment_id}\"]"
