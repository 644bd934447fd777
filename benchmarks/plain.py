"""What a user would write instead: a plain pandas + xgboost script, and none of this project's code.

Read the CSV (or Parquet), split 60/20/20, one early-stopped xgboost fit, score the test split, save the model.
Prints one JSON line: seconds per step, the test score and the frame's in-memory size. Run from the project root::

    python benchmarks/plain.py --data table.csv --target y [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    t = [time.perf_counter()]

    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from sklearn.model_selection import train_test_split

    t.append(time.perf_counter())
    df = pd.read_parquet(args.data) if args.data.endswith(".parquet") else pd.read_csv(args.data)
    frame_mb = df.memory_usage(deep=True).sum() / 2**20
    y = df.pop(args.target)
    classes, y = np.unique(y, return_inverse=True)
    t.append(time.perf_counter())
    X_rest, X_test, y_rest, y_test = train_test_split(df, y, test_size=0.2, random_state=0, stratify=y)
    X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=0.25, random_state=0, stratify=y_rest)
    t.append(time.perf_counter())
    model = xgb.XGBClassifier(n_estimators=200, learning_rate=0.1, max_depth=6, early_stopping_rounds=20,
                              tree_method="hist", n_jobs=args.threads, random_state=0)
    model.fit(X_train, y_train, eval_set=[(X_val, y_val)], verbose=False)
    t.append(time.perf_counter())
    accuracy = float((model.predict(X_test) == y_test).mean())
    with tempfile.TemporaryDirectory() as tmp:
        model.save_model(Path(tmp) / "model.ubj")
    t.append(time.perf_counter())
    steps = ("import", "read", "split", "fit", "score_save")
    print(json.dumps({"seconds": {s: round(b - a, 3) for s, a, b in zip(steps, t, t[1:])},
                      "test_accuracy": accuracy, "frame_mb": round(frame_mb, 1), "best_iteration": model.best_iteration}))


if __name__ == "__main__":
    main()
