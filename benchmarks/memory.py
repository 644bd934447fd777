"""Peak RSS of `synthloop run` (fixed xgboost design, one iteration, 2 threads) on a CSV of 100k and 1M rows × 20
columns, against the frame's in-memory size (pandas ``memory_usage(deep=True)`` of the loaded table).

The ratio is given twice: the whole peak over the frame, and the peak above the process's baseline (the same
run on a 1,000-row table: the libraries, Prefect and MLflow) over the frame. Prints the figures and writes
``benchmarks/results/memory.json``. Run from the project root::

    python benchmarks/memory.py [--rows 100000 1000000] [--threads 2] [--embedded]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SYNTHLOOP, machine, make_table, prefect_server, save, timed_rss  # noqa: E402


def run_synthloop(data: Path, work: Path, api_url: str | None, threads: int) -> dict:
    """One `synthloop run` with a fixed design (xgboost) and one iteration: wall time, its own peak RSS, its summary."""
    home = work / ("p" if api_url else "prefect-embedded")
    (work / "mlruns").mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    env = {"PREFECT_API_URL": api_url or "", "PREFECT_HOME": str(home),
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlruns' / 'mlflow.db'}",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300"}
    out = timed_rss([SYNTHLOOP, "run", "--data", str(data), "--target", "y", "--model", "xgboost",
                     "--max-iterations", "1", "--threads", str(threads), "--json"], env=env)
    if out["returncode"] != 0:
        raise RuntimeError(f"synthloop run failed: {out['stderr'][-2000:]}")
    summary = json.loads(out["stdout"].strip().splitlines()[-1])
    return {"wall_s": round(out["wall_s"], 3), "peak_rss_mb": round(out["peak_rss_mb"], 1),
            "val": summary["iterations"][0]["val_metrics"].get("accuracy"), "test": summary.get("test_metrics")}


def frame_mb(path: Path) -> float:
    """The loaded table's in-memory size, as `synthloop run` loads it."""
    from synthloop.data import load_table

    frame = load_table(str(path))
    return float(frame.memory_usage(deep=True).sum()) / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--columns", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--embedded", action="store_true", help="no Prefect server: each run starts its temporary one")
    p.add_argument("--save-as", default="memory", help="name of the results file (e.g. memory-before for an older commit)")
    args = p.parse_args()
    work = Path(tempfile.gettempdir()) / "synthloop-bench"
    results = {"benchmark": "synthloop run peak RSS vs the frame (xgboost, 1 iteration, CSV)", "machine": machine(),
               "threads": args.threads, "prefect": "embedded" if args.embedded else "server", "cases": []}

    def run(rows: int, url: str | None) -> dict:
        data = make_table(work / f"table_{rows}x{args.columns}.csv", rows, args.columns)
        return {"rows": rows, "columns": args.columns, "frame_mb": round(frame_mb(data), 1),
                **run_synthloop(data, work / f"memory-{rows}x{args.columns}-{int(time.time())}", url, args.threads)}

    def cases(url: str | None) -> None:
        base = run(1_000, url)
        results["baseline_rss_mb"] = base["peak_rss_mb"]
        print(f"baseline (1,000 rows): peak RSS {base['peak_rss_mb']:.0f} MB", flush=True)
        for rows in args.rows:
            case = run(rows, url)
            case["rss_over_frame"] = round(case["peak_rss_mb"] / case["frame_mb"], 2)
            case["rss_above_baseline_over_frame"] = round((case["peak_rss_mb"] - base["peak_rss_mb"]) / case["frame_mb"], 2)
            results["cases"].append(case)
            print(f"{rows:>9} × {args.columns}: frame {case['frame_mb']:7.1f} MB  peak RSS {case['peak_rss_mb']:7.1f} MB  "
                  f"×{case['rss_over_frame']:.2f} of the frame, ×{case['rss_above_baseline_over_frame']:.2f} above the "
                  f"baseline  (wall {case['wall_s']:.0f} s, validation accuracy {case['val']:.4f})", flush=True)

    if args.embedded:
        cases(None)
    else:
        with prefect_server(work / f"prefect-memory-{int(time.time())}") as url:
            cases(url)
    save(args.save_as, results)


if __name__ == "__main__":
    main()
