"""Faults inside stages (in-process through `synthloop.cli.main`, real Prefect server, real MLflow store).

Transient failures are retried with the configured delays and the run completes; permanent ones end the
run FAILED in Prefect and MLflow with the reason recorded; an interrupt ends it KILLED. No run stays RUNNING.
"""

from __future__ import annotations

import json

import pytest

from tests.faults.conftest import all_runs, prefect_flow_run, store_uri, tally_store

# iris with few labelled rows and an unreachable goal: the loop goes back and buys labels, so every stage
# (collect, train, validate, collect-pool, annotate, test) runs in two iterations.
SCARCE = ["run", "--data", "sklearn:iris", "--threads", "1", "--max-iterations", "2", "--goal", "accuracy >= 0.999",
          "--set", "data.initial_labelled=12", "--set", "annotation.batch_size=20", "--set", "model.n_estimators=20",
          "--set", "tracking.registered_model=null", "--set", "retry.retries=2", "--set", "retry.delays_s=[0.05]"]


def _parent(folder):
    parents = [r for r in all_runs(store_uri(folder)) if r.data.tags.get("synthloop.kind") == "parent"]
    assert len(parents) == 1
    return parents[0]


@pytest.mark.parametrize("stage", ["collect"])
def test_transient_failure_is_retried_and_the_run_completes(stage, in_process, monkeypatch, capsys, counts,
                                                             prefect_api):
    monkeypatch.setenv("SYNTHLOOP_FAULT", f"{stage}:transient:2")
    counts["faults"] += 1
    from synthloop.cli import main

    rc = main([*SCARCE, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    counts["completed"] += 1
    flow_run, task_runs = prefect_flow_run(prefect_api, summary["prefect_flow_run_id"])
    assert flow_run.state.is_completed()
    first = next(t for t in task_runs if t.name == "collect-real-data")
    assert first.run_count == 3 and first.state.is_completed()
    parent = _parent(in_process)
    assert parent.info.status == "FINISHED"
    assert tally_store(store_uri(in_process)) == 0


def test_permanent_failure_ends_failed_in_prefect_and_mlflow(in_process, monkeypatch, capsys, counts, prefect_api):
    monkeypatch.setenv("SYNTHLOOP_FAULT", "collect:error")
    counts["faults"] += 1
    from synthloop.cli import main

    rc = main(SCARCE)
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("synthloop: ")]
    assert rc == 1 and ours == ["synthloop: failed: RuntimeError: injected permanent fault in collect "
                                "(run again with --verbose for the traceback)"]
    parent = _parent(in_process)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["failure_reason"] == "RuntimeError: injected permanent fault in collect"
    flow_run, task_runs = prefect_flow_run(prefect_api, parent.data.tags["prefect.flow_run_id"])
    assert flow_run.state.is_failed()
    collect = next(t for t in task_runs if t.name == "collect-real-data")
    assert collect.run_count == 3 and collect.state.is_failed()  # retried twice, as configured
    assert tally_store(store_uri(in_process)) == 0


@pytest.mark.parametrize("stage", ["train", "validate", "test"])
def test_crash_in_a_stage_closes_every_run(stage, in_process, monkeypatch, capsys, counts, prefect_api):
    monkeypatch.setenv("SYNTHLOOP_FAULT", f"{stage}:error")
    counts["faults"] += 1
    from synthloop.cli import main

    rc = main(SCARCE)
    capsys.readouterr()
    assert rc == 1
    runs = all_runs(store_uri(in_process))
    assert runs and all(r.info.status in ("FAILED", "FINISHED") for r in runs)
    parent = _parent(in_process)
    assert parent.info.status == "FAILED" and f"injected permanent fault in {stage}" in parent.data.tags["failure_reason"]
    flow_run, _ = prefect_flow_run(prefect_api, parent.data.tags["prefect.flow_run_id"])
    assert flow_run.state.is_failed()
    assert tally_store(store_uri(in_process)) == 0


def test_interrupt_in_a_stage_marks_runs_killed(in_process, monkeypatch, capsys, counts):
    monkeypatch.setenv("SYNTHLOOP_FAULT", "train:interrupt")
    counts["faults"] += 1
    from synthloop.cli import main

    rc = main(SCARCE)
    err = capsys.readouterr().err
    assert rc == 130 and "synthloop: interrupted; open runs were marked KILLED" in err
    runs = all_runs(store_uri(in_process))
    assert {r.info.status for r in runs} == {"KILLED"}
    assert all("KeyboardInterrupt" in r.data.tags["failure_reason"] for r in runs)
    assert tally_store(store_uri(in_process)) == 0
