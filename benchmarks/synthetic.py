"""Gaussian copula speed and memory on 100k rows x 20 numeric columns, one core.

Prints fit and sample throughput (rows/s) and peak memory, and writes the figures to
``benchmarks/results/synthetic.json``. Run from the project root::

    python benchmarks/synthetic.py [--rows 100000] [--columns 20] [--repeats 3]
"""

from __future__ import annotations

import os

# One core: thread pools read these when NumPy / SciPy are first imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402

from synthloop.synth import GaussianCopula, simulate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "synthetic.json"
TARGET_SECONDS = 2.0


def _time_once(X: pd.DataFrame, y: pd.Series | None, kinds: dict[str, str], task: str) -> tuple[float, float]:
    start = time.perf_counter()
    gen = GaussianCopula(kinds, random_state=0).fit(X, y, task=task)
    fitted = time.perf_counter()
    gen.sample(len(X))
    return fitted - start, time.perf_counter() - fitted


def _peak_traced_mb(X: pd.DataFrame, y: pd.Series | None, kinds: dict[str, str], task: str) -> float:
    tracemalloc.start()
    try:
        GaussianCopula(kinds, random_state=0).fit(X, y, task=task).sample(len(X))
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def run(n_rows: int, n_columns: int, repeats: int) -> dict:
    X, y_class = simulate("classification", n_rows, n_columns, random_state=0)
    _, y_reg = simulate("regression", n_rows, n_columns, random_state=0)
    kinds = {c: "numeric" for c in X.columns}
    input_mb = X.memory_usage(deep=True).sum() / 2**20
    scenarios = {
        "classification": (y_class, "classification"),
        "regression": (y_reg, "regression"),
        "features_only": (None, "classification"),
    }
    figures = {}
    for name, (y, task) in scenarios.items():
        _time_once(X.iloc[:1000], None if y is None else y.iloc[:1000], kinds, task)  # warm-up
        times = [_time_once(X, y, kinds, task) for _ in range(repeats)]
        fit_s = statistics.median(t[0] for t in times)
        sample_s = statistics.median(t[1] for t in times)
        figures[name] = {
            "fit_seconds": round(fit_s, 4),
            "sample_seconds": round(sample_s, 4),
            "total_seconds": round(fit_s + sample_s, 4),
            "fit_rows_per_s": round(n_rows / fit_s),
            "sample_rows_per_s": round(n_rows / sample_s),
            "peak_traced_mb": round(_peak_traced_mb(X, y, kinds, task), 1),
            "under_target": fit_s + sample_s < TARGET_SECONDS,
        }
    max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {
        "benchmark": "GaussianCopula fit + sample, numeric columns, one core",
        "rows": n_rows,
        "columns": n_columns,
        "repeats": repeats,
        "statistic": "median",
        "target_total_seconds": TARGET_SECONDS,
        "input_mb": round(float(input_mb), 1),
        "scenarios": figures,
        "process_max_rss_mb": round(max_rss_kb / 1024, 1),
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit_learn": sklearn.__version__,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "threads": os.environ["OMP_NUM_THREADS"],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    result = run(args.rows, args.columns, args.repeats)
    print(f"GaussianCopula, {args.rows:,} rows x {args.columns} numeric columns, one core "
          f"(median of {args.repeats}); input {result['input_mb']} MB")
    for name, f in result["scenarios"].items():
        print(f"  {name:15s} fit {f['fit_seconds']:.3f} s ({f['fit_rows_per_s']:,} rows/s)  "
              f"sample {f['sample_seconds']:.3f} s ({f['sample_rows_per_s']:,} rows/s)  "
              f"total {f['total_seconds']:.3f} s  peak traced {f['peak_traced_mb']} MB")
    print(f"  process max RSS {result['process_max_rss_mb']} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
