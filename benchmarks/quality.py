"""Quality against a plain expert script, on datasets that ship with scikit-learn and one simulator.

For each dataset the same split (same seed) is used twice:
* the loop — `develop` with an out-of-reach goal so it keeps looking for `--max-iterations` iterations, and its
  best-on-validation model tested once;
* the plain script — one xgboost model tuned on validation over a small grid (what an expert would write in
  an afternoon), its best-on-validation setting tested once.
Test metrics are printed side by side and saved to benchmarks/results/quality.json.

Each dataset is run with several seeds (each seed a different split) and the means are compared: test splits of
100-400 rows make single-seed differences of a few rows mostly noise.

Usage: python benchmarks/quality.py [--max-iterations 5] [--seeds 0,1,2] [--datasets sklearn:wine,...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

DATASETS = [
    "sklearn:breast_cancer",
    "sklearn:wine",
    "sklearn:digits",
    "sklearn:diabetes",
    "simulate:classification?n_rows=3000&n_features=20&n_informative=8&class_sep=0.8&label_noise=0.05",
]
GRID = {"learning_rate": [0.05, 0.1, 0.3], "max_depth": [3, 6], "n_estimators": [100, 300]}


def plain_script(cfg, threads: int) -> dict:
    """An xgboost model tuned on validation over GRID, tested once on the same sealed split as the loop."""
    import numpy as np

    from synthloop import data
    from synthloop.judge import goal_metric, oriented
    from synthloop.models import ModelSpec, compute_metrics, fit_model, predict
    from synthloop.splits import encode_target, split_frame

    raw = data.load_table(cfg.data.source)
    schema, _ = data.infer_schema(raw, cfg.data.target)
    frame, _ = data.prepare_frame(raw, schema)
    train, val, sealed = split_frame(frame, schema, val_fraction=cfg.data.val_fraction,
                                     test_fraction=cfg.data.test_fraction, seed=cfg.seed)
    metric = goal_metric(cfg.goal, schema.task)
    n_classes = len(schema.classes) if schema.classes else None
    y_tr, y_val = encode_target(train[schema.target], schema), encode_target(val[schema.target], schema)
    best = None
    for lr, depth, n in itertools.product(*GRID.values()):
        spec = ModelSpec("xgboost", {"learning_rate": lr, "max_depth": depth, "n_estimators": n,
                                     "early_stopping_rounds": None})
        fitted = fit_model(spec, schema, train[schema.features], y_tr, threads=threads, seed=cfg.seed)
        pred, proba = predict(fitted.pipeline, val[schema.features], schema.task)
        score = compute_metrics(schema.task, y_val, pred, proba, n_classes)[metric]
        if best is None or oriented(metric, score) > oriented(metric, best[0]):
            best = (score, spec, fitted.pipeline)
    test = sealed.open()
    pred, proba = predict(best[2], test[schema.features], schema.task)
    test_metrics = compute_metrics(schema.task, encode_target(test[schema.target], schema), pred, proba, n_classes)
    return {"val": best[0], "test": test_metrics[metric], "setting": best[1].describe(),
            "trials": int(np.prod([len(v) for v in GRID.values()]))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-iterations", type=int, default=5)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "quality.json"))
    args = parser.parse_args()

    from synthloop.env import apply_defaults, default_threads

    apply_defaults()
    import tempfile

    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp()}/mlflow.db")
    from flows.develop import develop
    from synthloop.config import Config

    threads = default_threads()
    rows = []
    for source, seed in itertools.product(args.datasets.split(","), [int(x) for x in args.seeds.split(",")]):
        regression = source in ("sklearn:diabetes",) or source.startswith("simulate:regression")
        goal = {"goal.metric": "r2", "goal.threshold": 0.99} if regression else \
            {"goal.metric": "accuracy", "goal.threshold": 0.999}
        cfg = Config.load(None, {"data.source": source, "data.target": "target", "loop.max_iterations": args.max_iterations,
                                 "seed": seed,
                                 "tracking.experiment": "quality-benchmark", "tracking.registered_model": None, **goal})
        started = time.perf_counter()
        summary = develop(cfg)
        loop_seconds = time.perf_counter() - started
        metric = summary["goal_metric"]
        started = time.perf_counter()
        plain = plain_script(cfg, threads)
        plain_seconds = time.perf_counter() - started
        best = summary["iterations"][summary["best_iteration"] - 1]
        row = {"dataset": source.split("?")[0], "seed": seed, "metric": metric,
               "loop_test": summary["test_metrics"][metric], "plain_test": plain["test"],
               "loop_val": best["val_metrics"][metric], "plain_val": plain["val"],
               "loop_model": summary["best_model"], "plain_model": plain["setting"],
               "loop_iterations": len(summary["iterations"]), "loop_val_looks": summary["looks_at_validation"],
               "plain_val_looks": plain["trials"], "loop_seconds": round(loop_seconds, 1),
               "plain_seconds": round(plain_seconds, 1),
               "decisions": [it["decision"] for it in summary["iterations"]]}
        rows.append(row)
        print(f"{row['dataset']:<24} seed {seed} {metric:<9} loop test {row['loop_test']:.4f} (val {row['loop_val']:.4f}, "
              f"{row['loop_iterations']} it) | plain test {row['plain_test']:.4f} (val {row['plain_val']:.4f}, "
              f"{plain['trials']} trials)", flush=True)

    import pandas as pd

    table = pd.DataFrame(rows)
    print()
    print("| dataset | metric | seeds | loop test (mean) | plain test (mean) | loop − plain | loop wins/ties/losses | "
          "loop val − test gap | plain val − test gap |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, metric), g in table.groupby(["dataset", "metric"], sort=False):
        sign = -1 if metric in ("rmse", "mae", "log_loss") else 1
        diff = sign * (g["loop_test"] - g["plain_test"])
        print(f"| {name} | {metric} | {len(g)} | {g['loop_test'].mean():.4f} | {g['plain_test'].mean():.4f} | "
              f"{diff.mean():+.4f} | {(diff > 1e-9).sum()}/{(diff.abs() <= 1e-9).sum()}/{(diff < -1e-9).sum()} | "
              f"{sign * (g['loop_val'] - g['loop_test']).mean():+.4f} | {sign * (g['plain_val'] - g['plain_test']).mean():+.4f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                                           "platform": platform.platform()},
                               "max_iterations": args.max_iterations, "seeds": args.seeds, "rows": rows}, indent=2))
    print(f"\nsaved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
