"""The Prefect server and the MLflow UI, on 127.0.0.1.

**The local Prefect server.** `synthloop run` (and `retrain`, `serve`, `ui`) needs a Prefect API. When
none is set (`PREFECT_API_URL`, a Prefect profile, or `synthloop ui`'s server for the store), the first
command starts `prefect server start` in the background, in a process group of its own, and records its
URL and PID in `$PREFECT_HOME/synthloop-server.json`; later commands find it there and reuse it, so no
command pays for a temporary server (3-5 s a process, 10 s on a new Prefect home) and every run is in the
Prefect UI at once. `synthloop stop` stops it. `SYNTHLOOP_PREFECT_SERVER=temporary` keeps Prefect's own
temporary per-process server instead.

**`synthloop ui`** starts the MLflow UI (and the local Prefect server when none runs), waits until both
answer their health checks, and writes their URLs and PIDs to `<store>/.servers.json` (next to the
SQLite store, `./mlruns` by default). `synthloop run` and `synthloop serve` read that file too. Ctrl-C
stops what `ui` started.
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
LOCAL_STATE_FILE = "synthloop-server.json"
HOST = "127.0.0.1"
PREFECT_PORT = 4200


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


def write_json_state(path: Path, state: dict[str, Any]) -> Path:
    """Write a state file (JSON) whole or not at all: to a temporary file of this process, then renamed over it,
    so that a reader never sees half a file and two writers never share a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)
    return path


def stop_pid(pid: int, timeout: float = 15.0, group: bool = True) -> None:
    """Stop a process started here by its PID: SIGTERM to its process group (or to it alone, `group=False`),
    SIGKILL if it lingers past `timeout` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
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


# the local Prefect server --------------------------------------------------------------------------
def prefect_home(environ: Any = None) -> Path:
    """Prefect's home folder (its database lives there): `PREFECT_HOME` (of `environ`, default this process's
    environment), else ~/.prefect."""
    env = os.environ if environ is None else environ
    return Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser().resolve()


def pid_alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie."""
    from synthloop.tracking import _pid_alive

    if not _pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # no /proc (not Linux): it exists
        return True


@dataclass
class LocalServer:
    """The background Prefect server: found running, or started by this process (`started` is True)."""

    url: str
    pid: int
    log: Path
    started: bool

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def health_url(self) -> str:
        return f"{self.url}/api/health"

    def wait(self, timeout: float = 90.0) -> None:
        """Block until the server answers; ServerError (with its log's tail) if it exits or takes too long."""
        deadline = time.monotonic() + timeout
        while not (healthy(self.health_url, 1.0) and self._listening()):
            if not pid_alive(self.pid):
                raise ServerError(f"the local Prefect server (pid {self.pid}) exited while starting; its log "
                                  f"{self.log} ends with:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                raise ServerError(f"the local Prefect server (pid {self.pid}) did not answer within {timeout:.0f}s "
                                  f"(see {self.log})")
            time.sleep(0.1)


    def _listening(self) -> bool:
        """Whether the answer comes from this server's own process: another Prefect server (another
        `PREFECT_HOME`) can take the port between the check that it is free and this server's bind."""
        import psutil  # with distributed

        port = int(self.url.rsplit(":", 1)[1])
        try:
            proc = psutil.Process(self.pid)
            procs = [proc, *proc.children(recursive=True)]
            return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                       for p in procs for c in p.net_connections(kind="tcp"))
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:  # cannot tell: trust the answer
            return True


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class _Lock:
    """An exclusive lock on a file, so two commands starting at once start one server."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the lock


def local_state() -> dict[str, Any] | None:
    """The local server recorded in Prefect's home, if its process still runs."""
    try:
        state = json.loads((prefect_home() / LOCAL_STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and pid_alive(int(state.get("pid", 0) or 0)) else None


def local_server(start: bool = True, port: int | None = None) -> LocalServer | None:
    """The background Prefect server for this Prefect home: the running one, else (with `start`) a new one.

    A new one listens on 127.0.0.1:4200 when that port is free, else on a free port. This returns as soon
    as its process is started; `LocalServer.wait()` waits until it answers.
    """
    home = prefect_home()
    with _Lock(home / ".synthloop-server.lock"):
        state = local_state()
        if state:
            return LocalServer(state["url"], int(state["pid"]), Path(state["log"]), started=False)
        if not start:
            return None
        port = port or (PREFECT_PORT if not port_in_use(PREFECT_PORT) else free_port())
        srv = prefect_server(port, home, prefect_home=home)
        srv.log = home / "synthloop-server.log"
        srv.start()
        write_json_state(home / LOCAL_STATE_FILE, {"url": srv.url, "health": srv.health_url, "pid": srv.pid,
                                              "log": str(srv.log), "started": time.time(), "prefect_home": str(home)})
        return LocalServer(srv.url, srv.pid, srv.log, started=True)


def stop_local_server(server: LocalServer | None = None) -> LocalServer | None:
    """Stop the local Prefect server (the given one, else the recorded one) and forget it."""
    home = prefect_home()
    with _Lock(home / ".synthloop-server.lock"):
        state = local_state()
        if server is None and state:
            server = LocalServer(state["url"], int(state["pid"]), Path(state["log"]), started=False)
        if server is None:
            return None
        stop_pid(server.pid)
        if state is None or int(state["pid"]) == server.pid:
            (home / LOCAL_STATE_FILE).unlink(missing_ok=True)
        return server


def _configured_api() -> str | None:
    """A Prefect API the user set: PREFECT_API_URL, or Prefect's settings when Prefect is already imported
    (a test harness, a notebook), or the active Prefect profile."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml")
    if "prefect.settings" in sys.modules or (profiles.is_file() and "PREFECT_API_URL" in profiles.read_text(
            errors="replace")):
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    return None


@dataclass
class PrefectChoice:
    """Which Prefect API a command uses, and the line that says so."""

    api_url: str | None  # None: Prefect's temporary server
    how: str  # "configured", "ui", "local", "temporary"
    server: LocalServer | None = None

    def note(self) -> str | None:
        if self.how == "local" and self.server is not None:
            if self.server.started:
                return (f"prefect: started the local server {self.server.url} (pid {self.server.pid}) in the "
                        "background; later runs reuse it, `synthloop stop` stops it")
            warm = os.environ.get("SYNTHLOOP_RUNNER_CHILD")
            return (f"prefect: local server {self.server.url} (pid {self.server.pid})"
                    + (f"; libraries already loaded in the warm runner (pid {warm})" if warm else ""))
        if self.how == "temporary":
            return "prefect: a temporary server for this process (SYNTHLOOP_PREFECT_SERVER=temporary)"
        return None

    def ready(self, timeout: float = 90.0) -> None:
        """Wait for a local server this command started; the run then records into it."""
        if self.server is not None:
            self.server.wait(timeout)

    def undo(self) -> None:
        """Stop the local server this command started (the command failed before any run)."""
        if self.server is not None and self.server.started:
            stop_local_server(self.server)


def choose_prefect(tracking_uri: str | None) -> PrefectChoice:
    """The Prefect API for `run`, `retrain`, `serve`: configured, `synthloop ui`'s, the local server, or
    Prefect's temporary one (`SYNTHLOOP_PREFECT_SERVER=temporary`). Sets PREFECT_API_URL for what follows."""
    api = _configured_api()
    if api:
        return PrefectChoice(api, "configured")
    state = read_state(tracking_uri)
    if state and "prefect" in state:
        os.environ["PREFECT_API_URL"] = state["prefect"]["url"] + "/api"
        return PrefectChoice(os.environ["PREFECT_API_URL"], "ui")
    if os.environ.get("SYNTHLOOP_PREFECT_SERVER", "local").strip().lower() == "temporary":
        return PrefectChoice(None, "temporary")
    server = local_server()
    os.environ["PREFECT_API_URL"] = server.api_url
    return PrefectChoice(server.api_url, "local", server)


# state shared with `synthloop run` / `synthloop serve` -------------------------------------------------
def write_state(directory: Path, servers: list[Server | LocalServer], tracking_uri: str,
                experiment_id: str | None) -> Path:
    path = directory / STATE_FILE
    entries = {}
    for s in servers:
        name = "prefect" if isinstance(s, LocalServer) else s.name
        entries[name] = {"url": s.url, "health": s.health_url, "pid": s.pid, "log": str(s.log)}
    state = {"tracking_uri": tracking_uri, "experiment_id": experiment_id, "started": time.time(),
             "ui_pid": os.getpid(), **entries}
    return write_json_state(path, state)


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
    """Use the Prefect server `synthloop ui` started, else the local one, unless PREFECT_API_URL is set already.

    Returns:
        The live servers' state (URLs by name), or None when none answers.
    """
    state = read_state(tracking_uri)
    if state and "prefect" in state and not os.environ.get("PREFECT_API_URL"):
        os.environ["PREFECT_API_URL"] = state["prefect"]["url"] + "/api"
    elif not os.environ.get("PREFECT_API_URL"):
        local = local_state()  # the local server runs started in the background
        if local and healthy(local["health"], 1.5):
            os.environ["PREFECT_API_URL"] = local["url"] + "/api"
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
