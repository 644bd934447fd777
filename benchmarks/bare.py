"""The same work as `synthloop run --model xgboost --max-iterations 1`, as a bare script: no Prefect, no MLflow.

Load and check the table, infer the schema, split train / validation / test, fit the same xgboost design,
validate (metrics, baseline, diagnosis — which refits on half the rows), score the test split, save the
model with pickle. Prints one JSON line with the stage timings. Run from the project root::

    python benchmarks/bare.py --data table.parquet --target y [--threads N]
"""

from __future__ import annotations

import argparse
import json
import pickle
import tempfile
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    t = {"start": time.perf_counter()}

    from synthloop import data
    from synthloop.config import Config
    from synthloop.env import default_threads
    from synthloop.judge import diagnose, goal_metric, make_report
    from synthloop.models import baseline_metrics, compute_metrics, default_spec, fit_model, predict
    from synthloop.splits import encode_target, split_frame

    cfg = Config.load(None, {"data.source": args.data, "data.target": args.target, "model.family": "xgboost"})
    threads = args.threads or default_threads()
    t["imported"] = time.perf_counter()

    raw = data.load_table(cfg.data.source)
    data.check_frame(raw, args.target, source_name=args.data, task=None)
    schema, _ = data.infer_schema(raw, args.target)
    frame, _ = data.prepare_frame(raw, schema)
    train, val, sealed = split_frame(frame, schema, val_fraction=cfg.data.val_fraction,
                                     test_fraction=cfg.data.test_fraction, seed=args.seed, source_name=args.data)
    t["collected"] = time.perf_counter()

    m = cfg.model
    spec = default_spec("xgboost", n_estimators=m.n_estimators, learning_rate=m.learning_rate, max_depth=m.max_depth,
                        early_stopping_rounds=m.early_stopping_rounds, extra=m.params)
    X, y = train[schema.features].reset_index(drop=True), encode_target(train[schema.target], schema)
    X_val, y_val = val[schema.features], encode_target(val[schema.target], schema)
    fitted = fit_model(spec, schema, X, y, X_val=X_val, y_val=y_val, threads=threads, seed=args.seed)
    t["trained"] = time.perf_counter()

    k = len(schema.classes) if schema.classes else None
    vp, vpr = predict(fitted.pipeline, X_val, schema.task)
    metrics = compute_metrics(schema.task, y_val, vp, vpr, k)
    tp, tpr = predict(fitted.pipeline, X, schema.task)
    train_metrics = compute_metrics(schema.task, y, tp, tpr, k)
    base = baseline_metrics(schema.task, y, y_val, k)
    metric = goal_metric(cfg.goal, schema.task)
    import numpy as np

    diag = diagnose(spec, schema, X, y, np.ones(len(y), bool), X_val, y_val, metric=metric, val_metrics=metrics,
                    train_metrics=train_metrics, curves=fitted.curves, rounds=fitted.rounds,
                    best_round=fitted.best_round, n_estimators=spec.params.get("n_estimators"), val_pred=vp,
                    threads=threads, seed=args.seed)
    report = make_report(cfg.goal, schema.task, metrics, train_metrics, base, diag)
    t["validated"] = time.perf_counter()

    test = sealed.open()
    tp, tpr = predict(fitted.pipeline, test[schema.features], schema.task)
    test_metrics = compute_metrics(schema.task, encode_target(test[schema.target], schema), tp, tpr, k)
    with tempfile.TemporaryFile() as f:
        pickle.dump(fitted.pipeline, f)
    t["tested"] = time.perf_counter()

    names = list(t)
    stages = {b: round(t[b] - t[a], 4) for a, b in zip(names, names[1:])}
    print(json.dumps({"stages_s": stages, "total_s": round(t["tested"] - t["start"], 4),
                      "val": report.score, "test": test_metrics.get(metric), "metric": metric}))


if __name__ == "__main__":
    main()
