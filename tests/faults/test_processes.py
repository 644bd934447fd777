"""Real `synthloop run` processes: SIGTERM, Ctrl-C (SIGINT), SIGKILL and resume, four runs at once.

All processes share the suite's Prefect server (as users with `prefect server start` would) and, where
the test says so, one MLflow store.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.faults.conftest import all_runs, cli_env, prefect_flow_run, start_cli, store_uri, tally_store

IRIS = ["run", "--data", "sklearn:iris", "--threads", "1", "--max-iterations", "1", "--set", "model.n_estimators=20"]


def _wait_for_stage(mark: Path, stage: str, proc, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not (mark.exists() and stage in mark.read_text().split()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"stage {stage} not reached"
        time.sleep(0.2)


def _parents(folder: Path) -> list:
    runs = [r for r in all_runs(store_uri(folder)) if r.data.tags.get("synthloop.kind") == "parent"]
    return sorted(runs, key=lambda r: r.info.start_time)


@pytest.mark.timeout(1500)  # three processes at once on 2 cores: what is tested is how they end, not how fast
def test_signals_close_runs_and_sigkill_is_found_then_resumed(prefect_api, tmp_path_factory, counts):
    """SIGTERM and SIGINT during training end the run KILLED; SIGKILL leaves it for the next start to find,
    which marks it KILLED, resumes it (collect comes from the persisted result) and links to it."""
    cases = {"sigterm": signal.SIGTERM, "sigint": signal.SIGINT, "sigkill": signal.SIGKILL}
    procs = {}
    for name, sig in cases.items():
        folder = tmp_path_factory.mktemp(name)
        env = cli_env(prefect_api, SYNTHLOOP_FAULT="train:hang", SYNTHLOOP_FAULT_MARK=str(folder / "stages"))
        procs[name] = (folder, sig, start_cli(IRIS, folder, env))
    for name, (folder, sig, proc) in procs.items():
        _wait_for_stage(folder / "stages", "train", proc)
        proc.send_signal(sig)
        counts["faults"] += 1
    for name, (folder, sig, proc) in procs.items():
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:  # say where it is stuck: every thread's stack (faulthandler on SIGUSR1)
            proc.send_signal(signal.SIGUSR1)
            time.sleep(3)
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the {name} run did not end within 300 s of its signal; its threads:\n{err[-12000:]}")
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
            (parent,) = _parents(folder)
            assert parent.info.status == "RUNNING"  # nobody could close it: the next start must
            continue
        assert proc.returncode in (130, 143), err
        last = [line for line in err.splitlines() if line.strip()][-1]
        assert last.startswith(("synthloop: interrupted", "synthloop: terminated")), err
        assert "Traceback" not in err
        (parent,) = _parents(folder)
        assert parent.info.status == "KILLED" and parent.data.tags["failure_reason"], parent.data.tags
        flow_run, _ = prefect_flow_run(prefect_api, parent.data.tags["prefect.flow_run_id"])
        assert flow_run.state.is_final() and not flow_run.state.is_completed(), flow_run.state
        assert tally_store(store_uri(folder)) == 0

    # the SIGKILLed run: started again with the same config, without the fault
    folder = procs["sigkill"][0]
    proc = start_cli(IRIS, folder, cli_env(prefect_api))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    counts["completed"] += 1
    killed, resumed = _parents(folder)
    assert killed.info.status == "KILLED" and "marked KILLED by a later run" in killed.data.tags["failure_reason"]
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags["synthloop.resumed_from"] == killed.info.run_id
    assert killed.data.tags["synthloop.resumed_by"] == resumed.info.run_id
    _, task_runs = prefect_flow_run(prefect_api, resumed.data.tags["prefect.flow_run_id"])
    states = {t.name: t.state.name for t in task_runs}
    assert states["collect-real-data"] == "Cached" and states["train-it1"] == "Completed", states
    assert "resuming MLflow run" in err
    assert not any((folder / "mlruns" / ".prefect-results").iterdir()), "a finished run's results are deleted"
    assert tally_store(store_uri(folder)) == 0


def test_four_runs_at_once_on_one_store(prefect_api, tmp_path, counts):
    env = cli_env(prefect_api)
    procs = [start_cli([*IRIS, "--seed", str(seed)], tmp_path, env) for seed in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        counts["completed"] += 1
    from mlflow import MlflowClient

    parents = _parents(tmp_path)
    assert len(parents) == 4 and {p.info.status for p in parents} == {"FINISHED"}
    for p in parents:
        assert "test_accuracy" in p.data.metrics and p.data.params["data.train_digest"]
        flow_run, _ = prefect_flow_run(prefect_api, p.data.tags["prefect.flow_run_id"])
        assert flow_run.state.is_completed()
    versions = MlflowClient(store_uri(tmp_path)).search_model_versions("name = 'synthloop-model'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]
    assert {v.run_id for v in versions} == {p.info.run_id for p in parents}
    assert tally_store(store_uri(tmp_path)) == 0


@pytest.mark.parametrize("n", [4])
def test_first_time_setup_of_a_fresh_store_under_contention(n, prefect_api, tmp_path):
    """Four trackers created at once on a fresh store: one creates it, all get the same experiment."""
    import subprocess
    import sys

    code = ("from synthloop.tracking import Tracker; import sys; "
            "print(Tracker(sys.argv[1], 'contention').experiment_id)")
    procs = [subprocess.Popen([sys.executable, "-c", code, store_uri(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        ids.append(out.strip().splitlines()[-1])
    assert len(set(ids)) == 1
