"""A warm process for `synthloop run`: the libraries stay loaded between runs.

Importing Prefect, MLflow's SQL store, scikit-learn, skops, xgboost and matplotlib takes several seconds of every
run, before any work. After a run that used the local Prefect server, a runner process starts in the background
(`python -m synthloop.runner`), imports all of them once and waits on a Unix socket beside the server's state in
Prefect's home. A later `synthloop run` hands it its arguments, environment, working folder and terminal (its
stdin, stdout and stderr, passed as file descriptors); the runner forks, and the fork runs the command exactly as
the `synthloop` process would have, writing to the same terminal. Ctrl-C and SIGTERM reach the fork through the
command, which exits with the fork's status.

The runner is used only when it was started from the same interpreter, the same code (any file of the package
changed, or any package installed, starts a new one) and the same settings read at import time (`PREFECT_*`,
thread counts, `PYTHON*`). `synthloop stop` stops it, as it stops the local server; it exits by itself after
`SYNTHLOOP_RUNNER_IDLE_S` seconds without a run (default two hours), and `SYNTHLOOP_RUNNER=off` keeps every run
in its own process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

STATE_FILE = "synthloop-runner.json"
LOG_FILE = "synthloop-runner.log"
IDLE_DEFAULT_S = 7200.0
#: Settings read when the libraries are imported: a runner started with other values is not used.
IMPORT_TIME_PREFIXES = ("PREFECT_", "PYTHON", "OMP_", "GOMP_", "MKL_", "OPENBLAS_", "MPL", "XGBOOST_", "VIRTUAL_ENV")
IMPORT_TIME_VARS = ("HOME", "DO_NOT_TRACK", "GIT_PYTHON_REFRESH")
#: What every run imports; the fork finds them loaded.
WARM_MODULES = (
    "synthloop.cli", "synthloop.preflight", "synthloop.data", "synthloop.splits", "synthloop.ui",
    "synthloop.flows.develop", "synthloop.tasks.collect", "synthloop.tasks.train", "synthloop.tasks.validate",
    "synthloop.tasks.evaluate", "synthloop.tasks.annotate", "synthloop.tracking", "synthloop.records",
    "synthloop.modelstore", "synthloop.models", "synthloop.design", "synthloop.ensemble", "synthloop.plots",
    "synthloop.report", "synthloop.policy", "synthloop.judge", "synthloop.annotation", "synthloop.registry",
    "synthloop.synth", "mlflow", "mlflow.pyfunc", "mlflow.models", "mlflow.artifacts",
    "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.artifact.local_artifact_repo", "skops.io", "xgboost", "sklearn.metrics", "sklearn.model_selection",
    "prefect.flow_engine", "prefect.task_engine", "prefect.client.orchestration", "matplotlib.pyplot",
)


def enabled(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    return (environ.get("SYNTHLOOP_RUNNER", "on").strip().lower() not in ("off", "0", "false", "no")
            and not environ.get("SYNTHLOOP_RUNNER_CHILD")
            and environ.get("SYNTHLOOP_PREFECT_SERVER", "local").strip().lower() != "temporary"
            and hasattr(socket, "AF_UNIX") and hasattr(os, "fork"))


def _home(environ) -> Path:
    from synthloop.ui import prefect_home

    return prefect_home(environ)


def code_key(environ: dict[str, str] | os._Environ = os.environ) -> str:
    """What a runner must share with the command that uses it: interpreter, code, import-time settings."""
    from synthloop.env import apply_defaults

    environ = dict(environ)
    apply_defaults(environ)  # as the runner and the command both have them
    h = hashlib.sha256()
    # The libraries' folders only: a script's folder or the working folder (sys.path[0]) differ between commands.
    libraries = [p for p in sys.path if os.path.isabs(p) and ("site-packages" in p or "dist-packages" in p
                                                              or p.startswith(sys.base_prefix))]
    h.update(f"{sys.executable}\0{sys.version}\0{chr(0).join(libraries)}".encode())
    package = Path(__file__).resolve().parent
    roots = [package, package.parent / "flows", package.parent / "tasks"]
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(dirpath, name))
                    h.update(f"{dirpath}/{name}\0{st.st_mtime_ns}\0{st.st_size}".encode())
    for entry in libraries:  # a package installed or removed changes its folder
        try:
            h.update(f"{entry}\0{os.stat(entry).st_mtime_ns}".encode())
        except OSError:
            pass
    for key in sorted(environ):
        if key.startswith(IMPORT_TIME_PREFIXES) or key in IMPORT_TIME_VARS:
            h.update(f"{key}={environ[key]}\0".encode())
    return h.hexdigest()[:24]


def _socket_path(home: Path, key: str) -> Path:
    path = home / f"synthloop-runner-{key[:8]}.sock"
    if len(str(path)) < 100:
        return path
    import tempfile

    return Path(tempfile.gettempdir()) / f"synthloop-runner-{os.getuid()}-{key[:12]}.sock"


def read_state(environ=os.environ) -> dict[str, Any] | None:
    """The runner recorded in Prefect's home, if its process still runs."""
    from synthloop.ui import pid_alive

    try:
        state = json.loads((_home(environ) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and pid_alive(int(state.get("pid", 0) or 0)) else None


def stop(environ=os.environ, timeout: float = 15.0) -> dict[str, Any] | None:
    """Stop the recorded runner (runs it forked go on to their end) and forget it. Returns what was stopped."""
    from synthloop.ui import stop_pid

    home = _home(environ)
    state = read_state(environ)
    (home / STATE_FILE).unlink(missing_ok=True)
    if not state:
        return None
    stop_pid(int(state["pid"]), timeout, group=False)  # the runs it forked share its group: they go on
    return state


def start(environ: dict[str, str]) -> int | None:
    """Start a runner in the background for this Prefect home (none is started when a current one runs).

    Args:
        environ: The environment the command was started with (before the run changed it).
    Returns:
        The new runner's pid, or None when a current one runs or none can be started.
    """
    import subprocess

    from synthloop.ui import write_json_state

    if not enabled(environ):
        return None
    key = code_key(environ)
    state = read_state(environ)
    if state and state.get("key") == key:
        return None
    if state:
        stop(environ)
    home = _home(environ)
    try:
        home.mkdir(parents=True, exist_ok=True)
        log = open(home / LOG_FILE, "ab")
    except OSError:
        return None
    with log:
        proc = subprocess.Popen([sys.executable, "-m", "synthloop.runner"], env=dict(environ), cwd=str(home),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                close_fds=True)
    # Recorded at once (not ready yet), so `synthloop stop` finds a runner still loading its libraries.
    write_json_state(home / STATE_FILE, {"pid": proc.pid, "key": key, "ready": False, "started": time.time()})
    return proc.pid


# the command's side ----------------------------------------------------------------------------------
def delegate(argv: list[str]) -> int | None:
    """Hand `argv` to a ready runner with this command's environment, folder and terminal; wait for its status.

    Returns:
        The run's exit status, or None when no current runner is ready (the caller runs the command itself).
    """
    environ = dict(os.environ)
    if not enabled(environ):
        return None
    state = read_state(environ)
    if not state or not state.get("ready"):
        return None
    key = code_key(environ)
    if state.get("key") != key:
        return None  # the run starts a current runner when it ends
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        sock.connect(state["socket"])
        payload = json.dumps({"argv": argv, "env": environ, "cwd": os.getcwd(), "key": key}).encode()
        socket.send_fds(sock, [struct.pack("!Q", len(payload))], [0, 1, 2])
        sock.sendall(payload)
        reader = sock.makefile("r")
        first = reader.readline().split()
    except (OSError, ValueError):
        return None
    if len(first) != 2 or first[0] != "pid":  # the runner refused (another code version): run here
        return None
    sock.settimeout(None)
    child = int(first[1])

    def forward(signum, frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            line = reader.readline()
            break
        except InterruptedError:
            continue
    parts = line.split()
    if len(parts) >= 2 and parts[0] == "exit":
        return int(parts[1])
    print(f"synthloop: the run (pid {child}) ended without a status: killed?", file=sys.stderr)
    return 1


# the runner's side -----------------------------------------------------------------------------------
def _recv_exact(conn: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = conn.recv(n)
        if not chunk:
            raise ConnectionError("the command went away")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def serve() -> None:
    """The runner: import the libraries, record the socket, fork a child per command until idle or stopped."""
    from synthloop.env import apply_defaults
    from synthloop.ui import write_json_state

    apply_defaults()
    key = code_key(os.environ)
    started = time.monotonic()
    _warm()
    home = _home(os.environ)
    path = _socket_path(home, key)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(8)
    idle = float(os.environ.get("SYNTHLOOP_RUNNER_IDLE_S") or IDLE_DEFAULT_S)
    listener.settimeout(idle)

    def leave(signum=None, frame=None):
        path.unlink(missing_ok=True)
        try:
            state = json.loads((home / STATE_FILE).read_text())
            if state.get("pid") == os.getpid():
                (home / STATE_FILE).unlink(missing_ok=True)
        except (OSError, ValueError):
            pass
        os._exit(0)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forks are reaped as they end
    recorded = read_state(os.environ)
    if recorded and int(recorded["pid"]) != os.getpid():  # another run started a runner after this one: it stays
        print(f"runner {os.getpid()}: runner {recorded['pid']} was started after this one; leaving", flush=True)
        path.unlink(missing_ok=True)
        os._exit(0)
    write_json_state(home / STATE_FILE, {"pid": os.getpid(), "key": key, "socket": str(path), "ready": True,
                                    "started": time.time(), "warm_s": round(time.monotonic() - started, 2)})
    print(f"runner {os.getpid()}: ready after {time.monotonic() - started:.1f}s on {path}", flush=True)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            print(f"runner {os.getpid()}: idle for {idle:.0f}s, leaving", flush=True)
            leave()
        except InterruptedError:
            continue
        try:
            conn.settimeout(10.0)
            head, fds, _, _ = socket.recv_fds(conn, 8, 3)
            (length,) = struct.unpack("!Q", head)
            request = json.loads(_recv_exact(conn, length))
        except (OSError, ValueError, struct.error) as exc:
            print(f"runner {os.getpid()}: bad request ({exc})", flush=True)
            conn.close()
            continue
        if request.get("key") != key or len(fds) != 3:
            conn.sendall(b"stale\n")
            conn.close()
            for fd in fds:
                os.close(fd)
            if request.get("key") != key:
                leave()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            _child(conn, fds, request)  # never returns
        conn.close()
        for fd in fds:
            os.close(fd)


def _warm() -> None:
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the run that needs it reports it
            print(f"runner: could not import {name}: {exc}", flush=True)
    try:  # MLflow maps every installed package to its modules once per process, when a model is logged
        from mlflow.utils.requirements_utils import _init_modules_to_packages_map

        _init_modules_to_packages_map()
    except Exception:
        pass
    import gc

    gc.collect()
    gc.freeze()  # the libraries' objects: never walked again by a fork's collections, nor copied by them


def _child(conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    import io
    import random
    import resource

    rc, log_fd = 1, None
    started = time.monotonic()
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log_fd = os.dup(2)  # the runner's log
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["SYNTHLOOP_RUNNER_CHILD"] = str(os.getppid())
        sys.argv = ["synthloop", *request["argv"]]
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=os.isatty(1),
                                      write_through=not os.isatty(1))
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
        random.seed()  # flow-run names and anything unseeded must differ between forks
        try:
            import numpy as np

            np.random.seed()
        except ImportError:
            pass
        conn.sendall(f"pid {os.getpid()}\n".encode())
        from synthloop import cli

        rc = cli.main(request["argv"])
        cli.finish_process()
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - the fork must never go back into the runner's loop
        try:
            print(f"synthloop: failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        except Exception:
            pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        conn.sendall(f"exit {rc} {peak}\n".encode())
        if log_fd is not None:
            os.write(log_fd, f"run {os.getpid()} {' '.join(request['argv'][:3])}: exit {rc}, "
                             f"{time.monotonic() - started:.1f}s, peak RSS {peak / 1024:.0f} MB\n".encode())
    finally:
        os._exit(rc)


if __name__ == "__main__":
    serve()
