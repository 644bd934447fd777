"""SDV's GaussianCopulaSynthesizer on prepared CSV files: the outside anchor of `benchmarks/synthetic.py`.

Runs in its own virtual environment, never in synthloop's (SDV is BUSL-licensed and benchmark-only)::

    python3 -m venv /work/sdvvenv && /work/sdvvenv/bin/pip install --no-deps sdv copulas rdt sdmetrics ctgan deepecho
    /work/sdvvenv/bin/pip install "pandas<3" numpy scipy scikit-learn faker boto3 graphviz platformdirs \
        cloudpickle tqdm plotly pyyaml python-dateutil pytz tzdata threadpoolctl joblib narwhals packaging

(`pip install sdv` pulls PyTorch for CTGAN; the Gaussian copula does not need it, so the packages go in without
their dependencies.) `benchmarks/synthetic.py` writes the jobs file and reads the rows back:

    /work/sdvvenv/bin/python benchmarks/_sdv_copula.py JOBS.json

JOBS.json: {"columns": {name: "numerical" | "categorical"}, "jobs": [{"train": csv, "rows": n, "out": csv,
"seed": s}]}. Prints one JSON line: per job, fit and sample seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"


def main(path: str) -> int:
    import warnings

    import numpy as np
    import pandas as pd
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    warnings.filterwarnings("ignore")
    spec = json.loads(open(path).read())
    columns = spec["columns"]
    metadata = Metadata.load_from_dict({"tables": {"t": {"columns": {c: {"sdtype": k} for c, k in columns.items()}}}})
    text = {c: str for c, k in columns.items() if k == "categorical"}
    out = []
    for job in spec["jobs"]:
        frame = pd.read_csv(job["train"], dtype=text, keep_default_na=True)
        np.random.seed(job["seed"])
        started = time.perf_counter()
        synth = GaussianCopulaSynthesizer(metadata)
        synth.fit({"t": frame})
        fitted = time.perf_counter()
        rows = synth.sample(int(job["rows"]))
        rows = rows["t"] if isinstance(rows, dict) else rows
        done = time.perf_counter()
        rows.to_csv(job["out"], index=False)
        out.append({"fit_seconds": round(fitted - started, 3), "sample_seconds": round(done - fitted, 3)})
    import sdv

    print(json.dumps({"sdv": sdv.__version__, "jobs": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
