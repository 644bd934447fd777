"""Models as saved and loaded: native formats, no pickles, and loading only from the project's own store.

A fitted model is saved as three files, none of them a pickle:

- ``preprocess.skops``: the fitted column preprocessing, in skops' format, which loads only the types in
  `TRUSTED_TYPES` (a list fixed here, never read from the model itself);
- ``estimator.ubj`` (xgboost's own UBJSON format) or ``estimator.skops`` (scikit-learn estimators);
- ``synthloop.json``: family, task, class labels, and the feature columns with their kinds.

They are logged to MLflow as a pyfunc model whose code is `synthloop/pyfunc_model.py` (MLflow's
"models from code": no Python object is pickled either). After logging, the SHA-256 of every file of the
logged model is written as a tag on the logged model in the tracking store. `load_model` accepts only a
model of the configured store, downloads it, checks every digest against that tag and loads with the
fixed allow-list: a model file swapped or edited on disk is refused before any of it is deserialised.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthloop.errors import SynthloopError

FORMAT_VERSION = 1
META_FILE = "synthloop.json"
PREPROCESS_FILE = "preprocess.skops"
NATIVE_DIR = "native"  # the name of the pyfunc artifact that holds the three files
TAG_DIGESTS = "synthloop.files_sha256"
CODE_PATH = Path(__file__).with_name("pyfunc_model.py")

# Every type in a synthloop model's skops files that skops does not trust by default. Anything else in a
# file is refused at load time (and at save time, so a model that could not be loaded is never logged).
TRUSTED_TYPES = (
    # HistGradientBoosting with native categorical splits keeps an internal ColumnTransformer whose numeric part is
    # FunctionTransformer(partial(check_array, ...)); skops loads a partial only when its function is trusted too.
    "functools.partial",
    "sklearn.utils.validation.check_array",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "synthloop.models.TrainRangeClipper",
    "synthloop.models._as_object",
    "synthloop.models.datetime_features",
)
_XGB_CLASSES = ("XGBClassifier", "XGBRegressor")


class ModelLoadError(SynthloopError):
    """A model cannot be loaded: not in this store, not saved by synthloop, or its files changed."""


@dataclass
class NativeModel:
    """A loaded model: the fitted pipeline, predicting the user's labels (classification) or values.

    Attributes:
        pipeline: `Pipeline(preprocess, model)` taking the raw feature frame.
        task: "classification" or "regression".
        family: The model family ("xgboost", "random_forest" ...).
        classes: Class labels in the order of `predict_proba`'s columns (classification), else None.
        kinds: Feature column -> kind (numeric, boolean, datetime, categorical), in training order: new rows
            are converted as the training rows were.
    """

    pipeline: Any
    task: str
    family: str
    classes: list[Any] | None
    kinds: dict[str, str]

    @property
    def features(self) -> list[str]:
        return list(self.kinds)

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        from synthloop.data import prepare_features

        return prepare_features(X, self.kinds)

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.task != "classification":
            raise TypeError("predict_proba is for classification models; this one is a regression model")
        return self.pipeline.predict_proba(self.prepare(X))

    def labels(self, proba: np.ndarray) -> np.ndarray:
        """The class label each row of `predict_proba`'s output stands for."""
        return self.classes_[np.asarray(proba).argmax(axis=1)]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.task == "classification":
            return self.labels(self.predict_proba(X))
        return np.asarray(self.pipeline.predict(self.prepare(X)), dtype=float)


# saving -------------------------------------------------------------------------------------------
def save_native(pipeline: Any, *, task: str, family: str, classes: list[Any] | None, kinds: dict[str, str],
                directory: Path) -> NativeModel:
    """Write a fitted `Pipeline(preprocess, model)`, or an `Ensemble` of them, as native files into `directory`.

    An ensemble's members go into `member-0/`, `member-1/` ... (each as a single model's files) and their
    weights into `synthloop.json`.

    Returns:
        The model as `load_native` will give it back (read from the files just written, so what is logged
        is known to load).
    """
    from synthloop.ensemble import Ensemble

    directory.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"format_version": FORMAT_VERSION, "task": task, "family": family,
                            "kinds": dict(kinds), "classes": _plain(classes)}
    if isinstance(pipeline, Ensemble):
        members = []
        for i, member in enumerate(pipeline.members):
            members.append({"dir": f"member-{i}", **_save_member(member, directory / f"member-{i}")})
        meta["ensemble"] = {"weights": [float(w) for w in pipeline.weights], "members": members}
    else:
        meta.update(_save_member(pipeline, directory))
    (directory / META_FILE).write_text(json.dumps(meta, indent=1))
    return load_native(directory)


def _save_member(pipeline: Any, directory: Path) -> dict[str, Any]:
    """One fitted pipeline's files: the preprocessing (skops) and the estimator (xgboost UBJ or skops)."""
    import skops.io as sio

    from synthloop.models import Log1pTarget

    directory.mkdir(parents=True, exist_ok=True)
    pre, est = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
    meta: dict[str, Any] = {}
    if isinstance(est, Log1pTarget):
        est, meta["target_transform"] = est.estimator, Log1pTarget.transform
    sio.dump(pre, directory / PREPROCESS_FILE, compression=zipfile.ZIP_DEFLATED)
    if type(est).__name__ in _XGB_CLASSES and type(est).__module__.startswith("xgboost"):
        est.save_model(directory / "estimator.ubj")
        meta["estimator"] = {"file": "estimator.ubj", "format": "xgboost-ubj", "class": type(est).__name__}
    else:
        sio.dump(est, directory / "estimator.skops", compression=zipfile.ZIP_DEFLATED)
        meta["estimator"] = {"file": "estimator.skops", "format": "skops", "class": type(est).__name__}
    for name in (PREPROCESS_FILE, meta["estimator"]["file"]):
        if name.endswith(".skops"):
            untrusted = sorted(set(sio.get_untrusted_types(file=directory / name)) - set(TRUSTED_TYPES))
            if untrusted:
                raise ModelLoadError(f"model file {name} would hold types synthloop does not load: "
                                     f"{', '.join(untrusted)}")
    return meta


def _plain(classes: list[Any] | None) -> list[Any] | None:
    """Class labels as JSON values (numpy scalars to Python ones)."""
    if classes is None:
        return None
    return [c.item() if isinstance(c, np.generic) else c for c in classes]


# loading ------------------------------------------------------------------------------------------
def load_native(directory: Path, *, threads: int = 1) -> NativeModel:
    """Read the files `save_native` wrote. skops files load only `TRUSTED_TYPES`; xgboost reads its own format."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{directory / META_FILE}: not a synthloop model ({type(exc).__name__})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(f"{directory / META_FILE}: model format {meta.get('format_version')!r} is not "
                             f"{FORMAT_VERSION}, the one this synthloop reads")
    if "ensemble" in meta:
        from synthloop.ensemble import Ensemble

        info = meta["ensemble"]
        members = [_load_member(directory / m["dir"], m, threads) for m in info["members"]]
        n_classes = len(meta["classes"]) if meta["classes"] is not None else None
        pipeline = Ensemble(members, info["weights"], meta["task"], n_classes)
    else:
        pipeline = _load_member(directory, meta, threads)
    return NativeModel(pipeline, meta["task"], meta["family"], meta["classes"], meta["kinds"])


def _load_member(directory: Path, meta: dict[str, Any], threads: int) -> Any:
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from skops.io.exceptions import UntrustedTypesFoundException

    from synthloop.models import Log1pTarget

    def skops_load(name: str):
        try:
            return sio.load(directory / name, trusted=list(TRUSTED_TYPES))
        except UntrustedTypesFoundException as exc:
            raise ModelLoadError(f"{directory / name}: refused, it holds types synthloop does not load "
                                 f"({exc})") from None

    pre = skops_load(PREPROCESS_FILE)
    info = meta["estimator"]
    if info["format"] == "xgboost-ubj":
        import xgboost as xgb

        if info["class"] not in _XGB_CLASSES:
            raise ModelLoadError(f"{directory / META_FILE}: unknown xgboost class {info['class']!r}")
        est = getattr(xgb, info["class"])()
        est.load_model(directory / info["file"])
        est.set_params(n_jobs=threads)
    elif info["format"] == "skops":
        est = skops_load(info["file"])
        if "n_jobs" in est.get_params():
            est.set_params(n_jobs=threads)
    else:
        raise ModelLoadError(f"{directory / META_FILE}: unknown estimator format {info['format']!r}")
    transform = meta.get("target_transform")
    if transform == Log1pTarget.transform:
        est = Log1pTarget(est)
    elif transform is not None:
        raise ModelLoadError(f"{directory / META_FILE}: unknown target transform {transform!r}")
    return Pipeline([("preprocess", pre), ("model", est)])


MLFLOW_WRITTEN = frozenset({"registered_model_meta"})


def file_digests(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under `directory`, by relative path."""
    out = {}
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        out[path.relative_to(directory).as_posix()] = h.hexdigest()
    return out


_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[\w-]+)$")
_LOGGED = re.compile(r"^models:/(?P<id>m-[0-9a-f]+)$")
ACCEPTED = "models:/<name>@<alias>, models:/<name>/<version> or models:/m-<id>"


def resolve_model_id(client, uri: str) -> str:
    """The logged-model id a URI names in the client's store; anything that is not in the store is refused."""
    from mlflow.exceptions import MlflowException

    if m := _LOGGED.match(uri):
        return m["id"]
    try:
        if m := _VERSION.match(uri):
            mv = client.get_model_version(m["name"], m["version"])
        elif m := _ALIAS.match(uri):
            mv = client.get_model_version_by_alias(m["name"], m["alias"])
        else:
            raise ModelLoadError(f"synthloop loads models only from its own MLflow store: give {ACCEPTED}, "
                                 f"not {uri!r}")
    except MlflowException as exc:
        raise ModelLoadError(f"{uri}: not in the store ({str(exc).splitlines()[0]})") from None
    if mv.model_id:
        return mv.model_id
    if m := _LOGGED.match(mv.source or ""):
        return m["id"]
    raise ModelLoadError(f"{uri}: version {mv.version} is not a logged model of the store (source {mv.source})")


def load_model(uri: str, tracking_uri: str | None = None, *, threads: int = 1) -> NativeModel:
    """Load a synthloop model from the project's store, checking every file against the digests recorded there.

    Args:
        uri: One of `ACCEPTED`, resolved in the store (paths, URLs and `runs:/` are refused).
        tracking_uri: The store; default as everywhere: MLFLOW_TRACKING_URI, else ./mlruns.
        threads: Threads the estimator may use to predict.
    Raises:
        ModelLoadError: the model is not in the store, was not saved by synthloop, lives outside the store's
            artifact root, or a file differs from its recorded digest.
    """
    import mlflow.artifacts
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from synthloop.tracking import resolve_tracking_uri

    store, artifact_root = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(store)
    model_id = resolve_model_id(client, uri)
    try:
        logged = client.get_logged_model(model_id)
    except MlflowException as exc:
        raise ModelLoadError(f"{uri}: not in the store {store} ({str(exc).splitlines()[0]})") from None
    recorded = logged.tags.get(TAG_DIGESTS)
    if not recorded:
        raise ModelLoadError(f"{uri}: no file digests recorded for it in the store; it was not saved by this "
                             f"version of synthloop, so it is not loaded")
    if artifact_root and not _within(logged.artifact_location, artifact_root):
        raise ModelLoadError(f"{uri}: its files are at {logged.artifact_location}, outside the store's artifact "
                             f"root {artifact_root}")
    expected = json.loads(recorded)
    with tempfile.TemporaryDirectory(prefix="synthloop-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=logged.artifact_location, dst_path=tmp,
                                                         tracking_uri=store))
        # MLflow adds this file (the registered name and version) when it loads a registered model itself, e.g.
        # for `mlflow models serve`: its own bookkeeping, never read here.
        actual = {k: v for k, v in file_digests(local).items() if k not in MLFLOW_WRITTEN}
        if actual != {k: v for k, v in expected.items() if k not in MLFLOW_WRITTEN}:
            changed = sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])
            missing, extra = sorted(expected.keys() - actual.keys()), sorted(actual.keys() - expected.keys())
            parts = [f"{label}: {', '.join(names)}" for label, names in
                     (("changed", changed), ("missing", missing), ("added", extra)) if names]
            raise ModelLoadError(f"{uri}: its files differ from the digests recorded in the store "
                                 f"({'; '.join(parts)}); refused")
        return load_native(local / "artifacts" / NATIVE_DIR, threads=threads)


def _within(location: str, root: str) -> bool:
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    def as_path(uri: str) -> Path | None:
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            return Path(url2pathname(parsed.path) if parsed.scheme else uri).resolve()
        return None

    loc, base = as_path(location), as_path(root)
    if loc is None or base is None:  # a remote artifact store: its location is whatever the server says
        return urlparse(location).scheme == urlparse(root).scheme
    return loc == base or base in loc.parents
