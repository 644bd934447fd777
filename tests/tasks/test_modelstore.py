"""Models are saved in native formats (xgboost UBJ, skops), never pickled, and load only from the project's store."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthloop import modelstore
from synthloop.data import prepare_features
from synthloop.errors import DataError
from synthloop.models import FAMILIES, default_spec, fit_model
from synthloop.modelstore import ModelLoadError, load_model, load_native, save_native
from synthloop.tracking import Tracker
from synthloop.types import Schema


def _frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["x", "y", "z"], n),
                      "c": pd.date_range("2021-01-01", periods=n, freq="D"), "d": rng.integers(0, 2, n).astype(bool)})
    X.loc[::9, "a"] = np.nan
    return X


KINDS = {"a": "numeric", "b": "categorical", "c": "datetime", "d": "boolean"}


def _fitted(family: str, task: str):
    X = prepare_features(_frame(), KINDS)  # as collect prepares the rows a model trains on
    signal = X["a"].fillna(0) + (X["b"] == "x")
    if task == "classification":
        labels = np.array(["cat", "dog", "eel"])
        y = np.digitize(signal, [-0.3, 0.6])
        schema = Schema("t", "classification", KINDS, classes=tuple(labels))
    else:
        y, labels = signal.to_numpy(float), None
        schema = Schema("t", "regression", KINDS)
    spec = default_spec(family, n_estimators=20)
    return fit_model(spec, schema, X, y, X_val=X, y_val=y).pipeline, X, labels


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_round_trips_through_native_files_without_a_pickle(family, task, tmp_path):
    pipeline, X, labels = _fitted(family, task)
    save_native(pipeline, task=task, family=family, classes=None if labels is None else list(labels),
                kinds=KINDS, directory=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    est_file = "estimator.ubj" if family == "xgboost" else "estimator.skops"
    assert names == sorted(["synthloop.json", "preprocess.skops", est_file])
    for p in tmp_path.iterdir():  # no pickle stream anywhere (protocol 2+ starts with 0x80)
        assert not p.read_bytes().startswith(b"\x80"), p.name
    back = load_native(tmp_path)
    if task == "classification":
        np.testing.assert_allclose(back.predict_proba(X), pipeline.predict_proba(X))
        assert list(back.predict(X)) == list(labels[pipeline.predict_proba(X).argmax(axis=1)])
    else:
        np.testing.assert_allclose(back.predict(X), pipeline.predict(X))
    if family == "xgboost":  # xgboost's own format: a bare Booster reads it
        import xgboost as xgb

        booster = xgb.Booster(model_file=str(tmp_path / "estimator.ubj"))
        assert booster.num_boosted_rounds() == pipeline.named_steps["model"].get_booster().num_boosted_rounds()


def test_new_rows_are_read_as_the_training_rows_were(tmp_path):
    """Text numbers, yes/no and date strings, as a CSV would hold them, give the same predictions."""
    pipeline, X, labels = _fitted("xgboost", "classification")
    model = save_native(pipeline, task="classification", family="xgboost", classes=list(labels), kinds=KINDS,
                        directory=tmp_path)
    raw = pd.DataFrame({"a": [f" {v} " if v == v else "" for v in X["a"]],
                        "b": X["b"], "c": X["c"].dt.strftime("%Y-%m-%d"),
                        "d": X["d"].map({1.0: "yes", 0.0: "no"}), "unused": 1})
    np.testing.assert_allclose(model.predict_proba(raw), pipeline.predict_proba(X))
    with pytest.raises(DataError, match=r"new\.csv: columns 'a', 'c' the model needs are not in the table"):
        frame = raw.drop(columns=["a", "c"])
        frame.attrs["source"] = "new.csv"
        model.predict(frame)


def sneaky(X):  # a function that is not on the allow-list
    return X


def test_a_file_holding_a_type_off_the_allow_list_is_refused(tmp_path):
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipeline, X, labels = _fitted("xgboost", "classification")
    odd = Pipeline([("preprocess", FunctionTransformer(sneaky)), ("model", pipeline.named_steps["model"])])
    with pytest.raises(ModelLoadError, match="test_modelstore.sneaky"):
        save_native(odd, task="classification", family="xgboost", classes=list(labels), kinds=KINDS,
                    directory=tmp_path / "refused")
    # A file crafted by hand with that type: load refuses it too, naming the file.
    save_native(pipeline, task="classification", family="xgboost", classes=list(labels), kinds=KINDS,
                directory=tmp_path / "ok")
    sio.dump(FunctionTransformer(sneaky), tmp_path / "ok" / "preprocess.skops", compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelLoadError, match=r"preprocess\.skops: refused"):
        load_native(tmp_path / "ok")


@pytest.fixture
def logged(tmp_path):
    """A model logged and registered through `Tracker` in a real temporary store."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    tracker = Tracker(uri, "models")
    run = tracker.client.create_run(tracker.experiment_id).info.run_id
    tracker.client.log_param(run, "family", "xgboost")
    pipeline, X, labels = _fitted("xgboost", "classification")
    model_uri, version = tracker.log_model(run, pipeline, task="classification", family="xgboost",
                                           classes=list(labels), kinds=KINDS, example=X.head(5),
                                           registered_name="pets")
    tracker.client.set_registered_model_alias("pets", "champion", version)
    return {"tracker": tracker, "uri": uri, "model_uri": model_uri, "version": version, "X": X,
            "expected": pipeline.predict_proba(X), "labels": labels, "root": tmp_path / "store"}


def _model_dir(logged) -> Path:
    model_id = logged["model_uri"].removeprefix("models:/")
    lm = logged["tracker"].client.get_logged_model(model_id)
    return Path(lm.artifact_location.removeprefix("file://"))


def test_a_logged_model_lives_in_its_experiment_and_loads_by_every_store_uri(logged):
    tracker = logged["tracker"]
    lm = tracker.client.get_logged_model(logged["model_uri"].removeprefix("models:/"))
    assert lm.experiment_id == tracker.experiment_id, "the model must be filed under the run's experiment"
    folder = _model_dir(logged)
    assert (logged["root"] / "artifacts").resolve() in folder.resolve().parents
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert "artifacts/native/estimator.ubj" in files and not any(f.endswith((".pkl", ".pickle")) for f in files)
    assert set(json.loads(lm.tags[modelstore.TAG_DIGESTS])) == files
    for uri in (logged["model_uri"], f"models:/pets/{logged['version']}", "models:/pets@champion"):
        model = load_model(uri, logged["uri"])
        np.testing.assert_allclose(model.predict_proba(logged["X"]), logged["expected"])
        assert set(model.predict(logged["X"])) <= set(logged["labels"])


def test_mlflow_pyfunc_gives_labels_and_probabilities(logged, monkeypatch):
    import mlflow.pyfunc

    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged["uri"])
    model = mlflow.pyfunc.load_model("models:/pets@champion")
    X = logged["X"].head(20)
    labels = model.predict(X)
    proba = model.predict(X, params={"output": "proba"})
    assert list(proba.columns) == list(logged["labels"])
    np.testing.assert_allclose(proba.to_numpy(), logged["expected"][:20], rtol=1e-6)
    assert list(labels) == list(logged["labels"][logged["expected"][:20].argmax(axis=1)])


@pytest.mark.parametrize("victim", ["artifacts/native/preprocess.skops", "artifacts/native/estimator.ubj",
                                    "pyfunc_model.py", "MLmodel"])
def test_a_model_file_changed_on_disk_is_refused_before_loading(logged, victim):
    path = _model_dir(logged) / victim
    path.write_bytes(path.read_bytes() + b"\n# changed")
    with pytest.raises(ModelLoadError, match=f"changed: {victim}"):
        load_model("models:/pets@champion", logged["uri"])


def test_an_added_file_is_refused(logged):
    (_model_dir(logged) / "artifacts" / "native" / "extra.pkl").write_bytes(b"\x80\x04.")
    with pytest.raises(ModelLoadError, match=r"added: artifacts/native/extra\.pkl"):
        load_model(logged["model_uri"], logged["uri"])


@pytest.mark.parametrize("uri", ["/tmp/model", "runs:/0123abcd/model", "file:///tmp/model",
                                 "http://example.com/model", "s3://bucket/model"])
def test_uris_outside_the_store_are_refused(logged, uri):
    with pytest.raises(ModelLoadError, match="only from its own MLflow store"):
        load_model(uri, logged["uri"])


def test_a_model_of_another_store_is_not_found_here(logged, tmp_path):
    other = Tracker(f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}", "models")
    with pytest.raises(ModelLoadError, match="not in the store"):
        load_model(logged["model_uri"], other.uri)
    with pytest.raises(ModelLoadError, match="not in the store"):
        load_model("models:/pets@champion", other.uri)


def test_a_model_without_recorded_digests_is_refused(logged):
    client = logged["tracker"].client
    client.delete_logged_model_tag(logged["model_uri"].removeprefix("models:/"), modelstore.TAG_DIGESTS)
    with pytest.raises(ModelLoadError, match="no file digests"):
        load_model(logged["model_uri"], logged["uri"])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_an_ensemble_with_native_categories_and_a_log_target_round_trips_without_a_pickle(task, tmp_path):
    """What the design search may choose: an ensemble of boosting with the family's own categorical splits, a
    forest and (regression) a member fitted on log(1 + y); saved as one folder per member, loaded the same."""
    from synthloop.design import FIRST_POINTS, search_base
    from synthloop.ensemble import Ensemble, ensemble_spec

    X = prepare_features(_frame(), KINDS)
    signal = X["a"].fillna(0) + (X["b"] == "x")
    if task == "classification":
        labels, y = ["cat", "dog", "eel"], np.digitize(signal, [-0.3, 0.6])
        schema = Schema("t", task, KINDS, classes=tuple(labels))
    else:
        labels, y = None, np.exp(signal.to_numpy(float))  # positive and skewed
        schema = Schema("t", task, KINDS)
    xgb_cat = search_base("xgboost").with_params(**FIRST_POINTS["xgboost"], native_categorical=True,
                                                         n_estimators=30, early_stopping_rounds=None)
    hgb_cat = search_base("hist_gradient_boosting").with_params(native_categorical=True, max_iter=30)
    members = [xgb_cat.with_params(target_transform="log1p") if task == "regression" else xgb_cat, hgb_cat,
               default_spec("extra_trees", n_estimators=15)]
    fitted = fit_model(ensemble_spec(members, [0.5, 0.3, 0.2]), schema, X, y).pipeline
    assert isinstance(fitted, Ensemble) and len(fitted.members) == 3
    save_native(fitted, task=task, family="ensemble", classes=labels, kinds=KINDS, directory=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["member-0", "member-1", "member-2", "synthloop.json"]
    assert (tmp_path / "member-0" / "estimator.ubj").is_file()
    for p in tmp_path.rglob("*"):
        assert p.is_dir() or not p.read_bytes().startswith(b"\x80"), p.name
    meta = json.loads((tmp_path / "synthloop.json").read_text())
    assert meta["ensemble"]["weights"] == pytest.approx([0.5, 0.3, 0.2])
    back = load_native(tmp_path)
    if task == "classification":
        np.testing.assert_allclose(back.predict_proba(X), fitted.predict_proba(X))
        assert back.predict_proba(X).sum(axis=1) == pytest.approx(np.ones(len(X)))
    else:
        assert meta["ensemble"]["members"][0]["target_transform"] == "log1p"
        np.testing.assert_allclose(back.predict(X), fitted.predict(X))
        assert back.predict(X).min() > 0  # the log member maps back to the target's scale
        assert np.corrcoef(back.predict(X), y)[0, 1] > 0.8
