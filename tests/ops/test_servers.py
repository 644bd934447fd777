"""`synthloop ui` with a real Prefect server and MLflow UI; `synthloop serve` with a cron schedule on it.

One `synthloop ui` process serves the module (a Prefect server start costs 10-30 s); every server it
started is stopped by its PID at teardown, whatever happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from synthloop import ui

STARTUP_S = 240


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update({"PREFECT_HOME": str(tmp / "prefect-home"), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}",
                "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "3", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING"})
    return env


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """`synthloop ui` in a temporary project; yields its state (URLs, PIDs) and the project folder."""
    tmp = tmp_path_factory.mktemp("ui")
    state_file = tmp / "mlruns" / ui.STATE_FILE
    proc = subprocess.Popen([sys.executable, "-m", "synthloop", "ui"], cwd=tmp, env=_env(tmp),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    state = None
    try:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline and proc.poll() is None and not state_file.exists():
            time.sleep(0.5)
        assert state_file.exists(), f"synthloop ui did not come up: {proc.poll()} {proc.stderr.read() if proc.poll() is not None else ''}"
        state = json.loads(state_file.read_text())
        yield {"state": state, "dir": tmp, "proc": proc, "env": _env(tmp)}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                ui.stop_pid(proc.pid)
        for name in ("prefect", "mlflow"):
            if state and name in state:
                ui.stop_pid(state[name]["pid"])  # no-op when `ui` already stopped it


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_ui_serves_both_and_mlflow_rest_reads_a_run(servers):
    state = servers["state"]
    assert state["prefect"]["url"].startswith("http://127.0.0.1:") and state["mlflow"]["url"].startswith("http://127.0.0.1:")
    assert ui.healthy(state["prefect"]["health"]) and ui.healthy(state["mlflow"]["health"])

    from synthloop.tracking import Tracker

    tracker = Tracker(f"sqlite:///{servers['dir'] / 'mlruns' / 'mlflow.db'}", "synthloop")
    run_id = tracker.get_or_create_parent("flow-run-1", "rest-check")
    tracker.log_metrics(run_id, {"test_accuracy": 0.875})
    tracker.finish(run_id)
    got = _get_json(f"{state['mlflow']['url']}/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
    assert got["info"]["status"] == "FINISHED" and got["info"]["experiment_id"] == tracker.experiment_id
    assert {"key": "test_accuracy", "value": 0.875} in [{"key": m["key"], "value": m["value"]} for m in got["data"]["metrics"]]
    with urllib.request.urlopen(state["mlflow"]["url"] + "/", timeout=10) as resp:  # the UI itself
        assert b"<html" in resp.read(2000).lower()

    import psutil  # lean: one worker, no job runner (MLflow's defaults start about 15 processes)

    procs = [psutil.Process(state["mlflow"]["pid"])] + psutil.Process(state["mlflow"]["pid"]).children(recursive=True)
    print(f"MLflow UI: {len(procs)} processes, {sum(p.memory_info().rss for p in procs) / 2**20:.0f} MiB RSS")
    assert len(procs) <= 3


def test_attach_uses_the_running_prefect_server(servers, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.chdir(servers["dir"])
    found = ui.attach(f"sqlite:///{servers['dir'] / 'mlruns' / 'mlflow.db'}")
    assert found and os.environ["PREFECT_API_URL"] == servers["state"]["prefect"]["url"] + "/api"
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # the user's own setting wins
    ui.attach(f"sqlite:///{servers['dir'] / 'mlruns' / 'mlflow.db'}")
    assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:9/api"


def test_serve_schedules_and_runs_a_retrain(servers, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterId, FlowRunFilter,
                                                FlowRunFilterParentFlowRunId, FlowRunFilterState,
                                                FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api = servers["state"]["prefect"]["url"] + "/api"
    sets = ["data.source=sklearn:breast_cancer", "data.target=target", "goal.metric=accuracy", "goal.threshold=0.9",
            "loop.max_iterations=1", "threads=1", "model.family=linear", "retrain.reference_rows=100"]
    cmd = [sys.executable, "-m", "synthloop", "serve", "--cron", "0 3 * * *", "--timezone", "Europe/Berlin",
           "--name", "test-nightly"] + [a for s in sets for a in ("--set", s)]
    # Started as a script starts a background job: SIGINT ignored (inherited); Ctrl-C must still stop it.
    serve = subprocess.Popen(cmd, cwd=servers["dir"], env=servers["env"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True,  # no PREFECT_API_URL: found via the state file
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))

    async def check() -> dict:
        async with get_client() as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    dep = await client.read_deployment_by_name("retrain/test-nightly")
                    break
                except Exception:
                    assert serve.poll() is None, serve.stderr.read()
                    assert time.monotonic() < deadline, "the deployment never appeared"
                    await asyncio.sleep(1)
            sched = dep.schedules[0].schedule
            upcoming = []
            while time.monotonic() < deadline and not upcoming:
                upcoming = await client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                    flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))))
                await asyncio.sleep(1)
            run = await run_deployment("retrain/test-nightly", client=client, timeout=240, poll_interval=2,
                                       as_subflow=False)
            tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run.id]}))
            subflows = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
            return {"dep": dep, "sched": sched, "upcoming": upcoming, "run": run, "tasks": tasks, "subflows": subflows}

    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            got = asyncio.run(check())
        assert got["sched"].cron == "0 3 * * *" and got["sched"].timezone == "Europe/Berlin"
        assert got["dep"].parameters["config"]["retrain"]["reference_rows"] == 100
        assert got["upcoming"], "the schedule made no upcoming runs"
        for fr in got["upcoming"]:
            local = fr.expected_start_time.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
            assert (local.hour, local.minute) == (3, 0)
        assert got["run"].state.is_completed(), got["run"].state
        names = {t.name: t.state.type for t in got["tasks"]}
        for name in ("collect-latest-data", "measure-drift", "save-reference-sample", "compare-champion-challenger",
                     "promote-if-better"):
            assert names.get(name) == StateType.COMPLETED, names
        develop_runs = [f for f in got["subflows"] if f.name and f.state]
        assert develop_runs and all(f.state.is_completed() for f in develop_runs)

        from mlflow import MlflowClient

        client = MlflowClient(servers["env"]["MLFLOW_TRACKING_URI"])
        champion = client.get_model_version_by_alias("synthloop-model", "champion")
        assert "no champion yet" in champion.tags["promotion_reason"]
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGINT)  # Ctrl-C: serve stops and pauses its schedule
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                ui.stop_pid(serve.pid)
                raise AssertionError("serve ignored SIGINT") from None
    assert "paused" in serve.stderr.read()

    async def paused() -> bool:
        async with get_client() as client:
            return (await client.read_deployment_by_name("retrain/test-nightly")).paused

    with temporary_settings(updates={PREFECT_API_URL: api}):
        assert asyncio.run(paused()) is True


def test_ctrl_c_stops_both_servers(servers):
    state, proc = servers["state"], servers["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=40) == 0
    import psutil

    for name in ("prefect", "mlflow"):
        assert not psutil.pid_exists(state[name]["pid"]) or psutil.Process(state[name]["pid"]).status() == "zombie"
        assert not ui.healthy(state[name]["health"], 1.0)
    assert not (servers["dir"] / "mlruns" / ui.STATE_FILE).exists()
