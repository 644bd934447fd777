"""Design trials on a 2-worker Dask LocalCluster against the same trials run serially in one process.

Serial is measured twice: fits with 1 thread (the same work per fit as on a worker) and with all cores per
fit (what `synthloop` does when it runs trials serially). The Dask run goes through the real path —
`flows.trials.design_trials` as a Prefect subflow with prefect-dask's DaskTaskRunner — with a Prefect server
running; it is timed with the cluster's start and on an already started cluster.

Prints the figures and writes ``benchmarks/results/parallel.json``. Run from the project root::

    python benchmarks/parallel.py [--rows 20000] [--columns 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    from _common import machine, prefect_server, save

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--columns", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    info = machine()
    with prefect_server(Path(tempfile.mkdtemp(prefix="synthloop-bench-prefect-"))) as url:
        os.environ["PREFECT_API_URL"] = url
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        results = _measure(args, info)
    save("parallel", results)


def _measure(args, info) -> dict:
    import numpy as np
    import pandas as pd
    from distributed import LocalCluster
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from synthloop.flows.trials import _ROWS, design_trials
    from synthloop.design import FOLDS, run_trial
    from synthloop.env import apply_defaults
    from synthloop.models import default_spec
    from synthloop.parallel import local_cluster_kwargs
    from synthloop.types import Schema

    apply_defaults()
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(args.rows, args.columns)), columns=[f"x{i}" for i in range(args.columns)])
    y = ((X.iloc[:, : args.columns // 2].sum(axis=1) + rng.normal(size=args.rows)) > 0).astype(int).to_numpy()
    schema = Schema("y", "classification", {c: "numeric" for c in X.columns}, classes=(0, 1))
    base = {"n_estimators": 200, "early_stopping_rounds": None}
    candidates = [default_spec("xgboost", max_depth=d, learning_rate=lr).with_params(**base)
                  for d in (4, 6) for lr in (0.1, 0.3)]
    candidates += [default_spec("hist_gradient_boosting").with_params(min_samples_leaf=m) for m in (10, 40)]
    candidates += [default_spec("random_forest", n_estimators=100).with_params(min_samples_leaf=m) for m in (1, 5)]
    cores = len(os.sched_getaffinity(0))
    out = {"benchmark": "design trials: 2-worker Dask LocalCluster vs serial", "rows": args.rows,
           "columns": args.columns, "trials": len(candidates), "folds": FOLDS, "workers": args.workers,
           "machine": info}

    def serial(threads: int) -> tuple[float, list[float]]:
        start = time.perf_counter()
        secs = [run_trial(s, schema, X, y, metric="accuracy", threads=threads, seed=0)["seconds"] for s in candidates]
        return time.perf_counter() - start, secs

    serial_1, per_trial_1 = serial(1)
    print(f"serial, 1 thread per fit:  {serial_1:.1f}s  (trials {min(per_trial_1):.1f}-{max(per_trial_1):.1f}s)",
          flush=True)
    serial_all, _ = serial(cores)
    print(f"serial, {cores} threads per fit: {serial_all:.1f}s", flush=True)

    @flow(name="bench-parent")
    def parent(runner):
        start = time.perf_counter()
        _ROWS["bench"] = (X, y)  # the subflow takes a key: flow parameters are capped at 512 KB
        trials = design_trials.with_options(task_runner=runner)(candidates, schema, "bench", "accuracy", 1, 1, 0,
                                                                 FOLDS, None)
        return time.perf_counter() - start, trials

    cold_start = time.perf_counter()
    cold, trials = parent(DaskTaskRunner(cluster_kwargs=local_cluster_kwargs(args.workers)))
    cold_total = time.perf_counter() - cold_start
    print(f"dask, new LocalCluster ({args.workers} workers): {cold:.1f}s", flush=True)
    with LocalCluster(**local_cluster_kwargs(args.workers)) as cluster:
        parent(DaskTaskRunner(address=cluster.scheduler_address))  # workers import the libraries once
        warm, trials = parent(DaskTaskRunner(address=cluster.scheduler_address))
    workers = sorted({t["worker"] for t in trials})
    print(f"dask, running cluster: {warm:.1f}s on {len(workers)} workers", flush=True)
    out.update({
        "serial_1_thread_s": round(serial_1, 2), f"serial_{cores}_threads_s": round(serial_all, 2),
        "trial_seconds_1_thread": [round(s, 2) for s in per_trial_1],
        "dask_new_cluster_s": round(cold, 2), "dask_new_cluster_with_flow_s": round(cold_total, 2),
        "dask_running_cluster_s": round(warm, 2), "workers_used": workers,
        "speedup_vs_serial_1_thread": round(serial_1 / warm, 2),
        "speedup_vs_serial_all_threads": round(serial_all / warm, 2),
        "speedup_new_cluster_vs_serial_all_threads": round(serial_all / cold, 2),
    })
    print(f"speedup (running cluster): ×{out['speedup_vs_serial_1_thread']} vs serial 1-thread fits, "
          f"×{out['speedup_vs_serial_all_threads']} vs serial {cores}-thread fits; with cluster start "
          f"×{out['speedup_new_cluster_vs_serial_all_threads']}")
    return out


if __name__ == "__main__":
    main()
