"""Peak RSS of `synthloop run` (fixed xgboost design, one iteration, 2 threads) on a CSV of 100k and 1M rows × 20
columns, against the frame's in-memory size (pandas ``memory_usage(deep=True)`` of the loaded table).

The ratio is given twice: the whole peak over the frame, and the peak above the process's baseline (the same
run on a 1,000-row table: the libraries, Prefect and MLflow) over the frame. Prints the figures and writes
``benchmarks/results/memory.json``. Run from the project root::

    python benchmarks/memory.py [--rows 100000 1000000] [--threads 2] [--embedded]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, make_table, prefect_server, save  # noqa: E402
from overhead import run_synthloop  # noqa: E402


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
