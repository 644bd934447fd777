"""The cost of going back: an iteration that goes back only to training, against the first iteration and
against the same train + validate work called without orchestration or tracking.

The config is chosen so the loop's second iteration is a train-stage move (train longer: a short xgboost
whose validation loss is still falling). Iteration times are the MLflow child runs' start-to-end times
(train, validate, the iteration's logging). Prints the figures and writes ``benchmarks/results/loop.json``.
Run from the project root::

    python benchmarks/loop.py [--rows 100000] [--columns 20]
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
    from _common import machine, make_table, prefect_server, save

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--columns", type=int, default=20)
    args = p.parse_args()
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="synthloop-bench-loop-"))
    data = make_table(Path(tempfile.gettempdir()) / "synthloop-bench" / f"table_{args.rows}x{args.columns}.parquet",
                      args.rows, args.columns)
    with prefect_server(work / "prefect") as url:
        os.environ["PREFECT_API_URL"] = url
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlruns' / 'mlflow.db'}"
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        results = _measure(data, args, info)
    save("loop", results)


def _measure(data: Path, args, info) -> dict:
    from mlflow import MlflowClient

    import numpy as np

    from synthloop.flows.develop import develop
    from synthloop import design
    from synthloop.config import Config
    from synthloop.env import apply_defaults, default_threads
    from synthloop.models import default_spec
    from synthloop.splits import encode_target
    from synthloop.tasks.collect import collect_data
    from synthloop.tasks.train import train_model
    from synthloop.tasks.validate import validate_model

    apply_defaults()
    cfg = Config.load(None, {"data.source": str(data), "data.target": "y", "model.family": "xgboost",
                             "model.n_estimators": 25, "model.learning_rate": 0.05, "goal.metric": "accuracy",
                             "goal.threshold": 0.999, "loop.max_iterations": 3, "threads": 1, "tracking.registered_model": None})
    start = time.perf_counter()
    summary = develop(cfg)
    flow_s = time.perf_counter() - start
    client = MlflowClient()
    children = client.search_runs([summary["mlflow_experiment_id"]],
                                  f"tags.`mlflow.parentRunId` = '{summary['mlflow_run_id']}' "
                                  "and tags.`synthloop.iteration` != ''")
    its = {}
    for r in children:
        if r.data.tags.get("synthloop.iteration", "").isdigit() and "synthloop.trial" not in r.data.tags:
            its[int(r.data.tags["synthloop.iteration"])] = (r.info.end_time - r.info.start_time) / 1000
    action = summary["iterations"][0]["decision"]
    print(f"iteration 1: {its.get(1, float('nan')):.2f}s → {action}; iteration 2: {its.get(2, float('nan')):.2f}s",
          flush=True)

    # the same train + validate work of iteration 2, called directly (no Prefect, no MLflow)
    threads, seed = cfg.threads or default_threads(), cfg.seed
    collected, _ = collect_data.fn(cfg.data, seed)
    schema = collected.schema
    X_val, y_val = collected.val[schema.features], encode_target(collected.val[schema.target], schema)
    spec = default_spec("xgboost", n_estimators=cfg.model.n_estimators, learning_rate=cfg.model.learning_rate,
                        max_depth=cfg.model.max_depth, early_stopping_rounds=cfg.model.early_stopping_rounds)
    moves = {"train_longer": design.train_longer, "regularize": design.regularize}
    spec2 = moves[action](spec) if action in moves else spec

    from synthloop.loop import LoopState

    state = LoopState(labelled=collected.train, target=schema.target,
                      origin=np.full(len(collected.train), "real", dtype=object), pool=None, spec=spec)
    ts = state.training_set(schema)
    # As the flow calls them: iteration 2 trains on the same labelled rows, so it reuses iteration 1's label audit.
    first = validate_model.fn(train_model.fn(ts, spec, schema, X_val, y_val, 1, threads, seed), ts, schema, X_val,
                              y_val, cfg.goal, 1, threads, seed, audit=cfg.annotation)
    audit = first.diagnosis.get("label_audit")
    bare = []
    for _ in range(2):
        t0 = time.perf_counter()
        trained = train_model.fn(ts, spec2, schema, X_val, y_val, 2, threads, seed)
        validate_model.fn(trained, ts, schema, X_val, y_val, cfg.goal, 2, threads, seed, audit=cfg.annotation,
                          previous_audit=audit)
        bare.append(time.perf_counter() - t0)
    work = min(bare)
    ratio = its.get(2, float("nan")) / work
    print(f"train + validate alone: {work:.2f}s → go-back iteration / work = ×{ratio:.3f}", flush=True)
    return {"benchmark": "go-back-to-train iteration vs first iteration vs the work alone", "rows": args.rows,
            "columns": args.columns, "decision_after_iteration_1": action, "stage": summary["iterations"][0]["stage"],
            "iteration_s": its, "train_validate_alone_s": round(work, 3), "ratio_goback_to_work": round(ratio, 3),
            "ratio_goback_to_first": round(its.get(2, float("nan")) / its.get(1, float("nan")), 3),
            "flow_wall_s": round(flow_s, 2), "machine": info}


if __name__ == "__main__":
    main()
