"""Quality on real data: default `synthloop run` against a plain pandas + xgboost script and FLAML, same splits.

For every data set and seed the train / validation / test rows are the ones synthloop's own split gives (the same
seed, the same 60/20/20 shares); each contender fits on train, may look at validation, and is scored once on test:

* **bare** — a plain pandas + xgboost script an expert would write: read the file, text columns as pandas
  categories, one xgboost model (1,000 rounds at learning rate 0.05, early stopping on validation). It does not
  call synthloop's code (only the row ids of the split come from it).
* **flaml** — FLAML's AutoML with a 60 s budget, tuning on the validation rows (`X_val`, `y_val`).
  FLAML is a benchmark-only dependency: `pip install flaml lightgbm` (never a runtime one).
* **synthloop** — `synthloop run --data FILE --target COLUMN --seed S --json` in a fresh process, with its
  defaults (no goal threshold), in a temporary MLflow store.

Metrics: accuracy (classification) and RMSE (regression) on test; a win / tie / loss per seed against each
other contender (a tie is an equal accuracy, or RMSEs within 0.1 %). Results are cached per (data set, seed,
contender) in benchmarks/results/quality-runs.json, so an interrupted run resumes; `--fresh` starts over.

Usage: python benchmarks/quality.py [--seeds 0,1,2] [--datasets wage,taxi,...] [--only bare,flaml,synthloop]
       python benchmarks/quality.py --realdata DIR   # other data sets (a datasets.json beside the CSVs, as
                                                     # benchmarks/holdout_data.py writes); results in
                                                     # benchmarks/results/quality-runs-<DIR name>.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, SYNTHLOOP, machine  # noqa: E402

REALDATA = ROOT.parent / "shared" / "data" / "realdata"
RUNS = RESULTS / "quality-runs.json"
SPLITS = RESULTS / "quality-splits.json"  # the row ids per data set and seed, for contenders in other venvs
FLAML_SECONDS = 60
THREADS = 2


def datasets() -> list[dict]:
    listed = json.loads((REALDATA / "datasets.json").read_text())
    return [{"name": d["file"].removesuffix(".csv"), "path": str(REALDATA / d["file"]), "target": d["target"],
             "task": "regression" if d["task"] == "regression" else "classification", "rows": d["rows"]}
            for d in listed]


def split_ids(ds: dict, seed: int) -> dict[str, list]:
    """The row ids (positions in the file) of synthloop's train, validation and test split for this seed."""
    from synthloop import data
    from synthloop.splits import split_frame

    raw = data.load_table(ds["path"])
    schema, _ = data.infer_schema(raw, ds["target"])
    frame, _ = data.prepare_frame(raw, schema)
    train, val, sealed = split_frame(frame, schema, val_fraction=0.2, test_fraction=0.2, seed=seed)
    return {"train": train.index.tolist(), "val": val.index.tolist(), "test": sealed.open().index.tolist()}


def plain_frames(ds: dict, ids: dict[str, list]):
    """What a plain script does with the file: pandas reads it, text columns become categories."""
    import pandas as pd

    df = pd.read_csv(ds["path"])
    y = df[ds["target"]]
    X = df.drop(columns=[ds["target"]])
    for col in X.columns:
        if X[col].dtype == object or str(X[col].dtype).startswith(("string", "str")):
            X[col] = X[col].astype("category")
    if ds["task"] == "classification":
        y = y.astype("category").cat.codes
    return {part: (X.loc[rows], y.loc[rows]) for part, rows in ids.items()}


def score(task: str, y, pred) -> float:
    import numpy as np

    y, pred = np.asarray(y), np.asarray(pred)
    if task == "classification":
        return float((y == pred).mean())
    return float(np.sqrt(np.mean((y.astype(float) - pred.astype(float)) ** 2)))


def run_bare(ds: dict, ids: dict, seed: int) -> dict:
    import xgboost as xgb

    start = time.perf_counter()
    parts = plain_frames(ds, ids)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = parts["train"], parts["val"], parts["test"]
    cls = xgb.XGBClassifier if ds["task"] == "classification" else xgb.XGBRegressor
    model = cls(n_estimators=1000, learning_rate=0.05, early_stopping_rounds=50, enable_categorical=True,
                tree_method="hist", n_jobs=THREADS, random_state=seed)
    model.fit(Xtr, ytr, eval_set=[(Xva, yva)], verbose=False)
    return {"test": score(ds["task"], yte, model.predict(Xte)), "val_looks": 1,
            "seconds": round(time.perf_counter() - start, 1), "model": f"xgboost, {model.best_iteration + 1} rounds"}


def run_flaml(ds: dict, ids: dict, seed: int) -> dict:
    from flaml import AutoML

    start = time.perf_counter()
    parts = plain_frames(ds, ids)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = parts["train"], parts["val"], parts["test"]
    automl = AutoML()
    automl.fit(Xtr, ytr, X_val=Xva, y_val=yva, task=ds["task"], time_budget=FLAML_SECONDS,
               metric="accuracy" if ds["task"] == "classification" else "rmse", n_jobs=THREADS, seed=seed,
               verbose=0)
    return {"test": score(ds["task"], yte, automl.predict(Xte)), "val_looks": len(automl.config_history),
            "seconds": round(time.perf_counter() - start, 1), "model": automl.best_estimator}


def run_synthloop(ds: dict, ids: dict, seed: int) -> dict:
    store = tempfile.mkdtemp(prefix="synthloop-quality-")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db"}
    start = time.perf_counter()
    out = subprocess.run([SYNTHLOOP, "run", "--data", ds["path"], "--target", ds["target"], "--seed", str(seed),
                          "--json"], capture_output=True, text=True, env=env, cwd=store)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"synthloop run failed on {ds['name']} seed {seed}: {out.stderr[-2000:]}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    metric = "accuracy" if ds["task"] == "classification" else "rmse"
    return {"test": summary["test_metrics"][metric], "val_looks": summary["looks_at_validation"],
            "seconds": round(seconds, 1), "model": summary["best_model"][:200],
            "iterations": len(summary["iterations"]), "stopped_by": summary.get("stopped_by"),
            "decisions": [it["decision"] for it in summary["iterations"]],
            "flow_seconds": summary["seconds"]}


CONTENDERS = {"bare": run_bare, "flaml": run_flaml, "synthloop": run_synthloop}


def better(task: str, a: float, b: float) -> int:
    """1 if a beats b, 0 for a tie, -1 if b beats a."""
    if task == "classification":
        return (a > b) - (a < b)
    if abs(a - b) <= 0.001 * max(abs(b), 1e-12):
        return 0
    return 1 if a < b else -1


AUTOGLUON = RESULTS / "quality-autogluon.json"  # written by benchmarks/autogluon_quality.py in its own venv


def table(runs: dict, names: list[str], seeds: list[int]) -> str:
    import numpy as np

    ag = json.loads(AUTOGLUON.read_text())["runs"] if AUTOGLUON.exists() else {}
    lines = ["| data set | task (metric) | bare | FLAML-60s | synthloop | synthloop vs bare (W/T/L) | "
             "synthloop vs FLAML (W/T/L) | AutoGluon-60s (synthloop vs it, W/T/L) | looks at validation: bare / "
             "FLAML / synthloop | wall s: bare / FLAML / synthloop | synthloop iterations, stopped by |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for ds in datasets():
        if ds["name"] not in names:
            continue
        got = {c: [runs.get(f"{ds['name']}|{s}|{c}") for s in seeds] for c in CONTENDERS}
        if any(r is None for rs in got.values() for r in rs):
            continue
        mean = {c: float(np.mean([r["test"] for r in rs])) for c, rs in got.items()}
        wtl = {}
        for other in ("bare", "flaml"):
            res = [better(ds["task"], got["synthloop"][i]["test"], got[other][i]["test"]) for i in range(len(seeds))]
            wtl[other] = f"{res.count(1)}/{res.count(0)}/{res.count(-1)}"
        metric = "accuracy" if ds["task"] == "classification" else "RMSE"
        looks = " / ".join(f"{np.mean([r['val_looks'] for r in got[c]]):.0f}" for c in CONTENDERS)
        wall = " / ".join(f"{np.mean([r['seconds'] for r in got[c]]):.0f}" for c in CONTENDERS)
        its = ", ".join(f"{r['iterations']} {r['stopped_by']}" for r in got["synthloop"])
        fmt = "{:.4f}" if ds["task"] == "classification" else "{:.4g}"
        ag_runs = [ag.get(f"{ds['name']}|{s}") for s in seeds]
        if all(ag_runs):
            res = [better(ds["task"], got["synthloop"][i]["test"], ag_runs[i]["test"]) for i in range(len(seeds))]
            ag_cell = (f"{fmt.format(np.mean([r['test'] for r in ag_runs]))} "
                       f"({res.count(1)}/{res.count(0)}/{res.count(-1)})")
        else:
            ag_cell = "—"
        lines.append(f"| {ds['name']} | {ds['task']} ({metric}) | {fmt.format(mean['bare'])} | "
                     f"{fmt.format(mean['flaml'])} | **{fmt.format(mean['synthloop'])}** | {wtl['bare']} | "
                     f"{wtl['flaml']} | {ag_cell} | {looks} | {wall} | {its} |")
    return "\n".join(lines)


def main() -> int:
    global REALDATA, RUNS
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--realdata", type=Path, default=REALDATA)
    known, _ = pre.parse_known_args()
    if known.realdata.resolve() != REALDATA.resolve():
        REALDATA, RUNS = known.realdata.resolve(), RESULTS / f"quality-runs-{known.realdata.resolve().name}.json"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--realdata", type=Path, default=REALDATA,
                        help="folder of CSVs with a datasets.json (default: the shared real data sets)")
    parser.add_argument("--datasets", default=",".join(d["name"] for d in datasets()))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="contenders to run (others come from the cache)")
    parser.add_argument("--fresh", action="store_true", help="forget cached results")
    parser.add_argument("--export-splits", action="store_true",
                        help=f"write every data set's split row ids to {SPLITS.relative_to(ROOT)} and stop")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    names, seeds = args.datasets.split(","), [int(s) for s in args.seeds.split(",")]
    if args.export_splits:
        out = {f"{ds['name']}|{seed}": {**split_ids(ds, seed), "path": ds["path"], "target": ds["target"],
                                        "task": ds["task"]}
               for ds in datasets() if ds["name"] in names for seed in seeds}
        RESULTS.mkdir(parents=True, exist_ok=True)
        SPLITS.write_text(json.dumps(out))
        print(f"wrote {SPLITS.relative_to(ROOT)}")
        return 0
    runs = {} if args.fresh or not RUNS.exists() else json.loads(RUNS.read_text())["runs"]
    info = machine()
    for ds in datasets():
        if ds["name"] not in names:
            continue
        for seed in seeds:
            ids = None
            for name in args.only.split(","):
                key = f"{ds['name']}|{seed}|{name}"
                if key in runs:
                    continue
                ids = ids or split_ids(ds, seed)
                runs[key] = CONTENDERS[name](ds, ids, seed)
                print(f"{ds['name']:<12} seed {seed} {name:<9} test {runs[key]['test']:.4f}  "
                      f"{runs[key]['seconds']:6.1f}s  {runs[key]['model']}", flush=True)
                RESULTS.mkdir(parents=True, exist_ok=True)
                RUNS.write_text(json.dumps({"machine": info, "runs": runs}, indent=1, default=str))
    print()
    print(table(runs, names, seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
