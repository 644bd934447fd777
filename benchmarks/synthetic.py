"""Synthetic rows: generator speed, and every generator side by side on real data sets, one core.

Two parts, both run by default (``--part speed`` or ``--part real`` for one):

* **speed** (:func:`copula_speed`, :func:`cart_speed`): the Gaussian copula's fit and sample throughput and peak
  memory on 100k rows x 20 numeric columns (target: < 2 s), and sequential CART on 50k x 10 (target: <= 10 s);
  written to ``benchmarks/results/synthetic.json``.
* **real** (:func:`real_data`): on real data sets from ``../shared/data/realdata`` (read in place, never copied),
  each generator -- ``copula``, ``smote``, ``cart`` and SDV's GaussianCopulaSynthesizer as the outside anchor --
  is fitted to the train split (synthloop's own 60/20/20 split, seed 0) and scored against the test split:
  fidelity (SDMetrics-style column shapes and pair trends), train-on-synthetic vs train-on-real with xgboost,
  real + synthetic, scarce (a 10 % sample + 9x synthetic rows fitted to it vs the 10 % alone, mean of three
  samples), privacy (DCR ratio against the validation rows, exact copies, share below the DCR floor), support
  kept in discrete columns, and fit + sample seconds; plus which generator ``select_generator`` (the loop's
  ``synthetic.generator: auto``) picks by cross-validation on train. Written to
  ``benchmarks/results/synthetic-real.json``.

SDV is BUSL-licensed, so it runs in its own venv (``--sdv-python``, default ``/work/sdvvenv/bin/python``; see
``benchmarks/_sdv_copula.py``) as a separate process; its rows are read back and scored here like the others.
Run from the project root::

    python benchmarks/synthetic.py [--part speed|real|all|table] [--datasets wage,taxi] [--rows 100000] [--repeats 3]
"""

from __future__ import annotations

import os

# One core: thread pools read these when NumPy / SciPy are first imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402

from synthloop.synth import CartSynthesizer, GaussianCopula, make_generator, quality_report, select_generator, simulate  # noqa: E402,E501

RESULTS = Path(__file__).resolve().parent / "results" / "synthetic.json"
REAL_RESULTS = Path(__file__).resolve().parent / "results" / "synthetic-real.json"
REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "realdata"
TARGET_SECONDS = 2.0
CART_TARGET_SECONDS = 10.0
GENERATORS = ("copula", "smote", "cart")
SCARCE_SHARE, SCARCE_RATIO, SCARCE_DRAWS = 0.1, 9, 3
#: Seeds of each synthloop generator whose train-on-synthetic scores are averaged (SDV: the first only).
TSTR_SEEDS = (0, 1, 2)


def _time_once(X: pd.DataFrame, y: pd.Series | None, kinds: dict[str, str], task: str) -> tuple[float, float]:
    start = time.perf_counter()
    gen = GaussianCopula(kinds, random_state=0).fit(X, y, task=task)
    fitted = time.perf_counter()
    gen.sample(len(X))
    return fitted - start, time.perf_counter() - fitted


def _peak_traced_mb(X: pd.DataFrame, y: pd.Series | None, kinds: dict[str, str], task: str) -> float:
    tracemalloc.start()
    try:
        GaussianCopula(kinds, random_state=0).fit(X, y, task=task).sample(len(X))
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def copula_speed(n_rows: int, n_columns: int, repeats: int) -> dict:
    """The Gaussian copula's fit and sample seconds on simulated numeric columns (median of ``repeats``)."""
    X, y_class = simulate("classification", n_rows, n_columns, random_state=0)
    _, y_reg = simulate("regression", n_rows, n_columns, random_state=0)
    kinds = {c: "numeric" for c in X.columns}
    input_mb = X.memory_usage(deep=True).sum() / 2**20
    scenarios = {
        "classification": (y_class, "classification"),
        "regression": (y_reg, "regression"),
        "features_only": (None, "classification"),
    }
    figures = {}
    for name, (y, task) in scenarios.items():
        _time_once(X.iloc[:1000], None if y is None else y.iloc[:1000], kinds, task)  # warm-up
        times = [_time_once(X, y, kinds, task) for _ in range(repeats)]
        fit_s = statistics.median(t[0] for t in times)
        sample_s = statistics.median(t[1] for t in times)
        figures[name] = {
            "fit_seconds": round(fit_s, 4),
            "sample_seconds": round(sample_s, 4),
            "total_seconds": round(fit_s + sample_s, 4),
            "fit_rows_per_s": round(n_rows / fit_s),
            "sample_rows_per_s": round(n_rows / sample_s),
            "peak_traced_mb": round(_peak_traced_mb(X, y, kinds, task), 1),
            "under_target": fit_s + sample_s < TARGET_SECONDS,
        }
    max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {
        "benchmark": "GaussianCopula fit + sample, numeric columns, one core",
        "rows": n_rows,
        "columns": n_columns,
        "repeats": repeats,
        "statistic": "median",
        "target_total_seconds": TARGET_SECONDS,
        "input_mb": round(float(input_mb), 1),
        "scenarios": figures,
        "process_max_rss_mb": round(max_rss_kb / 1024, 1),
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit_learn": sklearn.__version__,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "threads": os.environ["OMP_NUM_THREADS"],
        },
    }


def cart_speed(n_rows: int = 50_000, n_columns: int = 10, repeats: int = 3) -> dict:
    """Sequential CART's fit and sample seconds on simulated numeric columns plus a regression target."""
    X, y = simulate("regression", n_rows, n_columns, random_state=0)
    kinds = {c: "numeric" for c in X.columns}
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        gen = CartSynthesizer(kinds, random_state=r).fit(X, y, task="regression")
        fitted = time.perf_counter()
        gen.sample(n_rows)
        times.append((fitted - start, time.perf_counter() - fitted))
    fit_s, sample_s = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
    return {"benchmark": "CartSynthesizer fit + sample, numeric columns + regression target, one core",
            "rows": n_rows, "columns": n_columns, "repeats": repeats, "fit_seconds": round(fit_s, 3),
            "sample_seconds": round(sample_s, 3), "total_seconds": round(fit_s + sample_s, 3),
            "target_total_seconds": CART_TARGET_SECONDS, "under_target": fit_s + sample_s <= CART_TARGET_SECONDS}


# --------------------------------------------------------------------------------------------
# Real data sets
# --------------------------------------------------------------------------------------------


def _datasets(names: list[str] | None) -> list[dict]:
    listed = json.loads((REALDATA / "datasets.json").read_text())
    out = [{"name": d["file"].removesuffix(".csv"), "path": str(REALDATA / d["file"]), "target": d["target"],
            "task": "regression" if d["task"] == "regression" else "classification"} for d in listed]
    return [d for d in out if names is None or d["name"] in names]


def _load(ds: dict):
    """synthloop's own reading, schema and 60/20/20 split (seed 0): train, validation, test and the schema."""
    from synthloop import data
    from synthloop.splits import split_frame

    raw = data.load_table(ds["path"])
    schema, _ = data.infer_schema(raw, ds["target"])
    frame, _ = data.prepare_frame(raw, schema)
    frame = frame[frame[schema.target].notna()]
    train, val, sealed = split_frame(frame, schema, val_fraction=0.2, test_fraction=0.2, seed=0)
    return train.reset_index(drop=True), val.reset_index(drop=True), sealed.open().reset_index(drop=True), schema


def _xgb_score(frames_X: list[pd.DataFrame], ys: list, X_test: pd.DataFrame, y_test, kinds, task: str,
               classes) -> float:
    """xgboost (400 rounds, learning rate 0.05, depth 6, one thread) on the rows given; accuracy or RMSE on test."""
    import xgboost as xgb

    from synthloop.synth.report import _model_matrix

    matrices = _model_matrix([*frames_X, X_test], kinds)
    X = np.vstack(matrices[:-1])
    y = np.concatenate([np.asarray(v) for v in ys])
    params = dict(n_estimators=400, learning_rate=0.05, max_depth=6, n_jobs=1, tree_method="hist", random_state=0)
    if task == "classification":
        lookup = {c: i for i, c in enumerate(classes)}
        codes = np.array([lookup[v] for v in y])
        if np.unique(codes).size < 2:
            pred = np.full(len(X_test), codes[0])
        else:
            model = xgb.XGBClassifier(**params).fit(X, codes)
            present = np.unique(codes)  # xgboost needs labels 0..k-1; map back when a class is missing
            pred = present[model.predict(matrices[-1])] if present.size < len(classes) else model.predict(matrices[-1])
        truth = np.array([lookup[v] for v in np.asarray(y_test)])
        return float(np.mean(pred == truth))
    model = xgb.XGBRegressor(**params).fit(X, y.astype(np.float64))
    return float(np.sqrt(np.mean((model.predict(matrices[-1]) - np.asarray(y_test, dtype=np.float64)) ** 2)))


def _support(real: pd.DataFrame, synth: pd.DataFrame, kinds) -> dict[str, float]:
    """Worst column: share of synthetic values of a discrete column (categorical, boolean, or numeric with values
    repeating at least twice on average) that never occur in the real column; and the largest missing-rate gap."""
    from synthloop.synth._codec import _continuous_values, _is_discrete

    worst, gap = 0.0, 0.0
    for c, kind in kinds.items():
        gap = max(gap, abs(float(real[c].isna().mean()) - float(synth[c].isna().mean())))
        if kind in ("numeric", "datetime"):
            r = _continuous_values(real[c], kind)
            r = r[~np.isnan(r)]
            if not _is_discrete(r):
                continue
            s = _continuous_values(synth[c], kind)
            s = s[~np.isnan(s)]
            outside = ~np.isin(s, np.unique(r))
        else:
            seen = set(real[c].dropna().astype(object))
            s = synth[c].dropna().astype(object)
            outside = ~s.isin(seen).to_numpy()
        if outside.size:
            worst = max(worst, float(outside.mean()))
    return {"support_outside_share": worst, "missing_rate_gap": gap}


def _sdv_rows(sdv_python: str, jobs: list[tuple[pd.DataFrame, pd.Series, int, int]], kinds, target: str,
              task: str, workdir: Path) -> tuple[list, dict]:
    """Fit SDV's GaussianCopulaSynthesizer in its own venv on each (X, y, rows, seed) job; its rows, typed back."""
    columns = {c: ("categorical" if k in ("categorical", "boolean") else "numerical") for c, k in kinds.items()}
    columns[target] = "categorical" if task == "classification" else "numerical"
    dated = [c for c, k in kinds.items() if k == "datetime"]
    spec = {"columns": columns, "jobs": []}
    for i, (X, y, rows, seed) in enumerate(jobs):
        frame = X.assign(**{target: np.asarray(y)})
        for c in dated:  # SDV gets dates as seconds and gives seconds back
            ns, missing, _ = __import__("synthloop.synth._codec", fromlist=["_datetime_ns"])._datetime_ns(frame[c])
            frame[c] = np.where(missing, np.nan, ns // 10**9)
        frame.to_csv(workdir / f"train{i}.csv", index=False)
        spec["jobs"].append({"train": str(workdir / f"train{i}.csv"), "rows": rows,
                             "out": str(workdir / f"synth{i}.csv"), "seed": seed})
    (workdir / "jobs.json").write_text(json.dumps(spec))
    runner = Path(__file__).resolve().parent / "_sdv_copula.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sdv_python, str(runner), str(workdir / "jobs.json")], capture_output=True, text=True,
                          env=env, cwd=str(workdir), timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"SDV runner failed: {done.stderr[-2000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    text = {c: str for c, k in columns.items() if k == "categorical"}
    out = []
    for i, (X, y, _, _) in enumerate(jobs):
        frame = pd.read_csv(workdir / f"synth{i}.csv", dtype=text)
        for c in dated:
            frame[c] = pd.to_datetime(frame[c], unit="s").astype(X[c].dtype)
        for c, k in kinds.items():
            if k in ("numeric", "boolean"):
                frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(np.float64)
        y_syn = frame.pop(target)
        if task == "classification":
            lookup = {str(v): v for v in pd.unique(y)}
            y_syn = y_syn.map(lambda v: lookup.get(v, v))
        else:
            y_syn = pd.to_numeric(y_syn, errors="coerce")
        out.append((frame[list(kinds)], y_syn.rename(target)))
    return out, info


def _scarce_samples(train: pd.DataFrame, schema) -> list[pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    samples = []
    for draw in range(SCARCE_DRAWS):
        strat = train[schema.target] if schema.task == "classification" else None
        try:
            part, _ = train_test_split(train, train_size=SCARCE_SHARE, random_state=100 + draw, stratify=strat)
        except ValueError:  # a class too small to stratify
            part, _ = train_test_split(train, train_size=SCARCE_SHARE, random_state=100 + draw)
        samples.append(part.reset_index(drop=True))
    return samples


def _evaluate(name, X_syn, y_syn, seconds, train, val, test, schema, classes, scarce, scarce_rows, real_score,
              more_seeds=()):
    f, t = schema.features, schema.target
    rep = quality_report(train[f], train[t], X_syn, y_syn, schema.kinds, schema.task, holdout_X=val[f],
                         holdout_y=val[t], random_state=0)
    row = {"generator": name, "rows": len(X_syn), "seconds": round(seconds, 2),
           "fidelity_column_shapes": rep["fidelity_column_shapes"],
           "fidelity_column_pairs": rep.get("fidelity_column_pairs"),
           "privacy_dcr_ratio": rep.get("privacy_dcr_ratio"), "privacy_exact_copies": rep["privacy_exact_copies"],
           "privacy_below_floor": rep.get("privacy_below_floor"), **_support(train[f], X_syn, schema.kinds)}
    if schema.task == "classification":
        real_shares = train[t].value_counts(normalize=True)
        syn_shares = pd.Series(np.asarray(y_syn)).value_counts(normalize=True)
        row["class_share_gap"] = float(real_shares.sub(syn_shares, fill_value=0.0).abs().max())
    # train-on-synthetic moves with the generator's seed (txhousing: RMSE 62-80 over three seeds of one
    # generator): the mean over the seeds given
    seeds = [_xgb_score([Xs], [ys], test[f], test[t], schema.kinds, schema.task, classes)
             for Xs, ys in [(X_syn, y_syn), *more_seeds]]
    row["tstr"], row["tstr_seeds"] = float(np.mean(seeds)), seeds
    row["augmented"] = _xgb_score([train[f], X_syn], [train[t], y_syn], test[f], test[t], schema.kinds,
                                  schema.task, classes)
    row["tstr_vs_real"] = row["tstr"] / real_score if schema.task == "regression" else row["tstr"] - real_score
    scores = []
    for part, (Xs, ys) in zip(scarce, scarce_rows):
        scores.append(_xgb_score([part[f], Xs], [part[t], ys], test[f], test[t], schema.kinds, schema.task, classes))
    row["scarce_augmented"] = float(np.mean(scores))
    return row


def real_data(names: list[str] | None, sdv_python: str | None) -> dict:
    """Every generator on every named real data set (all in datasets.json when None)."""
    results = []
    for ds in _datasets(names):
        started = time.perf_counter()
        train, val, test, schema = _load(ds)
        f, t = schema.features, schema.target
        classes = list(schema.classes) if schema.classes is not None else None
        real_score = _xgb_score([train[f]], [train[t]], test[f], test[t], schema.kinds, schema.task, classes)
        scarce = _scarce_samples(train, schema)
        scarce_alone = float(np.mean([_xgb_score([p[f]], [p[t]], test[f], test[t], schema.kinds, schema.task,
                                                 classes) for p in scarce]))
        entry = {"dataset": ds["name"], "task": schema.task, "train_rows": len(train), "test_rows": len(test),
                 "columns": len(f), "metric": "accuracy" if schema.task == "classification" else "rmse",
                 "train_on_real": real_score, "scarce_alone": scarce_alone, "generators": []}
        choice, evidence = select_generator(train[f], train[t], schema.kinds, schema.task, random_state=0)
        entry["auto_choice"], entry["auto_evidence"] = choice, evidence
        for name in GENERATORS:
            start = time.perf_counter()
            gen = make_generator(name, schema.kinds, random_state=0).fit(train[f], train[t], task=schema.task)
            X_syn, y_syn = gen.sample(len(train))
            seconds = time.perf_counter() - start
            more = [make_generator(name, schema.kinds, random_state=s).fit(train[f], train[t], task=schema.task)
                    .sample(len(train)) for s in TSTR_SEEDS[1:]]
            scarce_rows = []
            for i, part in enumerate(scarce):
                g = make_generator(name, schema.kinds, random_state=1 + i).fit(part[f], part[t], task=schema.task)
                scarce_rows.append(g.sample(SCARCE_RATIO * len(part)))
            entry["generators"].append(_evaluate(name, X_syn, y_syn, seconds, train, val, test, schema, classes,
                                                 scarce, scarce_rows, real_score, more))
            print(f"  {ds['name']}: {name} done", flush=True)
        if sdv_python:
            with tempfile.TemporaryDirectory(prefix="sdv-bench-") as tmp:
                jobs = [(train[f], train[t], len(train), 0)]
                jobs += [(p[f], p[t], SCARCE_RATIO * len(p), 1 + i) for i, p in enumerate(scarce)]
                rows, info = _sdv_rows(sdv_python, jobs, schema.kinds, t, schema.task, Path(tmp))
            seconds = info["jobs"][0]["fit_seconds"] + info["jobs"][0]["sample_seconds"]
            entry["sdv_version"] = info["sdv"]
            entry["generators"].append(_evaluate("sdv_gaussian_copula", *rows[0], seconds, train, val, test, schema,
                                                 classes, scarce, rows[1:], real_score))
        entry["seconds"] = round(time.perf_counter() - started, 1)
        results.append(entry)
        _print_entry(entry)
    return {"benchmark": "synthetic rows on real data: fidelity, utility (xgboost), scarce data, privacy, speed",
            "split": "synthloop split_frame 60/20/20, seed 0; test scores utility, validation is the DCR holdout",
            "scarce": f"{SCARCE_SHARE:.0%} of train + {SCARCE_RATIO}x synthetic fitted to it, mean of {SCARCE_DRAWS} samples",
            "threads": 1, "datasets": results}


def markdown_table(real: dict) -> str:
    """The real-data figures as one Markdown table, a row per data set and generator."""
    head = ("| data set (metric) | generator | train on synthetic (vs real) | real + synthetic | 10 % + 9× synthetic "
            "(10 % alone) | column shapes | pair trends | DCR ratio | exact copies | below floor | discrete values "
            "outside support | fit + sample s |")
    lines = [head, "|" + "---|" * 12]
    for e in real["datasets"]:
        m = e["metric"]
        fmt = (lambda v: f"{v:.3f}") if m == "accuracy" else (lambda v: f"{v:,.4g}")
        for i, g in enumerate(e["generators"]):
            label = f"{e['dataset']} ({m}; real {fmt(e['train_on_real'])}, auto → {e['auto_choice']})" if i == 0 else ""
            rel = f"{g['tstr_vs_real']:+.3f}" if m == "accuracy" else f"×{g['tstr_vs_real']:.2f}"
            scarce_wins = (g["scarce_augmented"] > e["scarce_alone"]) if m == "accuracy" else (
                g["scarce_augmented"] < e["scarce_alone"])
            pairs = "–" if g["fidelity_column_pairs"] is None else f"{g['fidelity_column_pairs']:.3f}"
            name = "SDV GaussianCopula" if g["generator"].startswith("sdv") else g["generator"]
            lines.append(
                f"| {label} | {name} | {fmt(g['tstr'])} ({rel}) | {fmt(g['augmented'])} | "
                f"{fmt(g['scarce_augmented'])}{' ✓' if scarce_wins else ''} ({fmt(e['scarce_alone'])}) | "
                f"{g['fidelity_column_shapes']:.3f} | {pairs} | {g['privacy_dcr_ratio']:.2f} | "
                f"{int(g['privacy_exact_copies'])} | {g['privacy_below_floor']:.3f} | {g['support_outside_share']:.3f} | "
                f"{g['seconds']:.1f} |")
    return "\n".join(lines)


def _print_entry(entry: dict) -> None:
    m = entry["metric"]
    print(f"{entry['dataset']} ({entry['task']}, {entry['train_rows']} train rows, {m}): real {entry['train_on_real']:.4g}, "
          f"10% alone {entry['scarce_alone']:.4g}; auto picks {entry['auto_choice']}")
    for g in entry["generators"]:
        print(f"  {g['generator']:20s} tstr {g['tstr']:.4g} ({g['tstr_vs_real']:+.3f})  real+syn {g['augmented']:.4g}  "
              f"10%+9x {g['scarce_augmented']:.4g}  shapes {g['fidelity_column_shapes']:.3f}  "
              f"pairs {g['fidelity_column_pairs'] if g['fidelity_column_pairs'] is None else round(g['fidelity_column_pairs'], 3)}  "
              f"dcr {g['privacy_dcr_ratio']:.2f}  copies {int(g['privacy_exact_copies'])}  "
              f"outside {g['support_outside_share']:.3f}  {g['seconds']:.1f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--part", choices=("speed", "real", "all", "table"), default="all",
                        help="table: print the Markdown table of the saved real-data results")
    parser.add_argument("--datasets", default=None, help="comma-separated names from datasets.json (default: all)")
    parser.add_argument("--sdv-python", default="/work/sdvvenv/bin/python",
                        help="python of a venv with SDV installed; '' skips SDV")
    args = parser.parse_args(argv)

    if args.part == "table":
        print(markdown_table(json.loads(REAL_RESULTS.read_text())))
        return 0
    if args.part in ("real", "all"):
        sdv_python = args.sdv_python if args.sdv_python and Path(args.sdv_python).exists() else None
        if args.sdv_python and sdv_python is None:
            print(f"  no SDV venv at {args.sdv_python}: SDV's column is left out")
        names = args.datasets.split(",") if args.datasets else None
        real = real_data(names, sdv_python)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _common import machine

        real["machine"] = machine(("scikit-learn", "xgboost-cpu", "numpy", "pandas", "scipy"))
        REAL_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        REAL_RESULTS.write_text(json.dumps(real, indent=2, default=float) + "\n")
        print(f"  wrote {REAL_RESULTS}")
        print(markdown_table(real))
        if args.part == "real":
            return 0

    result = copula_speed(args.rows, args.columns, args.repeats)
    result["cart"] = cart_speed()
    print(f"GaussianCopula, {args.rows:,} rows x {args.columns} numeric columns, one core "
          f"(median of {args.repeats}); input {result['input_mb']} MB")
    for name, f in result["scenarios"].items():
        print(f"  {name:15s} fit {f['fit_seconds']:.3f} s ({f['fit_rows_per_s']:,} rows/s)  "
              f"sample {f['sample_seconds']:.3f} s ({f['sample_rows_per_s']:,} rows/s)  "
              f"total {f['total_seconds']:.3f} s  peak traced {f['peak_traced_mb']} MB")
    print(f"  process max RSS {result['process_max_rss_mb']} MB")
    c = result["cart"]
    print(f"CartSynthesizer, {c['rows']:,} rows x {c['columns']} numeric columns + target, one core: fit "
          f"{c['fit_seconds']:.2f} s, sample {c['sample_seconds']:.2f} s, total {c['total_seconds']:.2f} s "
          f"(target <= {c['target_total_seconds']:.0f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
