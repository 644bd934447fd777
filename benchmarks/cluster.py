"""The cluster path against the pandas path on the same data: N rows × 20 features as multi-file Parquet, one
iteration of each (`synthloop run --max-iterations 1`, fixed xgboost design), with a Prefect server running.

- cluster: `synthloop run --data DIR --dask-address ADDR` on a 2-worker LocalCluster (process workers × 1 thread)
  that this script starts, so it can watch the workers' memory (RSS of each worker process, sampled every 0.2 s);
- pandas: `synthloop run --data file.parquet` (the same rows in one file), one thread per fit.

Reports wall time, the driver's peak RSS (the `synthloop` process, from wait4), the workers' peak RSS and the
test metric of each. The data is written in chunks (this script never holds the whole table either).

    python benchmarks/cluster.py                  # 10M rows: minutes and several GB; not for a shared machine
    python benchmarks/cluster.py --rows 200000    # a quick check that it works

Writes ``benchmarks/results/cluster.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SYNTHLOOP, in_memory_mb, machine, prefect_server, save, timed_rss  # noqa: E402

COLUMNS = 20


def write_dataset(folder: Path, rows: int, rows_per_file: int, seed: int = 0) -> tuple[Path, Path]:
    """`rows` × 20 features + `y` as files of `rows_per_file` rows in `folder/parts/`, and the same rows in one file."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts, single = folder / "parts", folder / "all.parquet"
    if single.exists() and parts.exists():
        return parts, single
    parts.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w = rng.normal(size=COLUMNS) / np.sqrt(COLUMNS)
    writer = None
    for i, start in enumerate(range(0, rows, rows_per_file)):
        n = min(rows_per_file, rows - start)
        X = rng.normal(size=(n, COLUMNS))
        logit = X @ w + 0.5 * np.sin(3 * X[:, 0]) + rng.normal(scale=0.5, size=n)
        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(COLUMNS)])
        frame["y"] = np.where(logit > 0, "yes", "no")
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, parts / f"part-{i:04d}.parquet", row_group_size=min(n, 250_000))
        writer = writer or pq.ParquetWriter(single, table.schema)
        writer.write_table(table)
    writer.close()
    return parts, single


class WorkerMemory:
    """Peak RSS (MB) of each worker process of a cluster, sampled in a thread."""

    def __init__(self, client, every: float = 0.2):
        import os

        import psutil

        self.procs = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
        self.peak = {p.pid: 0.0 for p in self.procs}
        self.every, self._stop = every, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for p in self.procs:
                try:
                    self.peak[p.pid] = max(self.peak[p.pid], p.memory_info().rss / 2**20)
                except Exception:
                    pass
            time.sleep(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _summary(result: dict) -> dict:
    try:
        line = [ln for ln in result["stdout"].splitlines() if ln.startswith("{")][-1]
        s = json.loads(line)
        return {"test_metrics": s["test_metrics"], "flow_seconds": s["seconds"], "iterations": len(s["iterations"])}
    except Exception:
        return {"error": (result.get("stderr") or "")[-800:]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--rows-per-file", type=int, default=500_000)
    p.add_argument("--n-estimators", type=int, default=100)
    p.add_argument("--skip-pandas", action="store_true", help="run the cluster path only")
    args = p.parse_args()
    from distributed import Client, LocalCluster

    from synthloop.parallel import local_cluster_kwargs

    work = Path(tempfile.gettempdir()) / "synthloop-bench" / f"cluster-{args.rows}"
    parts, single = write_dataset(work, args.rows, args.rows_per_file)
    common = ["--target", "y", "--max-iterations", "1", "--model", "xgboost", "--threads", "1", "--goal",
              "accuracy >= 0.99", "--set", f"model.n_estimators={args.n_estimators}", "--json"]
    results = {"benchmark": "cluster path against pandas path (1 iteration, xgboost)", "machine": machine(),
               "rows": args.rows, "columns": COLUMNS, "files": len(list(parts.glob("*.parquet"))),
               "in_memory_mb": round(in_memory_mb(args.rows, COLUMNS), 1), "cases": {}}
    with prefect_server(work / f"prefect-{int(time.time())}") as url:
        env = {"PREFECT_API_URL": url}
        with LocalCluster(**local_cluster_kwargs(2)) as cluster, Client(cluster) as client:
            with WorkerMemory(client) as memory:
                run = timed_rss([SYNTHLOOP, "run", "--data", str(parts), "--dask-address", cluster.scheduler_address,
                                 "--tracking-uri", f"sqlite:///{work / 'mlruns-cluster' / 'mlflow.db'}", *common],
                                env=env, cwd=work)
            results["cases"]["cluster"] = {"wall_s": round(run["wall_s"], 2), "returncode": run["returncode"],
                                           "driver_peak_rss_mb": round(run["peak_rss_mb"], 1),
                                           "worker_peak_rss_mb": [round(v, 1) for v in memory.peak.values()],
                                           **_summary(run)}
        if not args.skip_pandas:
            run = timed_rss([SYNTHLOOP, "run", "--data", str(single),
                             "--tracking-uri", f"sqlite:///{work / 'mlruns-pandas' / 'mlflow.db'}", *common],
                            env=env, cwd=work)
            results["cases"]["pandas"] = {"wall_s": round(run["wall_s"], 2), "returncode": run["returncode"],
                                          "driver_peak_rss_mb": round(run["peak_rss_mb"], 1), **_summary(run)}
    print(f"{args.rows} rows × {COLUMNS} features ({results['in_memory_mb']} MB in pandas), {results['files']} files")
    for name, case in results["cases"].items():
        workers = f", workers peak {case['worker_peak_rss_mb']} MB" if "worker_peak_rss_mb" in case else ""
        test = case.get("test_metrics", {}).get("accuracy")
        print(f"  {name:8s} wall {case['wall_s']:7.1f} s, driver peak {case['driver_peak_rss_mb']:7.1f} MB{workers}, "
              f"test accuracy {test if test is None else round(test, 4)}" + (f" — {case['error']}" if "error" in case else ""))
    save(f"cluster-{args.rows}" if args.rows != 10_000_000 else "cluster", results)


if __name__ == "__main__":
    main()
