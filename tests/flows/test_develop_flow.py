"""The development cycle end to end through real Prefect and a real MLflow store."""

from __future__ import annotations

import asyncio

import pytest

from synthloop.flows.develop import develop
from synthloop.config import Config

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _runs(client, parent_id):
    parent = client.get_run(parent_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    return parent, children


def _prefect_flow_and_tasks(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as c:
            fr = await c.read_flow_run(flow_run_id)
            trs = await c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
            return fr, trs

    return asyncio.run(read())


def test_scarce_labels_force_a_go_back_and_everything_is_recorded(mlflow_uri, client):
    cfg = Config.embedded_default()
    cfg.loop.max_iterations = 4
    summary = develop(cfg)

    its = summary["iterations"]
    assert len(its) >= 2, "60 labelled rows cannot meet accuracy 0.95: the loop must go back at least once"
    assert its[0]["decision"] != "stop" and its[0]["stage"] in {"collect", "annotate", "train"}
    assert its[-1]["train_rows"] > its[0]["train_rows"] or its[-1]["model"] != its[0]["model"]
    assert summary["test_metrics"]["accuracy"] > 0.8

    parent, children = _runs(client, summary["mlflow_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["prefect.flow_run_id"] == summary["prefect_flow_run_id"]
    assert "test_accuracy" in parent.data.metrics and parent.data.tags["test_opened_at"]
    iteration_runs = [r for r in children if r.data.tags.get("synthloop.trial") != "true"]
    assert len(iteration_runs) == len(its)
    for run in iteration_runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["decision"] and run.data.tags["reason"]
        assert "val_accuracy" in run.data.metrics and "rows_real" in run.data.params
        # drawn in the background while the loop went on, and all written before the run ended
        plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert "plots/loss_curves.png" in plots, plots
        assert (run.data.tags["decision"] == "stop") or "plots/learning_curve.png" in plots, plots
    first = next(r for r in iteration_runs if r.data.tags["synthloop.iteration"] == "1")
    history = client.get_metric_history(first.info.run_id, "val_loss")
    assert len(history) > 5 and sorted(m.step for m in history) == list(range(len(history)))

    inputs = {d.dataset.name: d.dataset for d in parent.inputs.dataset_inputs}
    assert {"train:sklearn:digits", "validation:sklearn:digits"} <= set(inputs)
    assert all(ds.digest and "pixel_1" in ds.schema for ds in inputs.values())
    last = next(r for r in iteration_runs if r.data.tags["decision"] == "stop")
    last_decision = client.download_artifacts(last.info.run_id, "decision.json")
    assert '"diagnosis": {}' in open(last_decision).read(), "a met goal needs no diagnostic fits"

    versions = client.search_model_versions("name = 'synthloop-model'")
    assert any(v.run_id == parent.info.run_id for v in versions)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/loop.png", "plots/confusion_matrix.png", "plots/feature_importance.png",
            "plots/loss_curves.png"} <= artifacts
    png = client.download_artifacts(parent.info.run_id, "plots/loop.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    flow_run, task_runs = _prefect_flow_and_tasks(summary["prefect_flow_run_id"])
    assert flow_run.state.is_completed()
    names = {t.name for t in task_runs}
    assert {"collect-real-data", "train-it1", "validate-it1", "train-it2", "evaluate-on-holdout"} <= names
    assert all(t.state.is_completed() for t in task_runs)


def test_goal_met_at_once_gives_one_iteration(mlflow_uri, client):
    cfg = Config.load(None, {"data.source": "sklearn:breast_cancer", "data.target": "target",
                             "goal.metric": "accuracy", "goal.threshold": 0.8})
    summary = develop(cfg)
    assert [it["decision"] for it in summary["iterations"]] == ["stop"]
    assert summary["goal_met"] is True
    parent, children = _runs(client, summary["mlflow_run_id"])
    assert len(children) == 1 and children[0].data.tags["decision"] == "stop"


def test_regression_goal_that_cannot_be_met_reports_why(mlflow_uri, client):
    cfg = Config.load(None, {"data.source": "sklearn:diabetes", "data.target": "target", "goal.metric": "r2",
                             "goal.threshold": 0.99, "loop.max_iterations": 2})
    summary = develop(cfg)
    assert summary["goal_met"] is False
    assert len(summary["iterations"]) == 2
    assert "r2" in summary["shortfall"] and "0.99" in summary["shortfall"]
    assert set(summary["test_metrics"]) == {"rmse", "mae", "r2"}
    parent, _ = _runs(client, summary["mlflow_run_id"])
    assert parent.data.tags["goal_met"] == "false" and parent.data.tags["goal_shortfall"]


def test_without_a_threshold_the_loop_searches_designs_and_serves_what_it_chose(mlflow_uri, client):
    """No goal threshold: the goal check passes at once, yet the loop goes back to a design search by CV on train
    (every trial, and the ensemble when one is built, an MLflow trial run), then stops when no move can pay; the
    registered model predicts as the chosen one did."""
    import numpy as np

    from synthloop.modelstore import load_model

    cfg = Config.load(None, {"data.source": "sklearn:breast_cancer", "data.target": "target",
                             "model.search_trials": 6, "loop.max_iterations": 4})
    summary = develop(cfg)
    decisions = [it["decision"] for it in summary["iterations"]]
    assert decisions[0] == "change_design" and decisions[-1] == "stop" and len(decisions) >= 2
    assert summary["stopped_by"] in {"no_move_left", "max_iterations", "time_budget"}
    assert summary["time_budget_s"] == 150.0
    assert "going on while moves pay" in summary["iterations"][0]["reason"]
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.data.tags["stopped_by"] == summary["stopped_by"]
    trials = client.search_runs([parent.info.experiment_id], "tags.`synthloop.trial` = 'true'")
    labels = {t.data.tags["mlflow.runName"] for t in trials}
    assert len([t for t in trials if t.data.params["family"] != "ensemble"]) == 6
    assert {t.data.params["family"] for t in trials} >= {"xgboost", "hist_gradient_boosting", "extra_trees"}
    roles = [t.data.tags["synthloop.trial_role"] for t in trials]
    assert roles.count("choice") == 1, labels
    # nested in the iteration that asked for the search: the flow run's own child runs are its iterations
    _, children = _runs(client, summary["mlflow_run_id"])
    assert sorted(c.data.tags["synthloop.iteration"] for c in children) == [
        str(i) for i in range(1, len(decisions) + 1)]
    first = next(c for c in children if c.data.tags["synthloop.iteration"] == "1")
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {first.info.run_id}
    # nothing left but synthetic rows: the generators' CV on train said none helps (real only 0.959, best
    # augmented 0.956), so none went in, and the next iteration reused the model instead of fitting it again
    its = summary["iterations"]
    assert decisions == ["change_design", "add_synthetic", "stop"], decisions
    assert "last move left" in its[1]["reason"] and its[2]["synthetic_rows"] == 0
    assert its[2]["val_metrics"] == its[1]["val_metrics"] and summary["looks_at_validation"] == 2
    third = next(c for c in children if c.data.tags["synthloop.iteration"] == "3")
    assert third.data.tags["reused_iteration"] == "2"
    chosen = next(t for t in trials if t.data.tags["synthloop.trial_role"] == "choice")
    assert summary["iterations"][1]["model"].startswith(chosen.data.params["family"])
    model = load_model(f"models:/{cfg.tracking.registered_model}/{summary['registered_version']}", mlflow_uri)
    from synthloop.data import load_table

    frame = load_table("sklearn:breast_cancer")
    proba = model.predict_proba(frame.drop(columns=["target"]).head(50))
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert (model.predict(frame.drop(columns=["target"]).head(50)) == frame["target"].head(50)).mean() > 0.85


def test_a_design_search_that_keeps_the_current_design_reuses_its_model_without_a_new_look(mlflow_uri, client,
                                                                                         tmp_path):
    """A linear target with a linear model: the diagnosis says "underfits", the search finds nothing better by CV
    and keeps the design. Training the same recipe again would give the same model: iteration 2 reuses it, says
    so, and does not count as another look at validation."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.normal(size=(170, 4))
    y = 3 * X[:, 0] - 2 * X[:, 1] + X[:, 2] + rng.normal(scale=0.05, size=170)
    path = tmp_path / "linear.csv"
    pd.DataFrame(X, columns=list("abcd")).assign(y=y).to_csv(path, index=False)
    cfg = Config.load(None, {"data.source": str(path), "data.target": "y", "model.family": "linear",
                             "goal.metric": "r2", "goal.threshold": 0.99999, "model.search_trials": 6,
                             "loop.max_iterations": 2, "loop.time_budget_s": 1800})
    summary = develop(cfg)
    first, second = summary["iterations"]
    assert first["decision"] == "change_design" and second["model"] == first["model"]
    assert second["val_metrics"] == first["val_metrics"]
    assert summary["looks_at_validation"] == 1
    _, children = _runs(client, summary["mlflow_run_id"])
    runs = {r.data.tags["synthloop.iteration"]: r for r in children if r.data.tags.get("synthloop.trial") != "true"}
    assert runs["2"].data.tags["reused_iteration"] == "1" and "reused_iteration" not in runs["1"].data.tags
    assert runs["2"].data.metrics["val_r2"] == runs["1"].data.metrics["val_r2"]


def test_a_leak_left_out_of_the_model_is_named_in_mlflow_and_prefect(mlflow_uri, client, tmp_path):
    import numpy as np
    import pandas as pd
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    rng = np.random.default_rng(2)
    n = 600
    income = rng.lognormal(1, 0.5, n)
    card = np.where(income + rng.normal(0, 1.0, n) > 2.5, "yes", "no")
    spent = np.where((card == "yes") & (rng.random(n) > 0.03), rng.gamma(2, 100, n).round(2), 0.0)
    path = tmp_path / "cards.csv"
    pd.DataFrame({"income": income, "age": rng.integers(18, 80, n), "expenditure": spent, "card": card}).to_csv(
        path, index=False)
    cfg = Config.load(None, {"data.source": str(path), "data.target": "card", "goal.metric": "accuracy",
                             "goal.threshold": 0.5, "model.n_estimators": 20})
    summary = develop(cfg)
    assert list(summary["dropped_columns"]) == ["expenditure"]
    assert "gives the class away" in summary["dropped_columns"]["expenditure"]
    parent, _ = _runs(client, summary["mlflow_run_id"])
    assert "**Columns left out of the model**: `expenditure` — column 'expenditure' is 0 on 100.0%" in (
        parent.data.tags["mlflow.note.content"])
    assert parent.data.tags["columns_left_out"] == "expenditure"

    async def read():
        async with get_client() as c:
            return await c.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[summary["prefect_flow_run_id"]])))

    markdown = [a.data for a in asyncio.run(read()) if a.key == "mlflow-run"]
    assert len(markdown) == 1 and "**Columns left out of the model**: `expenditure`" in markdown[0]
