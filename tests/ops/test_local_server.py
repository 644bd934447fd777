"""The local Prefect server: the first `synthloop run` starts it in the background, later runs reuse it,
`synthloop stop` stops it; a run refused for bad input starts none. The first run also starts the warm runner
(synthloop/runner.py): the next run goes through it, and `synthloop stop` stops it too.

Real processes, a real `prefect server start` on a temporary Prefect home, a real MLflow store; the server is
stopped by its PID at teardown whatever happened.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from synthloop import runner, ui

IRIS = ["run", "--data", "sklearn:iris", "--max-iterations", "1", "--threads", "1", "--model", "xgboost",
        "--set", "model.n_estimators=20", "--json"]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SYNTHLOOP_", "PREFECT_API_URL", "MLFLOW_TRACKING", "PREFECT_LOCAL_STORAGE"))}
    env.update({"PREFECT_HOME": str(tmp / "prefect-home"), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}",
                "OMP_NUM_THREADS": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"})
    return env


def _cli(args: list[str], tmp: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synthloop", *args], cwd=tmp, env=_env(tmp), capture_output=True,
                          text=True, timeout=timeout)


def _flow_runs(api: str) -> list[dict]:
    req = urllib.request.Request(f"{api}/flow_runs/filter", data=json.dumps({"limit": 50}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (the local test server)
        return json.loads(resp.read())


@pytest.fixture
def project(tmp_path):
    yield tmp_path
    state = tmp_path / "prefect-home" / ui.LOCAL_STATE_FILE
    if state.exists():  # whatever happened, no server outlives the test
        ui.stop_pid(json.loads(state.read_text())["pid"])
    warm = tmp_path / "prefect-home" / runner.STATE_FILE
    if warm.exists():
        ui.stop_pid(json.loads(warm.read_text())["pid"])


def _wait_for_runner(project: Path, timeout: float = 240) -> dict:
    import time

    path = project / "prefect-home" / runner.STATE_FILE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            state = json.loads(path.read_text())
            if state.get("ready"):
                return state
        time.sleep(0.5)
    raise AssertionError(f"no runner ready after {timeout:.0f}s: {(project / 'prefect-home' / runner.LOG_FILE).read_text()}")


def test_first_run_starts_the_local_server_the_next_reuses_it_and_stop_stops_it(project):
    state_file = project / "prefect-home" / ui.LOCAL_STATE_FILE

    bad = _cli(["run", "--data", "sklearn:iris", "--target", "nope"], project)
    assert bad.returncode == 2 and "'nope' not found" in bad.stderr, bad.stderr
    assert not state_file.exists(), "a run refused for bad input started a server"

    first = _cli(IRIS, project)
    assert first.returncode == 0, first.stderr
    started = re.search(r"prefect: started the local server (http://127\.0\.0\.1:\d+) \(pid (\d+)\)", first.stderr)
    assert started, first.stderr
    assert 0 <= first.stderr.find("prefect: starting the local Prefect server in the background") < started.start()
    url, pid = started.group(1), int(started.group(2))
    state = json.loads(state_file.read_text())
    assert state["url"] == url and state["pid"] == pid and ui.pid_alive(pid)
    assert ui.healthy(f"{url}/api/health"), "the server did not outlive the run that started it"
    assert "runner: loading the libraries in the background" in first.stderr, first.stderr
    warm = _wait_for_runner(project)

    second = _cli(IRIS, project)
    assert second.returncode == 0, second.stderr
    assert (f"prefect: local server {url} (pid {pid}); libraries already loaded in the warm runner "
            f"(pid {warm['pid']})") in second.stderr, second.stderr
    assert "started the local server" not in second.stderr and "runner: loading" not in second.stderr
    assert "starting the local Prefect server" not in second.stderr
    log = (project / "prefect-home" / runner.LOG_FILE).read_text()
    assert re.search(r"run \d+ run --data sklearn:iris: exit 0", log), log  # the fork's own line
    refused = _cli(["run", "--data", "sklearn:iris", "--target", "nope"], project)  # its error reaches this stderr
    assert refused.returncode == 2 and "'nope' not found" in refused.stderr, refused.stderr
    assert log.count("run ") < (project / "prefect-home" / runner.LOG_FILE).read_text().count("run ")

    runs = {r["id"]: r for r in _flow_runs(f"{url}/api")}
    for out in (first, second):
        flow_run = json.loads(out.stdout.strip().splitlines()[-1])["prefect_flow_run_id"]
        assert runs[flow_run]["state_type"] == "COMPLETED", runs[flow_run]
    assert f"{url}/runs/flow-run/" not in first.stdout  # --json: only the JSON line on stdout

    stop = _cli(["stop"], project, timeout=60)
    assert stop.returncode == 0 and f"the local Prefect server {url} (pid {pid})" in stop.stderr, stop.stderr
    assert not ui.pid_alive(pid) and not state_file.exists() and not ui.healthy(f"{url}/api/health", 1.0)
    assert f"the warm runner (pid {warm['pid']})" in stop.stderr, stop.stderr
    assert not ui.pid_alive(warm["pid"]) and not Path(warm["socket"]).exists()
    again = _cli(["stop"], project, timeout=60)
    assert again.returncode == 0 and "nothing to stop" in again.stderr, again.stderr


def test_stop_stops_a_runner_still_loading_its_libraries(tmp_path):
    """`synthloop stop` right after a run ended finds the runner it started even before the runner is ready."""
    env = _env(tmp_path)
    pid = runner.start(env)
    assert pid and ui.pid_alive(pid)
    state = json.loads((tmp_path / "prefect-home" / runner.STATE_FILE).read_text())
    assert state["pid"] == pid and state["ready"] is False
    assert runner.start(env) is None, "a second start while one loads starts none"
    try:
        stopped = runner.stop(env)
        assert stopped and stopped["pid"] == pid
        assert not ui.pid_alive(pid) and not (tmp_path / "prefect-home" / runner.STATE_FILE).exists()
    finally:
        if ui.pid_alive(pid):
            ui.stop_pid(pid)


def test_a_port_taken_by_another_server_is_not_taken_for_ours(tmp_path, monkeypatch):
    """Another server answering on the port ours was to bind (a race between two Prefect homes): ours fails to
    bind, and the wait says so instead of handing the run to the other server."""
    import http.server
    import threading

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    other = http.server.HTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    server = ui.local_server(port=other.server_address[1])
    try:
        assert ui.healthy(server.health_url), "the other server answers on the port"
        with pytest.raises(ui.ServerError, match="exited while starting"):
            server.wait(180)
    finally:
        ui.stop_local_server(server)
        other.shutdown()
