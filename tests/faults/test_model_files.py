"""Models on disk: native formats, scored by `synthloop predict`, and refused when changed or foreign."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tests.faults.conftest import store_uri, tally_store
from tests.faults.test_bad_input import _assert_clear_error


def _model_folder(folder: Path) -> Path:
    from mlflow import MlflowClient

    client = MlflowClient(store_uri(folder))
    (version,) = client.search_model_versions("name = 'synthloop-model'")
    model_id = version.model_id or version.source.removeprefix("models:/")
    return Path(client.get_logged_model(model_id).artifact_location.removeprefix("file://"))


def test_predict_scores_new_rows_and_refuses_a_changed_or_foreign_model(in_process, capsys, counts):
    from sklearn.datasets import load_wine

    from synthloop.cli import main

    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    frame["strong"] = np.where(frame["alcohol"] > 13, "yes", "no")  # raw text the model must take as it is
    frame["cellar"] = np.where(frame["hue"] > 1, "north", "south")
    frame.to_csv(in_process / "wine.csv", index=False)
    rc = main(["run", "--data", "wine.csv", "--target", "target", "--max-iterations", "1", "--threads", "1",
               "--set", "model.n_estimators=30"])
    assert rc == 0, capsys.readouterr().err
    assert "synthloop-model version 1 is the champion" in capsys.readouterr().out  # it met its goal
    counts["completed"] += 1
    assert tally_store(store_uri(in_process)) == 0

    folder = _model_folder(in_process)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert "artifacts/native/estimator.ubj" in files and "artifacts/native/preprocess.skops" in files
    assert not any(f.endswith((".pkl", ".pickle")) for f in files), files
    meta = json.loads((folder / "artifacts/native/synthloop.json").read_text())
    assert meta["estimator"]["format"] == "xgboost-ubj" and meta["classes"] == ["barbera", "barolo", "grignolino"]

    # MLflow's own loader (what `mlflow models serve` runs) adds registered_model_meta to the stored folder; the
    # model stays loadable by synthloop, and it predicts the same.
    import mlflow.pyfunc

    served = mlflow.pyfunc.load_model("models:/synthloop-model/1").predict(
        pd.read_csv(in_process / "wine.csv").drop(columns="target").head(20))  # raw rows: yes/no as text
    assert (folder / "registered_model_meta").exists()

    # New rows as a user has them: the CSV without its label column, columns in another order.
    new = frame.drop(columns="target").iloc[:, ::-1]
    new.to_csv(in_process / "new.csv", index=False)
    capsys.readouterr()
    assert main(["predict", "new.csv", "--proba"]) == 0
    err = capsys.readouterr().err
    assert "predicted by models:/synthloop-model@champion" in err
    assert all(f"{c}: " in err for c in ("barbera", "barolo", "grignolino")), err  # every class in the summary
    out = pd.read_csv(in_process / "new.predictions.csv")
    assert list(out.columns[:len(new.columns)]) == list(new.columns)
    assert {"proba_barbera", "proba_barolo", "proba_grignolino"} <= set(out.columns)
    assert (out["prediction"] == frame["target"]).mean() > 0.85
    assert list(np.asarray(served).ravel()) == list(out["prediction"].head(20))
    proba = out[["proba_barbera", "proba_barolo", "proba_grignolino"]].to_numpy()
    assert abs(proba.sum(axis=1) - 1).max() < 1e-5
    assert (out["prediction"] == pd.Series(["barbera", "barolo", "grignolino"])[proba.argmax(axis=1)].to_numpy()).all()

    # Rows missing columns the model needs: one line naming them.
    new.drop(columns=["alcohol", "hue"]).to_csv(in_process / "short.csv", index=False)
    rc = main(["predict", "short.csv", "--model", "models:/synthloop-model/1"])
    _assert_clear_error(rc, capsys.readouterr().err, counts, "'alcohol', 'hue' the model needs")
    # ... and by default, where the champion may answer another problem: what it is, and how to pick another model
    rc = main(["predict", "short.csv"])
    _assert_clear_error(rc, capsys.readouterr().err, counts,
                        "short.csv: lacks 2 of the 15 columns the champion of 'synthloop-model' (version 1, a "
                        "classification of 'target' from wine.csv) needs: 'alcohol', 'hue'; pass --model")

    # A run on another problem registered under the same name is told that it shares the champion's name.
    frame.drop(columns="target").to_csv(in_process / "cellar.csv", index=False)
    rc = main(["run", "--data", "cellar.csv", "--target", "cellar", "--max-iterations", "1", "--threads", "1",
               "--set", "model.n_estimators=30"])
    out = capsys.readouterr().out
    assert rc == 0 and "synthloop-model version 2 registered; the champion stays version 1" in out, out
    assert ("note: the champion (version 1) is a classification of 'target' from wine.csv, this version a "
            "classification of 'cellar' from cellar.csv: give each problem its own registered model") in out, out
    counts["completed"] += 1

    # A model outside the store is not loaded.
    rc = main(["predict", "new.csv", "--model", str(folder)])
    _assert_clear_error(rc, capsys.readouterr().err, counts, "only from its own MLflow store")

    # A model file changed on disk after logging: refused before anything of it is read.
    counts["faults"] += 1
    booster = folder / "artifacts/native/estimator.ubj"
    booster.write_bytes(booster.read_bytes()[:-8] + b"\x00" * 8)
    rc = main(["predict", "new.csv"])
    _assert_clear_error(rc, capsys.readouterr().err, counts, "changed: artifacts/native/estimator.ubj")
    assert tally_store(store_uri(in_process)) == 0
