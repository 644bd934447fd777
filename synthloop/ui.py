"""The Prefect server and the MLflow UI, started together on 127.0.0.1.

`synthloop ui` starts both (each in a process group of its own, so stopping one PID stops its
workers too), waits until both answer their health checks, and writes their URLs and PIDs to
`<store>/.servers.json` (next to the SQLite store, `./mlruns` by default). `synthloop run` and
`synthloop serve` read that file: when the Prefect server it names answers, they use it (and skip the
~6 s temporary server), so runs appear in the UI as they happen.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthloop.errors import SynthloopError

STATE_FILE = ".servers.json"
HOST = "127.0.0.1"


class ServerError(SynthloopError):
    """A server could not be started or did not become healthy."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when GET `url` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (a local URL we built)
            return 200 <= resp.status < 300
    except Exception:
        return False


def store_dir(tracking_uri: str | None) -> Path:
    """Where the state file and server logs live: the SQLite store's folder, else ./mlruns."""
    from synthloop.tracking import resolve_tracking_uri

    uri, _ = resolve_tracking_uri(tracking_uri)
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).resolve().parent
    return (Path.cwd() / "mlruns").resolve()


@dataclass
class Server:
    """One started server: its command, URL, health URL and process."""

    name: str
    url: str
    health_url: str
    command: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def prefect_server(port: int, log_dir: Path, prefect_home: Path | None = None) -> Server:
    """`prefect server start` on 127.0.0.1:`port` (its database in PREFECT_HOME, ~/.prefect by default)."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "true"}
    env.pop("PREFECT_API_URL", None)  # the server itself must not talk to another API
    if prefect_home is not None:
        env["PREFECT_HOME"] = str(prefect_home)
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)]
    base = f"http://{HOST}:{port}"
    env["PREFECT_UI_API_URL"] = f"{base}/api"  # the browser UI calls this; its default is port 4200
    return Server("prefect", base, f"{base}/api/health", cmd, env, log_dir / "prefect-server.log")


def mlflow_server(port: int, tracking_uri: str, artifact_root: str | None, log_dir: Path) -> Server:
    """The MLflow UI on the store, lean: one worker, no job execution (its defaults start 15 processes)."""
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri, "--host", HOST,
           "--port", str(port), "--workers", "1"]
    if artifact_root:
        cmd += ["--default-artifact-root", artifact_root]
    base = f"http://{HOST}:{port}"
    return Server("mlflow", base, f"{base}/health", cmd, env, log_dir / "mlflow-server.log")


def wait_healthy(servers: list[Server], timeout: float = 120.0) -> None:
    """Wait until every server answers its health URL; raise ServerError naming the one that did not."""
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        for srv in list(pending):
            code = srv.proc.poll() if srv.proc else None
            if code is not None:
                raise ServerError(f"the {srv.name} server exited with status {code} while starting; "
                                  f"its log {srv.log} ends with:\n{srv.log_tail()}")
            if healthy(srv.health_url):
                pending.remove(srv)
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            raise ServerError(f"{names} not healthy after {timeout:.0f}s (see {pending[0].log})")
        if pending:
            time.sleep(0.3)


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    """Stop a server started here by its PID: SIGTERM to its process group, SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    return
            except ChildProcessError:  # not our child: poll whether it still exists
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.2)


def stop(server: Server, timeout: float = 15.0) -> None:
    if server.proc is not None and server.proc.poll() is None:
        stop_pid(server.proc.pid, timeout)
        try:
            server.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


# state shared with `synthloop run` / `synthloop serve` -------------------------------------------------
def write_state(directory: Path, servers: list[Server], tracking_uri: str, experiment_id: str | None) -> Path:
    path = directory / STATE_FILE
    state = {"tracking_uri": tracking_uri, "experiment_id": experiment_id, "started": time.time(),
             **{s.name: {"url": s.url, "health": s.health_url, "pid": s.pid, "log": str(s.log)} for s in servers}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)
    return path


def read_state(tracking_uri: str | None) -> dict[str, Any] | None:
    """The servers `synthloop ui` recorded for this store, keeping only those that answer now."""
    path = store_dir(tracking_uri) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    live = {k: v for k, v in state.items() if isinstance(v, dict) and "health" in v and healthy(v["health"], 1.5)}
    if not live:
        return None
    return {**{k: v for k, v in state.items() if not isinstance(v, dict)}, **live}


def attach(tracking_uri: str | None) -> dict[str, Any] | None:
    """Use the Prefect server `synthloop ui` started, unless PREFECT_API_URL is set already.

    Returns:
        The live servers' state (URLs by name), or None when none answers.
    """
    state = read_state(tracking_uri)
    if state and "prefect" in state and not os.environ.get("PREFECT_API_URL"):
        os.environ["PREFECT_API_URL"] = state["prefect"]["url"] + "/api"
    return state


def prefect_run_link(base: str, flow_run_id: str) -> str:
    return f"{base}/runs/flow-run/{flow_run_id}"


def live_links(state: dict[str, Any], summary: dict[str, Any]) -> str:
    """Where a finished `synthloop run` is, in the UIs `synthloop ui` started."""
    lines = ["live in `synthloop ui`:"]
    if "mlflow" in state:
        lines.append(f"  MLflow   {state['mlflow']['url']}/#/experiments/{summary['mlflow_experiment_id']}/runs/"
                     f"{summary['mlflow_run_id']}")
    if "prefect" in state and os.environ.get("PREFECT_API_URL", "").rstrip("/") == state["prefect"]["url"] + "/api":
        lines.append(f"  Prefect  {prefect_run_link(state['prefect']['url'], summary['prefect_flow_run_id'])}")
    return "\n".join(lines)


def resume_run(flow_run_id: str, tracking_uri: str | None = None, run_input: dict[str, Any] | None = None) -> str:
    """Resume a paused flow run (e.g. waiting for human labels) on the Prefect server it runs on.

    Uses the server `synthloop ui` started for this store, as `synthloop run` does (unless PREFECT_API_URL is
    set): Prefect's own `resume_flow_run` without a server would start a temporary one on the same database
    file, which the running server holds locked.

    Args:
        flow_run_id: The paused flow run's id (in the label file's folder name and the run's output).
        tracking_uri: The MLflow store whose `synthloop ui` servers to use (default: as everywhere).
        run_input: What the pause waits for; default `{"done": True}` (the label file is filled in).
    Returns:
        The Prefect API URL the run was resumed on.
    Raises:
        ServerError: no server to resume on, no such flow run, or the run is not paused.
    """
    from uuid import UUID

    attach(tracking_uri)
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    if not api:
        raise ServerError("no Prefect server to resume on: start `synthloop ui` (the run's server) or set "
                          "PREFECT_API_URL to the server the run is on")
    try:
        run_id = UUID(str(flow_run_id))
    except ValueError:
        raise ServerError(f"{flow_run_id!r} is not a flow run id (a UUID, as in the label file's folder name)") from None
    from prefect.exceptions import NotPausedError, ObjectNotFound
    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(run_id, run_input={"done": True} if run_input is None else run_input)
    except ObjectNotFound:
        raise ServerError(f"flow run {run_id} not found on {api}") from None
    except (NotPausedError, RuntimeError) as exc:  # not paused (finished, or resumed already), or refused
        raise ServerError(f"flow run {run_id} on {api}: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise ServerError(f"Prefect server {api} does not answer ({exc}); is `synthloop ui` running?") from None
    return api
