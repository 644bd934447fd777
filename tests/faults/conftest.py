"""The fault-injection suite: one real Prefect server for the suite, temporary MLflow stores, and a tally.

Faults are injected with `SYNTHLOOP_FAULT` (see `synthloop/faults.py`); `synthloop run` is driven both
in-process (`synthloop.cli.main`) and as real processes that get signals. At its end the suite prints one
line: faults injected, runs completed, runs left RUNNING, bad inputs tried, clear errors given.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

COUNTS: Counter = Counter()
SERVER_HOME: list[Path] = []  # the suite's Prefect server's PREFECT_HOME (its database)
REPO = Path(__file__).resolve().parents[2]


def pytest_terminal_summary(terminalreporter):
    if not COUNTS:
        return
    terminalreporter.write_line(
        f"fault suite: faults injected {COUNTS['faults']}, runs completed {COUNTS['completed']}, "
        f"runs left RUNNING {COUNTS['left_running']}, bad inputs tried {COUNTS['bad_inputs']}, "
        f"clear errors given {COUNTS['clear_errors']}")


@pytest.fixture
def counts() -> Counter:
    return COUNTS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """One real Prefect server (its own temporary database) shared by the suite, stopped by its PID."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    SERVER_HOME.append(home)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the uvicorn process it started
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def in_process(prefect_api, tmp_path, monkeypatch):
    """Run `synthloop.cli.main(argv)` in this process against the suite's server and a fresh store."""
    from prefect.settings import PREFECT_API_URL, PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from synthloop import faults

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(tmp_path / "mlruns" / ".prefect-results"))
    faults._calls.clear()
    term_handler = signal.getsignal(signal.SIGTERM)
    with temporary_settings({PREFECT_API_URL: prefect_api,
                             PREFECT_RESULTS_LOCAL_STORAGE_PATH: tmp_path / "mlruns" / ".prefect-results"}):
        try:
            yield tmp_path
        finally:
            from prefect.logging.handlers import APILogHandler

            APILogHandler().flush()  # this run's log lines reach the server before it stops
            signal.signal(signal.SIGTERM, term_handler)  # cli.main installed its own
    faults._calls.clear()


def cli_env(prefect_api: str, **extra: str) -> dict[str, str]:
    """Environment of a `synthloop` process: the suite's server, one thread, no inherited store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNTHLOOP_", "MLFLOW_TRACKING"))}
    env.update({"PREFECT_API_URL": prefect_api, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
                "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"})
    env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    env.update(extra)
    return env


def start_cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """A `synthloop` process with a terminal's Ctrl-C. A shell without job control starts its background jobs
    with SIGINT ignored, an ignored signal stays ignored across exec, and Python then installs no KeyboardInterrupt
    handler: a suite started with `&` would send its Ctrl-C to a process that cannot hear it."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([sys.executable, "-m", "synthloop", *args], cwd=cwd, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def store_uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"


def running_runs(uri: str) -> list:
    """MLflow runs still RUNNING in a store, over all experiments."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps, "attributes.status = 'RUNNING'") if exps else []


def all_runs(uri: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps) if exps else []


def tally_store(uri: str) -> int:
    """Count the store's RUNNING runs into the suite's tally and return how many there are."""
    left = len(running_runs(uri)) if Path(uri.removeprefix("sqlite:///")).exists() else 0
    COUNTS["left_running"] += left
    return left


def prefect_flow_run(api: str, flow_run_id: str):
    """The flow run and its task runs, read from the Prefect API."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read():
        async with get_client() as c:
            fr = await c.read_flow_run(flow_run_id)
            trs = await c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
            return fr, trs

    with temporary_settings({PREFECT_API_URL: api}):
        return asyncio.run(read())
