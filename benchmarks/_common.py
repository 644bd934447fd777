"""Helpers shared by the benchmark scripts: data files, timed child processes with their peak RSS, a
Prefect server on a free port, the machine's description, and JSON results."""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PYTHON = sys.executable
SYNTHLOOP = str(Path(sys.executable).with_name("synthloop"))


LIBRARIES = ("prefect", "mlflow", "xgboost-cpu", "scikit-learn", "pandas", "numpy", "dask", "prefect-dask")


def machine(libraries: tuple[str, ...] = LIBRARIES) -> dict[str, Any]:
    """What the figures were measured on (CPU, cores, memory, Python, versions of `libraries`, load)."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    from importlib.metadata import version

    libs = {}
    for name in libraries:
        try:
            libs[name] = version(name)
        except Exception:
            libs[name] = None
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gb": round(mem_gb, 1),
            "python": platform.python_version(), "os": platform.platform(), "libraries": libs,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def make_table(path: Path, rows: int, columns: int, seed: int = 0) -> Path:
    """A binary classification table of `rows` × `columns` numeric features plus `y`, as Parquet (or as CSV
    when `path` ends in .csv; the same rows)."""
    if path.exists():
        return path
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, columns)).astype("float64")
    w = rng.normal(size=columns) / np.sqrt(columns)
    logit = X @ w + 0.5 * np.sin(3 * X[:, 0]) + rng.normal(scale=0.5, size=rows)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(columns)])
    frame["y"] = np.where(logit > 0, "yes", "no")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def in_memory_mb(rows: int, columns: int) -> float:
    """The table's in-memory size as pandas holds it (float64 features, the target as object strings)."""
    import numpy as np
    import pandas as pd

    sample = pd.DataFrame(np.zeros((1000, columns)), columns=[f"x{i}" for i in range(columns)])
    sample["y"] = np.where(np.arange(1000) % 2, "yes", "no")
    return sample.memory_usage(deep=True).sum() / 1000 * rows / 2**20


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Run a command; its wall time, exit status, stdout and its own peak RSS (MB; children excluded)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
                            cwd=cwd or ROOT, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    # communicate() has reaped the child; its rusage was folded into RUSAGE_CHILDREN, so run it via wait4 instead
    return {"wall_s": wall, "returncode": proc.returncode, "stdout": out, "stderr": err}


def timed_rss(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Like `timed`, with the child's own peak RSS read from wait4 (grandchildren such as a temporary
    Prefect server are not counted)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as fout, tempfile.TemporaryFile("w+") as ferr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fout, stderr=ferr, env={**os.environ, **(env or {})}, cwd=cwd or ROOT,
                                text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        fout.seek(0)
        ferr.seek(0)
        return {"wall_s": wall, "returncode": proc.returncode, "peak_rss_mb": usage.ru_maxrss / 1024,
                "stdout": fout.read(), "stderr": ferr.read()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def prefect_server(home: Path):
    """A Prefect server on a free port of 127.0.0.1 with its own database; stopped by its PID afterwards.

    Yields the API URL.
    """
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated benchmark still stops its server
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_UI_ENABLED": "false", "PREFECT_API_URL": ""}
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        import urllib.request

        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prefect server did not start (see {home / 'server.log'})")
            time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group, started above
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def self_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
