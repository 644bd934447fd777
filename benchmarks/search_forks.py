"""The design search of a default run, and the generators' cross-validation: one job at a time in one process
against two at a time in forks.

For each real data set: synthloop's own split (seed 0), the first iteration's design candidates as
`synthloop run` plans them (24), K-fold CV on train with one thread per fit, run with `slots=1` (one trial after
another, as before) and `slots=2` (two at a time in forks of the process, what a small search now does on 2
cores), alternating, `--repeats` times each. The CV scores must come out the same. Prints the wall seconds, the
cores kept busy and the speed-up, and writes ``benchmarks/results/search-forks.json``. Run from the project
root::

    python benchmarks/search_forks.py [--sets hmda,mlc_churn] [--repeats 2]
    python benchmarks/search_forks.py --what generators [--realdata DIR] [--sets ...]

``--what generators`` times `select_generator` (the loop's `synthetic.generator: auto`: 3 folds x copula, smote,
cart, each fitted and sampled, a small xgboost on real, synthetic and both) with `slots=1` and `slots=2` on each
set's train split, and checks the evidence comes out the same (``benchmarks/results/generator-forks.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "realdata"


def main() -> None:
    from _common import machine, save

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--realdata", type=Path, default=REALDATA)
    p.add_argument("--sets", default="mlc_churn,attrition,hmda,taxi,hpc_data,wage,txhousing")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--what", choices=("search", "generators"), default="search")
    args = p.parse_args()
    info = machine()
    meta = {d["file"].rsplit(".", 1)[0]: d for d in json.loads((args.realdata / "datasets.json").read_text())}
    if args.what == "generators":
        rows = [_measure_generators(args.realdata / meta[n]["file"], meta[n]["target"], n, args.repeats)
                for n in args.sets.split(",")]
        print("\n| data set | train rows × columns | one at a time | two at a time in forks | speed-up | same choice "
              "and scores |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['set']} | {r['rows']:,} × {r['columns']} | {r['one_s']:.1f} s | {r['two_s']:.1f} s | "
                  f"×{r['one_s'] / r['two_s']:.2f} | {'yes' if r['same'] else 'NO'} ({r['choice']}) |")
        name = "generator-forks" + ("" if args.realdata == REALDATA else f"-{args.realdata.name}")
        save(name, {"benchmark": "select_generator: one job at a time vs two at a time in forks", "machine": info,
                    "rows": rows})
        return
    rows = [_measure(args.realdata / meta[n]["file"], meta[n]["target"], n, args.repeats) for n in args.sets.split(",")]
    print("\n| data set | CV rows | trials | folds | one at a time | two at a time in forks | speed-up | same CV scores |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['rows']:,} | {r['trials']} | {r['folds']} | {r['one_s']:.1f} s "
              f"({r['busy_one']:.2f} cores) | {r['two_s']:.1f} s ({r['busy_two']:.2f} cores) | "
              f"×{r['one_s'] / r['two_s']:.2f} | {'yes' if r['same_scores'] else 'NO'} |")
    save("search-forks", {"benchmark": "design search: one trial at a time vs two at a time in forks",
                          "machine": info, "rows": rows})


def _cpu_seconds(pid_children: bool = True) -> float:
    t = os.times()
    return t.user + t.system + (t.children_user + t.children_system if pid_children else 0.0)


def _train_split(path: Path, target: str):
    """synthloop's own reading and split of the file (seed 0): its schema and train rows."""
    from synthloop import data
    from synthloop.config import Config
    from synthloop.env import apply_defaults
    from synthloop.preflight import checked_split

    apply_defaults()
    cfg = Config.model_validate({"data": {"source": str(path), "target": target}})
    schema, _, _, train, _, _ = checked_split(data.load_table(str(path)), cfg.data, target, 0, path.name)
    return schema, train


def _alternate(name: str, repeats: int, run) -> tuple[dict[int, list[float]], dict[int, list[float]], dict]:
    """`run(slots)` with slots 1 and 2, alternating, `repeats` times each: wall seconds, cores kept busy and the
    last result per slots; a line for each run."""
    times: dict[int, list[float]] = {1: [], 2: []}
    busy: dict[int, list[float]] = {1: [], 2: []}
    out: dict[int, object] = {}
    for _ in range(repeats):
        for slots in (1, 2):
            start, cpu = time.perf_counter(), _cpu_seconds()
            out[slots] = run(slots)
            times[slots].append(time.perf_counter() - start)
            busy[slots].append((_cpu_seconds() - cpu) / times[slots][-1])
            print(f"{name}: slots={slots}: {times[slots][-1]:.1f}s, {busy[slots][-1]:.2f} cores busy, load "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
    return times, busy, out


def _measure(path: Path, target: str, name: str, repeats: int) -> dict:
    import numpy as np

    from synthloop.design import cv_rows, design_candidates, folds_for
    from synthloop.models import default_spec
    from synthloop.splits import encode_target
    from synthloop.tasks.train import run_trials_here

    schema, train = _train_split(path, target)
    X, y = cv_rows(train[schema.features], encode_target(train[target], schema), 0)
    metric = "accuracy" if schema.task == "classification" else "rmse"
    candidates = design_candidates(default_spec("xgboost"), schema, y, seed=0)
    folds = folds_for(len(y))

    def run(slots: int) -> list[float]:
        trials = run_trials_here(candidates, schema, X, y, metric=metric, threads=1, seed=0, folds=folds,
                                 slots=slots)
        return [t["score"] for t in trials]

    times, busy, scores = _alternate(f"{name}, {len(candidates)} trials", repeats, run)
    return {"set": name, "rows": len(y), "trials": len(candidates), "folds": folds, "one_s": min(times[1]),
            "two_s": min(times[2]), "one_all": times[1], "two_all": times[2], "busy_one": float(np.mean(busy[1])),
            "busy_two": float(np.mean(busy[2])),
            "same_scores": bool(np.allclose(scores[1], scores[2], equal_nan=True))}


def _measure_generators(path: Path, target: str, name: str, repeats: int) -> dict:
    from synthloop.synth import select_generator

    schema, train = _train_split(path, target)

    def run(slots: int) -> tuple:  # every (fold, generator) job caps its own threads at one, in a fork or not
        return select_generator(train[schema.features], train[target], schema.kinds, schema.task, random_state=1,
                                slots=slots)

    times, _, out = _alternate(f"{name}, select_generator", repeats, run)
    plain = [{k: v for k, v in out[s][1].items() if not k.endswith("_seconds")} for s in (1, 2)]
    return {"set": name, "rows": len(train), "columns": len(schema.features), "one_s": min(times[1]),
            "two_s": min(times[2]), "one_all": times[1], "two_all": times[2], "choice": out[1][0],
            "same": out[1][0] == out[2][0] and plain[0] == plain[1]}


if __name__ == "__main__":
    main()
