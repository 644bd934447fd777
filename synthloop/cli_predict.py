"""`synthloop predict`: score new rows with a model of the store (by default the champion).

The model is loaded with `synthloop.modelstore.load_model`: only from the configured store, and only when
every file matches the digests recorded there. The rows are read like training data (CSV, Parquet, SQL)
and their columns converted as the training columns were.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_commands(sub) -> None:
    from synthloop.cli import HelpFormatter

    p = sub.add_parser("predict", formatter_class=HelpFormatter,
                       help="predict new rows with a registered model (default: the champion)")
    p.add_argument("data", metavar="DATA", help="CSV or Parquet file, or a SQLAlchemy URL (with --table/--query)")
    p.add_argument("--model", metavar="URI",
                   help="models:/NAME@ALIAS, models:/NAME/VERSION or models:/m-ID "
                        "(default: the champion of tracking.registered_model, else its latest version)")
    p.add_argument("--out", metavar="FILE",
                   help="where to write the rows with their predictions, .csv or .parquet "
                        "(default: <DATA name>.predictions.csv here; '-' for stdout)")
    p.add_argument("--proba", action="store_true", help="add one probability column per class (classification)")
    p.add_argument("--table", help="table to read when DATA is a SQLAlchemy URL")
    p.add_argument("--query", help="SQL query to read when DATA is a SQLAlchemy URL")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="threads the model may use (default: 1)")
    p.add_argument("--config", metavar="FILE", help="YAML config (for tracking.registered_model and the store)")
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///./mlruns/mlflow.db)")
    p.set_defaults(handler=_cmd_predict)


def _cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from synthloop.config import Config
    from synthloop.data import load_table
    from synthloop.errors import ConfigError
    from synthloop.modelstore import load_model

    cfg = Config.load(args.config, {"tracking.tracking_uri": args.tracking_uri})
    out = args.out or f"{_stem(args.data)}.predictions.csv"
    if out != "-" and Path(out).suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ConfigError(f"--out {out}: write .csv or .parquet (or '-' for stdout)")
    rows = load_table(args.data, table=args.table, query=args.query)
    uri = args.model or _default_model(cfg)
    model = load_model(uri, cfg.tracking.tracking_uri, threads=args.threads)
    result = rows.copy()
    if model.task == "classification":  # one pass: the labels are read off the probabilities
        proba = model.predict_proba(rows)
        result["prediction"] = model.labels(proba)
        if args.proba:
            for j, label in enumerate(model.classes):
                result[f"proba_{label}"] = proba[:, j]
    else:
        result["prediction"] = model.predict(rows)
    if out == "-":
        result.to_csv(sys.stdout, index=False)
        return 0
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if Path(out).suffix.lower() == ".csv":
        result.to_csv(out, index=False)
    else:
        result.to_parquet(out, index=False)
    shown = (pd.Series(result["prediction"]).value_counts().head(5).to_dict() if model.task == "classification"
             else {"mean": round(float(result["prediction"].mean()), 4)})
    print(f"{len(result)} rows predicted by {uri} ({model.family}, {len(model.features)} features) → {out}; "
          f"{shown}", file=sys.stderr)
    return 0


def _default_model(cfg) -> str:
    """The champion of the configured registered model, or its latest version when none is champion yet."""
    from synthloop import registry
    from synthloop.errors import ConfigError
    from synthloop.tracking import resolve_tracking_uri

    name = cfg.tracking.registered_model
    if not name:
        raise ConfigError("no model given: pass --model URI or set tracking.registered_model")
    store, _ = resolve_tracking_uri(cfg.tracking.tracking_uri)
    client = registry.client_for(store)
    if registry.champion(client, name) is not None:
        return f"models:/{name}@{registry.CHAMPION}"
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise ConfigError(f"no version of registered model {name!r} in {store}: run `synthloop run` first, "
                          f"or pass --model URI")
    latest = max(versions, key=lambda v: int(v.version))
    print(f"{name} has no champion yet: using its latest version, {latest.version}", file=sys.stderr)
    return f"models:/{name}/{latest.version}"


def _stem(data: str) -> str:
    name = Path(data.split("?")[0]).name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return name or "predictions"
