"""How `synthloop run` (fixed xgboost design, one iteration, Prefect server running) scales: rows 10k → 1M at
20 columns, and columns 10 → 200 at 100k rows — wall time and the process's peak RSS against the data's
in-memory size. The baseline RSS (the libraries, measured on a 1,000-row table) is reported too, so the
data's own share of the peak can be read off.

Prints the figures and writes ``benchmarks/results/scaling.json``. Run from the project root::

    python benchmarks/scaling.py [--rows 10000 100000 1000000] [--columns 10 50 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import in_memory_mb, machine, make_table, prefect_server, save  # noqa: E402
from memory import run_synthloop  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--columns", type=int, nargs="+", default=[10, 50, 200])
    p.add_argument("--base-columns", type=int, default=20)
    p.add_argument("--base-rows", type=int, default=100_000)
    p.add_argument("--threads", type=int, default=1, help="threads per fit (1: figures stay comparable on a busy machine)")
    args = p.parse_args()
    work = Path(tempfile.gettempdir()) / "synthloop-bench"
    results = {"benchmark": "synthloop run scaling (xgboost, 1 iteration, server)", "machine": machine(),
               "threads": args.threads, "cases": []}
    grid = [(1_000, args.base_columns)] + [(r, args.base_columns) for r in args.rows] + \
           [(args.base_rows, c) for c in args.columns if c != args.base_columns]
    with prefect_server(work / f"prefect-scaling-{int(time.time())}") as url:
        for rows, cols in grid:
            data = make_table(work / f"table_{rows}x{cols}.parquet", rows, cols)
            run = run_synthloop(data, work / f"scaling-{rows}x{cols}", url, args.threads)
            mb = in_memory_mb(rows, cols)
            case = {"rows": rows, "columns": cols, "data_mb": round(mb, 1), **run,
                    "rss_over_data": round(run["peak_rss_mb"] / mb, 2)}
            results["cases"].append(case)
            print(f"{rows:>9} × {cols:>3}: data {mb:8.1f} MB  wall {run['wall_s']:7.1f}s  peak RSS "
                  f"{run['peak_rss_mb']:7.1f} MB (×{case['rss_over_data']:.2f} of the data)", flush=True)
    base = results["cases"][0]["peak_rss_mb"]
    for case in results["cases"]:
        case["rss_above_baseline_over_data"] = round((case["peak_rss_mb"] - base) / case["data_mb"], 2)
    results["baseline_rss_mb"] = base
    save("scaling", results)


if __name__ == "__main__":
    main()
