"""Quality on real data, AutoGluon contender: AutoGluon-Tabular on the same splits as benchmarks/quality.py.

For every "dataset|seed" key in benchmarks/results/quality-splits.json (written by
`python benchmarks/quality.py --export-splits`: the row ids of synthloop's own train / validation / test split,
positions in the CSV as pandas reads it; rows whose target is missing are in none of them) this fits

    TabularPredictor(label=target, problem_type=binary|multiclass|regression,
                     eval_metric="accuracy" | "root_mean_squared_error", path=<temp dir>, verbosity=0)
    .fit(train_rows, tuning_data=validation_rows, presets="medium_quality", time_limit=60,
         excluded_model_types=["NN_TORCH", "FASTAI"], num_cpus=2)

so AutoGluon, like bare / FLAML / synthloop in quality.py, fits on train, may look at validation (its
tuning_data: early stopping, model selection and the weighted ensemble), and is scored once on test: accuracy
for classification, RMSE for regression. The CSV is read with plain `pandas.read_csv` and handed over as is
(AutoGluon does its own feature typing); nothing is dropped beyond the rows the split ids leave out. The two
neural-network models (NN_TORCH, FASTAI) are excluded because they need torch, which this venv does not have.

Recorded per key: test score, wall seconds (fit + predict on test), AutoGluon's best model
(`predictor.model_best`) and how many models it trained (`len(predictor.model_names())`). Results are cached in
benchmarks/results/quality-autogluon.json as {"runs": {"dataset|seed": {...}}, "machine": {...}}; keys already
there are skipped, so an interrupted run resumes (delete the file, or a key from it, to redo).

AutoGluon is a benchmark-only dependency: never a dependency of synthloop. It lives in its own virtual
environment outside the repo (it pins its own pandas), made with:

    python3 -m venv /work/agvenv
    /work/agvenv/bin/pip install -q --upgrade pip
    /work/agvenv/bin/pip install -q "autogluon.tabular[lightgbm,catboost,xgboost]"

(AutoGluon 1.6.3 with pandas 2.3.3; these extras pull no torch, about 1.1 GB in the venv.)

Usage: /work/agvenv/bin/python benchmarks/autogluon_quality.py [--only-keys wage|0,taxi|1] [--num-cpus 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine  # noqa: E402  (standard library only: it loads in AutoGluon's venv too)

RESULTS = ROOT / "benchmarks" / "results"
AG_LIBRARIES = ("autogluon.tabular", "autogluon.core", "pandas", "numpy", "scikit-learn", "lightgbm", "catboost",
                "xgboost-cpu", "xgboost")
SPLITS = RESULTS / "quality-splits.json"
OUT = RESULTS / "quality-autogluon.json"
TIME_LIMIT = 60
THREADS = 2
PRESETS = "medium_quality"
EXCLUDED = ["NN_TORCH", "FASTAI"]


class _NoTorchNotice(logging.Filter):
    """Drop AutoGluon's 'Failed to import torch' notice (its GPU count falls back to 0, as intended here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to import torch" not in record.getMessage()


logging.getLogger("autogluon.common.utils.resource_utils").addFilter(_NoTorchNotice())


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def score(task: str, y, pred) -> float:
    import numpy as np

    y, pred = np.asarray(y), np.asarray(pred)
    if task == "classification":
        return float((y == pred).mean())
    return float(np.sqrt(np.mean((y.astype(float) - pred.astype(float)) ** 2)))


def run_key(split: dict, num_cpus: int) -> dict:
    import pandas as pd
    from autogluon.tabular import TabularPredictor

    df = pd.read_csv(split["path"])
    target, task = split["target"], split["task"]
    train, val, test = (df.iloc[split[part]] for part in ("train", "val", "test"))
    if task == "classification":
        problem_type = "binary" if df[target].dropna().nunique() == 2 else "multiclass"
        metric = "accuracy"
    else:
        problem_type, metric = "regression", "root_mean_squared_error"
    path = tempfile.mkdtemp(prefix="autogluon-quality-")
    try:
        load_start = load_average()
        start = time.perf_counter()
        predictor = TabularPredictor(label=target, problem_type=problem_type, eval_metric=metric, path=path,
                                     verbosity=0)
        predictor.fit(train, tuning_data=val, presets=PRESETS, time_limit=TIME_LIMIT,
                      excluded_model_types=EXCLUDED, num_cpus=num_cpus)
        pred = predictor.predict(test.drop(columns=[target]))
        seconds = time.perf_counter() - start
        return {"test": score(task, test[target], pred), "seconds": round(seconds, 1),
                "model": predictor.model_best, "models_trained": len(predictor.model_names()),
                "problem_type": problem_type, "rows": {p: len(split[p]) for p in ("train", "val", "test")},
                "num_cpus": num_cpus, "load_average_at_start": load_start}
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only-keys", default="", help="comma-separated dataset|seed keys (default: all)")
    parser.add_argument("--num-cpus", type=int, default=THREADS, help=f"AutoGluon's num_cpus (default {THREADS})")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.num_cpus))
    splits = json.loads(SPLITS.read_text())
    keys = [k for k in args.only_keys.split(",") if k] or list(splits)
    unknown = [k for k in keys if k not in splits]
    if unknown:
        parser.error(f"not in {SPLITS.relative_to(ROOT)}: {', '.join(unknown)}")
    results = json.loads(OUT.read_text()) if OUT.exists() else {"runs": {}}
    info = machine(AG_LIBRARIES)
    for key in keys:
        if key in results["runs"]:
            print(f"{key}: cached, test {results['runs'][key]['test']:.4g}")
            continue
        res = run_key(splits[key], args.num_cpus)
        results["runs"][key] = res
        results["machine"] = {**info, "load_average_at_end": load_average()}
        RESULTS.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=2) + "\n")
        print(f"{key}: test {res['test']:.4g} in {res['seconds']} s, best {res['model']} "
              f"of {res['models_trained']} models", flush=True)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
