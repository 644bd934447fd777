"""The run's story where users look: the parent run's description, child run names, the runs-table view, links."""

from __future__ import annotations

import json

import pytest

from synthloop import records

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_run_tells_its_story_in_mlflow(mlflow_uri, client, capsys, tmp_path, monkeypatch):
    from synthloop.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["run", "--data", "sklearn:wine", "--set", "data.initial_labelled=20", "--set", "annotation.batch_size=10",
            "--set", "annotation.cost_per_label=0.5", "--set", "annotation.budget=20", "--goal", "accuracy >= 0.99",
            "--max-iterations", "2", "--threads", "1", "--set", "model.n_estimators=30", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run_id, exp = out["mlflow_run_id"], client.get_run(out["mlflow_run_id"]).info.experiment_id
    note = client.get_run(run_id).data.tags["mlflow.note.content"]
    first = out["iterations"][0]
    assert "| iteration | validation accuracy |" in note
    assert f"| 1 | {first['val_metrics']['accuracy']:.4f} | 20+0 | {first['decision']} |" in note
    assert f"**Test** (the sealed split, opened once): accuracy {out['test_metrics']['accuracy']:.4f}" in note
    assert "**Labels**: spent 5 — annotator: 10 labels, 5" in note
    assert f"(#/experiments/{exp}/runs/{run_id}/artifacts/plots/loop.png)" in note

    parent_name = client.get_run(run_id).info.run_name
    children = client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{run_id}'")
    names = sorted(c.info.run_name for c in children if "iteration" in c.data.params)
    assert names == [f"{parent_name}/it-1", f"{parent_name}/it-2"]

    tags = client.get_experiment(exp).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(tags["mlflow.sharedViewState.synthloop-accuracy"])
    assert {"metrics.`val_accuracy`", "metrics.`test_accuracy`", "tags.`goal_met`", "metrics.`label_cost`"} <= set(
        view["selectedColumns"])
    ids = sorted(json.loads(out["links"]["compare"].split("runs=")[1].split("&")[0]))
    assert ids == sorted(c.info.run_id for c in children if "iteration" in c.data.params)
    assert out["links"]["runs"].endswith("viewStateShareKey=synthloop-accuracy&workflowType=machine_learning")


def test_the_story_of_a_run_that_met_its_goal():
    summary = {"goal_metric": "rmse", "goal_threshold": 600.0, "goal_met": True, "mlflow_run_id": "r1",
               "best_iteration": 1, "best_model": "linear", "val_test_gap": 0.5, "label_cost": 0,
               "iterations": [{"iteration": 1, "val_metrics": {"rmse": 512.25}, "train_rows": 80, "synthetic_rows": 40,
                               "decision": "stop", "reason": "goal met | on validation"}],
               "test_metrics": {"rmse": 530.0}, "registered_version": None}
    md = records.story_markdown(summary, "7", ["plots/residuals.png"])
    assert md.startswith("### goal met — test rmse 530.0000 (validation 512.2500; goal: rmse <= 600)")
    assert "| 1 | 512.2500 | 80+40 | stop | goal met / on validation |" in md
    assert "[residuals](#/experiments/7/runs/r1/artifacts/plots/residuals.png)" in md and "Labels" not in md
    assert "left out" not in md
    summary["dropped_columns"] = {"id": "ID-like (every value distinct)", "hours": "column 'hours' is 0 | always"}
    md = records.story_markdown(summary, "7")
    assert ("**Columns left out of the model**: `id` — ID-like (every value distinct); `hours` — column 'hours' is "
            "0 / always.") in md


def test_the_terminal_summary_marks_the_iteration_that_was_tested():
    from synthloop.cli import _human_summary

    its = [{"iteration": i, "val_metrics": {"r2": v}, "train_rows": 80, "synthetic_rows": s, "decision": d}
           for i, v, s, d in ((1, 0.80, 0, "change_design"), (2, 0.86, 0, "add_synthetic"), (3, 0.84, 80, "stop"))]
    summary = {"goal_metric": "r2", "goal_threshold": None, "goal_met": True, "iterations": its, "seconds": 9.0,
               "stopped_by": "no_move_left", "test_metrics": {"r2": 0.85}, "best_iteration": 2,
               "best_model": "ensemble", "shortfall": "", "label_cost": 0, "mlflow_run_id": "r1",
               "tracking_uri": "sqlite:///m.db", "registered_version": None, "mlflow_experiment_id": "1",
               "prefect_flow_run_name": "f", "prefect_flow_run_id": "p"}
    rows = [line for line in _human_summary(summary).splitlines() if line.strip()[:1].isdigit()]
    assert [("best on validation, tested" in line) for line in rows] == [False, True, False]
