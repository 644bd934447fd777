"""What the orchestration costs: `synthloop run` (fixed design, one iteration) against a bare script doing the
same work on the same data (benchmarks/bare.py), with Prefect embedded (temporary server) and with a running
Prefect server; plus the cost of one Prefect task call.

Prints the figures and writes ``benchmarks/results/overhead.json``. Run from the project root::

    python benchmarks/overhead.py [--rows 10000 100000 1000000] [--columns 20] [--modes server embedded]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (PYTHON, ROOT, SYNTHLOOP, in_memory_mb, machine, make_table, prefect_server, save,  # noqa: E402
                     timed_rss)

N_TASK_CALLS = 20


def run_synthloop(data: Path, work: Path, api_url: str | None, threads: int) -> dict:
    """One `synthloop run` with a fixed design (xgboost) and one iteration; wall, peak RSS and its summary."""
    (work / "mlruns").mkdir(parents=True, exist_ok=True)
    (work / ("prefect-embedded" if not api_url else "p")).mkdir(parents=True, exist_ok=True)
    env = {"PREFECT_API_URL": api_url or "", "PREFECT_HOME": str(work / ("prefect-embedded" if not api_url else "p")),
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlruns' / 'mlflow.db'}",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300"}
    if not api_url:
        env.pop("PREFECT_API_URL")
        env["PREFECT_API_URL"] = ""
    out = timed_rss([SYNTHLOOP, "run", "--data", str(data), "--target", "y", "--model", "xgboost",
                     "--max-iterations", "1", "--threads", str(threads), "--json"], env=env)
    if out["returncode"] != 0:
        raise RuntimeError(f"synthloop run failed: {out['stderr'][-2000:]}")
    summary = json.loads(out["stdout"].strip().splitlines()[-1])
    return {"wall_s": round(out["wall_s"], 3), "peak_rss_mb": round(out["peak_rss_mb"], 1),
            "inner_seconds": summary["seconds"], "val": summary["iterations"][0]["val_metrics"].get("accuracy")}


def run_bare(data: Path, threads: int) -> dict:
    out = timed_rss([PYTHON, str(ROOT / "benchmarks" / "bare.py"), "--data", str(data), "--target", "y",
                     "--threads", str(threads)])
    if out["returncode"] != 0:
        raise RuntimeError(f"bare script failed: {out['stderr'][-2000:]}")
    inner = json.loads(out["stdout"].strip().splitlines()[-1])
    return {"wall_s": round(out["wall_s"], 3), "peak_rss_mb": round(out["peak_rss_mb"], 1), "stages_s": inner["stages_s"],
            "val": inner["val"]}


TASK_SCRIPT = r'''
import json, sys, time
import numpy as np, pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from synthloop.types import TrainingSet

rows, n = int(sys.argv[1]), int(sys.argv[2])
data = TrainingSet(pd.DataFrame(np.random.default_rng(0).normal(size=(rows, 20))), np.zeros(rows, int),
                   np.full(rows, "real", dtype=object))

def body(data, i):
    return i

plain = task(body, name="noop-default-cache")
nocache = task(body, name="noop-no-cache", cache_policy=NO_CACHE)

@flow
def calls():
    out = {}
    for name, t in (("no_cache", nocache), ("default_cache_policy", plain)):
        t(data, -1)  # warm
        start = time.perf_counter()
        for i in range(n):
            t(data, i)
        out[name] = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for i in range(n):
        body(data, i)
    out["plain_call"] = (time.perf_counter() - start) / n
    return out

print(json.dumps(calls()))
'''


def task_overhead(api_url: str, rows: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(TASK_SCRIPT)
    try:
        out = timed_rss([PYTHON, f.name, str(rows), str(N_TASK_CALLS)],
                        env={"PREFECT_API_URL": api_url, "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
                             "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "true"})
    finally:
        os.unlink(f.name)
    if out["returncode"] != 0:
        raise RuntimeError(out["stderr"][-2000:])
    res = json.loads(out["stdout"].strip().splitlines()[-1])
    return {k: round(v * 1000, 2) for k, v in res.items()}  # milliseconds per call


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--columns", type=int, default=20)
    p.add_argument("--modes", nargs="+", default=["server", "embedded"], choices=["server", "embedded"])
    p.add_argument("--threads", type=int, default=1, help="threads per fit (1: figures stay comparable on a busy machine)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "synthloop-bench")
    args = p.parse_args()
    info = machine()
    results: dict = {"benchmark": "synthloop run (xgboost, 1 iteration) vs bare script", "columns": args.columns,
                     "threads": args.threads, "machine": info, "cases": [], "task_call_ms": {}}
    args.work.mkdir(parents=True, exist_ok=True)
    with prefect_server(args.work / f"prefect-server-{int(time.time())}") as url:
        for rows in (1_000, 100_000):
            results["task_call_ms"][f"{rows}_rows_argument"] = task_overhead(url, rows)
            print(f"task call with a {rows}-row TrainingSet argument (ms): {results['task_call_ms'][f'{rows}_rows_argument']}",
                  flush=True)
        for rows in args.rows:
            data = make_table(args.work / f"table_{rows}x{args.columns}.parquet", rows, args.columns)
            bare = run_bare(data, args.threads)
            case = {"rows": rows, "data_mb": round(in_memory_mb(rows, args.columns), 1), "bare": bare}
            print(f"{rows:>9} rows: bare {bare['wall_s']:.1f}s (peak RSS {bare['peak_rss_mb']:.0f} MB)", flush=True)
            results["cases"].append(case)
            for mode in args.modes:
                try:
                    run = run_synthloop(data, args.work / f"{mode}-{rows}", url if mode == "server" else None,
                                        args.threads)
                except RuntimeError as exc:  # e.g. the temporary server did not start on a busy machine
                    case[mode] = {"error": str(exc).splitlines()[-1]}
                    print(f"{rows:>9} rows: {mode} failed: {case[mode]['error']}", flush=True)
                    continue
                run["ratio"] = round(run["wall_s"] / bare["wall_s"], 3)
                run["overhead_s"] = round(run["wall_s"] - bare["wall_s"], 3)
                case[mode] = run
                print(f"{rows:>9} rows: {mode} {run['wall_s']:.1f}s (×{run['ratio']:.2f}, +{run['overhead_s']:.1f}s, "
                      f"peak RSS {run['peak_rss_mb']:.0f} MB)", flush=True)
                save("overhead", results)
    save("overhead", results)


if __name__ == "__main__":
    main()
