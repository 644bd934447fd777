"""Cost of a stage's cache key on a large training set: Prefect's INPUTS hashing against tasks/cache.py's digests.

Prints seconds per key for a TrainingSet-like input (a DataFrame plus label and origin arrays).
Run: python benchmarks/cache_key_cost.py [rows]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd


def main(rows: int = 200_000) -> None:
    from prefect.utilities.hashing import hash_objects

    from synthloop.tasks.cache import digest

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"f{i}" for i in range(20)])
    X["city"] = rng.choice(["a", "b", "c"], rows)
    y = rng.integers(0, 2, rows)
    origin = np.full(rows, "real", dtype=object)
    inputs = {"X": X, "y": y, "origin": origin, "iteration": 1}
    for name, fn in (("prefect INPUTS (hash_objects: JSON, then cloudpickle)", lambda: hash_objects(inputs)),
                     ("synthloop digest (hash_pandas_object / raw bytes)", lambda: digest(inputs))):
        t = time.perf_counter()
        fn()
        print(f"{rows:>9} rows x 21 columns  {name}: {time.perf_counter() - t:.3f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
