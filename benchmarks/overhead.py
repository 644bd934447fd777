"""What the orchestration costs, side by side in one run: `synthloop run` against a plain pandas + xgboost script.

- The default `synthloop run` (embedded digits scenario) in a new project: on a new Prefect home, with nothing
  running (the local Prefect server stopped), and again with the server up. Wall time and when the first line
  came.
- `synthloop run --max-iterations 1 --model xgboost` against `benchmarks/plain.py` (read the CSV, split 60/20/20,
  one early-stopped fit, score, save; none of this project's code) on the same CSVs: with the local server and the
  warm runner up (a second run), with the server alone (`SYNTHLOOP_RUNNER=off`), and with nothing started before.
  Differences, ratios, and peak RSS against the frame's in-memory size (for a run in the warm runner, the fork's
  own peak, from the runner's log).

Every command is a fresh process. Prints the figures and writes ``benchmarks/results/overhead.json``. Run from
the project root::

    python benchmarks/overhead.py [--rows 100000 1000000] [--columns 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, ROOT, SYNTHLOOP, machine, make_table, save  # noqa: E402


def make_csv(work: Path, rows: int, columns: int) -> Path:
    path = work / f"table_{rows}x{columns}.csv"
    if not path.exists():
        import pandas as pd

        pd.read_parquet(make_table(work / f"table_{rows}x{columns}.parquet", rows, columns)).to_csv(path, index=False)
    return path


def streamed(cmd: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run a command: wall time, when its first line came (stdout or stderr), its own peak RSS, its output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, text=True)
    first: list[float] = []
    chunks: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def read(name: str, stream) -> None:
        for line in stream:
            if not first:
                first.append(time.perf_counter() - start)
            chunks[name].append(line)

    readers = [threading.Thread(target=read, args=(n, s)) for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)  # the command's own peak RSS; a server it started is not counted
    wall = time.perf_counter() - start
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = {"wall_s": round(wall, 2), "first_line_s": round(first[0], 2) if first else None,
           "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "returncode": proc.returncode,
           "stdout": "".join(chunks["stdout"]), "stderr": "".join(chunks["stderr"])}
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {out['stderr'][-2000:]}")
    return out


def project_env(home: Path, project: Path, threads: int) -> dict[str, str]:
    """A user's shell: no Prefect API set, the project's own MLflow store, Prefect's home at `home`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SYNTHLOOP_", "PREFECT_API_URL", "MLFLOW_TRACKING", "PREFECT_LOCAL_STORAGE"))}
    env.update({"PREFECT_HOME": str(home), "OMP_NUM_THREADS": str(threads)})
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def stop_servers(env: dict[str, str], cwd: Path) -> None:
    subprocess.run([SYNTHLOOP, "stop"], env=env, cwd=cwd, capture_output=True, timeout=120)


def wait_for_runner(home: Path, timeout: float = 180) -> None:
    """The warm runner a run started at its end: ready (its libraries loaded), or an error."""
    path = home / "synthloop-runner.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(path.read_text()).get("ready"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"no warm runner ready in {home} after {timeout:.0f}s")


def fork_peak_mb(home: Path) -> float | None:
    """The peak RSS of the last run the warm runner forked (its log's last `run ...` line)."""
    import re

    try:
        lines = (home / "synthloop-runner.log").read_text().splitlines()
    except OSError:
        return None
    found = [re.search(r"peak RSS (\d+) MB", line) for line in lines if line.startswith("run ")]
    return float(found[-1].group(1)) if found and found[-1] else None


def run_mode(mode: str, cmd: list[str], env: dict[str, str], home: Path, project: Path) -> dict:
    """One `synthloop run` in a situation: `warm` (server and runner up), `server` (runner off), `nothing`."""
    if mode == "nothing":
        stop_servers(env, project)
    if mode == "warm":
        wait_for_runner(home)
    run_env = {**env, "SYNTHLOOP_RUNNER": "off"} if mode == "server" else env
    run = streamed(cmd, run_env, project)
    if mode == "warm":
        if "warm runner" not in run["stderr"]:
            raise RuntimeError(f"the run did not go through the warm runner: {run['stderr'][-1500:]}")
        run["peak_rss_mb"] = fork_peak_mb(home) or run["peak_rss_mb"]
    return run


MODES = {"warm": "server and warm runner up", "server": "server up, runner off", "nothing": "nothing started"}


def default_runs(work: Path, threads: int) -> dict:
    """`synthloop run` with no arguments in a new project: new Prefect home, nothing running, server up."""
    home, project = work / "default-home", work / "default-project"
    for folder in (home, project):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    env = project_env(home, project, threads)
    out = {}
    try:
        for name, mode in (("new_prefect_home", None), ("nothing_running", "nothing"), ("second_run", "warm"),
                           ("server_only", "server")):
            run = run_mode(mode, [SYNTHLOOP, "run"], env, home, project) if mode else streamed([SYNTHLOOP, "run"],
                                                                                                env, project)
            out[name] = {k: run[k] for k in ("wall_s", "first_line_s", "peak_rss_mb")}
            print(f"default run, {name.replace('_', ' ')}{f' ({MODES[mode]})' if mode else ''}: {run['wall_s']:.1f}s "
                  f"wall, first line after {run['first_line_s']:.2f}s, peak RSS {run['peak_rss_mb']:.0f} MB", flush=True)
    finally:
        stop_servers(env, project)
    return out


def table_runs(work: Path, rows: int, columns: int, threads: int) -> dict:
    data = make_csv(work, rows, columns)
    home, project = work / "table-home", work / f"table-project-{rows}"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    env = project_env(home, project, threads)
    plain = streamed([PYTHON, str(ROOT / "benchmarks" / "plain.py"), "--data", str(data), "--target", "y",
                      "--threads", str(threads)], env, ROOT)
    inner = json.loads(plain["stdout"].strip().splitlines()[-1])
    case = {"rows": rows, "columns": columns, "frame_mb": inner["frame_mb"],
            "plain": {"wall_s": plain["wall_s"], "peak_rss_mb": plain["peak_rss_mb"], "seconds": inner["seconds"],
                      "test_accuracy": round(inner["test_accuracy"], 4)}}
    print(f"{rows:>9} rows: plain script {plain['wall_s']:.1f}s (peak RSS {plain['peak_rss_mb']:.0f} MB; frame "
          f"{inner['frame_mb']:.0f} MB), test accuracy {inner['test_accuracy']:.4f}", flush=True)
    cmd = [SYNTHLOOP, "run", "--data", str(data), "--target", "y", "--model", "xgboost", "--max-iterations", "1",
           "--threads", str(threads), "--json"]
    try:
        subprocess.run(cmd[:2] + ["--data", "sklearn:iris", "--max-iterations", "1", "--threads", "1"], env=env,
                       cwd=project, capture_output=True, timeout=600)  # the local server is up, its database made
        for mode in ("warm", "server", "nothing"):
            run = run_mode(mode, cmd, env, home, project)
            summary = json.loads(run["stdout"].strip().splitlines()[-1])
            res = {"wall_s": run["wall_s"], "first_line_s": run["first_line_s"], "peak_rss_mb": run["peak_rss_mb"],
                   "extra_s": round(run["wall_s"] - plain["wall_s"], 2),
                   "ratio": round(run["wall_s"] / plain["wall_s"], 3),
                   "rss_over_frame": round(run["peak_rss_mb"] / inner["frame_mb"], 2),
                   "test_accuracy": round(summary["test_metrics"]["accuracy"], 4), "loop_seconds": summary["seconds"]}
            case[mode] = res
            print(f"{rows:>9} rows: synthloop, {MODES[mode]}: {res['wall_s']:.1f}s (+{res['extra_s']:.1f}s, "
                  f"x{res['ratio']:.2f}), peak RSS {res['peak_rss_mb']:.0f} MB = {res['rss_over_frame']:.1f}x the frame, "
                  f"test accuracy {res['test_accuracy']:.4f}", flush=True)
    finally:
        stop_servers(env, project)
    return case


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--columns", type=int, default=20)
    p.add_argument("--threads", type=int, default=2, help="threads per fit, for both the plain script and synthloop")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "synthloop-overhead")
    p.add_argument("--skip-default", action="store_true", help="leave out the default-run part")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict = {"benchmark": "synthloop run vs a plain pandas + xgboost script", "threads": args.threads,
                     "machine": machine(), "default_run": None, "cases": []}
    if not args.skip_default:
        results["default_run"] = default_runs(args.work, args.threads)
        save("overhead", results)
    for rows in args.rows:
        results["cases"].append(table_runs(args.work, rows, args.columns, args.threads))
        save("overhead", results)


if __name__ == "__main__":
    main()
