"""No secret reaches MLflow or Prefect; servers bind 127.0.0.1."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.faults.conftest import all_runs, prefect_flow_run, store_uri, tally_store

SECRET = "s3cretPW42"


def _bytes_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_password_in_a_database_url_reaches_neither_store(in_process, prefect_api, capsys, counts):
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    with sqlite3.connect(in_process / "shop.db") as conn:
        frame.to_sql("flowers", conn, index=False)
    from synthloop.cli import main

    url = f"sqlite:///shop.db?token={SECRET}"  # sqlite ignores the token; a server database would use it
    rc = main(["run", "--data", url, "--table", "flowers", "--target", "target", "--max-iterations", "1",
               "--threads", "1", "--set", "model.n_estimators=10", "--set", "tracking.registered_model=null"])
    err = capsys.readouterr().err
    assert rc == 0, err
    counts["completed"] += 1
    (parent,) = [r for r in all_runs(store_uri(in_process)) if r.data.tags.get("synthloop.kind") == "parent"]
    assert parent.data.params["config.data.source"] == "sqlite:///shop.db?token=***"
    assert SECRET.encode() not in _bytes_under(in_process / "mlruns"), "the MLflow store holds the password"
    assert SECRET not in err
    flow_run, _ = prefect_flow_run(prefect_api, parent.data.tags["prefect.flow_run_id"])
    stored = str(flow_run.parameters)
    assert SECRET not in stored and "${SYNTHLOOP_DATA_SECRET_1}" in stored, "Prefect's flow-run parameters hold it"
    assert tally_store(store_uri(in_process)) == 0


def test_secret_looking_params_and_tags_are_redacted(tmp_path):
    from synthloop.tracking import Tracker

    tracker = Tracker(store_uri(tmp_path), "secrets")
    run = tracker.client.create_run(tracker.experiment_id).info.run_id
    tracker.log_params(run, {"model": {"params": {"api_token": "tok123", "n_passes": 3}},
                             "tracking": {"tracking_uri": "http://bob:pw999@mlflow.example/"}})
    tracker.set_tags(run, {"source": "postgresql://bob:pw999@db/x", "client_secret": "abc"})
    data = tracker.client.get_run(run).data
    assert data.params["model.params.api_token"] == "***" and data.params["model.params.n_passes"] == "3"
    assert data.params["tracking.tracking_uri"] == "http://bob:***@mlflow.example/"
    assert data.tags["source"] == "postgresql://bob:***@db/x" and data.tags["client_secret"] == "***"
    tracker.finish(run)


def test_servers_bind_localhost_only():
    from synthloop import ui

    assert ui.HOST == "127.0.0.1"
    root = Path(__file__).resolve().parents[2]
    for path in [*root.glob("synthloop/*.py"), *root.glob("flows/*.py"), *root.glob("deployments/*.py")]:
        assert "0.0.0.0" not in path.read_text(), f"{path.name} binds every interface"
