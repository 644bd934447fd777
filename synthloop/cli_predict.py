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
                        "(default: the champion of tracking.registered_model)")
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
    from synthloop.config import Config
    from synthloop.data import load_table
    from synthloop.errors import ConfigError
    from synthloop.modelstore import load_model

    cfg = Config.load(args.config, {"tracking.tracking_uri": args.tracking_uri})
    out = args.out or f"{_stem(args.data)}.predictions.csv"
    if out != "-" and Path(out).suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ConfigError(f"--out {out}: write .csv or .parquet (or '-' for stdout)")
    _require_store(cfg.tracking.tracking_uri)
    rows = load_table(args.data, table=args.table, query=args.query)
    uri = args.model or _default_model(cfg)
    model = load_model(uri, cfg.tracking.tracking_uri, threads=args.threads)
    if not args.model:
        _check_champion_fits(cfg, rows, model.features, args.data)
    for warning in input_warnings(rows, model.features, getattr(model, "target", None)):
        print(f"synthloop: warning: {warning}", file=sys.stderr)
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
    shown = (class_summary(result["prediction"], model.classes) if model.task == "classification"
             else f"mean prediction {float(result['prediction'].mean()):.4g}")
    print(f"{len(result)} rows predicted by {uri} ({model.family}, {len(model.features)} features) → {out}; "
          f"{shown}", file=sys.stderr)
    return 0


#: At most this many classes are listed by name in the summary line; the rest are counted.
SHOWN_CLASSES = 12
#: A share of missing feature values above this gets a warning: the predictions rest mostly on imputed values.
MOSTLY_MISSING = 0.5


def class_summary(predictions, classes) -> str:
    """Rows per predicted class, every class of the model included (0 too), or the first ones and how many more."""
    import pandas as pd

    counts = pd.Series(predictions).value_counts()
    order = list(classes) if classes is not None else list(counts.index)
    order += [c for c in counts.index if c not in order]
    items = sorted(((c, int(counts.get(c, 0))) for c in order), key=lambda kv: -kv[1])
    parts = [f"{c}: {n}" for c, n in items[:SHOWN_CLASSES]]
    rest = len(items) - SHOWN_CLASSES
    more = f" (and {rest} more classes: {sum(n for _, n in items[SHOWN_CLASSES:])} rows)" if rest > 0 else ""
    return "predicted classes {" + ", ".join(parts) + "}" + more


def input_warnings(rows, features: list, target=None) -> list[str]:
    """What about the input rows makes the predictions doubtful: features mostly missing, columns that do not
    match the training columns. (Training columns absent altogether are refused when the model prepares them.)"""
    from synthloop.data import _listing

    out = []
    present = [f for f in features if f in rows.columns]
    extra = [c for c in rows.columns if c not in features and c != target]
    if len(extra) > len(present):  # one or two extra columns (an id, the target) are normal; most is another table
        out.append(f"{len(extra)} of the {rows.shape[1]} input columns are not features of the model and are "
                   f"ignored: {_listing(extra, 5)}")
    if present and len(rows):
        frame = rows[present]
        share = float(frame.isna().to_numpy().mean())
        empty = [c for c in present if frame[c].isna().all()]
        if share > MOSTLY_MISSING:
            out.append(f"{share:.0%} of the feature values are missing: the predictions rest mostly on imputed "
                       f"values" + (f" ({len(empty)} features entirely empty: {_listing(empty, 5)})" if empty else ""))
        elif empty:
            out.append(f"{len(empty)} of the {len(features)} features are entirely empty in the input: "
                       f"{_listing(empty, 5)}")
    return out


def _require_store(tracking_uri: str | None) -> None:
    """A store that does not exist is not created: say where it was looked for."""
    import os

    from synthloop.errors import ConfigError
    from synthloop.tracking import resolve_tracking_uri

    store, _ = resolve_tracking_uri(tracking_uri)
    if not store.startswith("sqlite:///"):
        return
    db = Path(store.removeprefix("sqlite:///"))
    if db.is_file():
        return
    how = ("MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else
           "--tracking-uri / tracking.tracking_uri" if tracking_uri else "the default, ./mlruns/mlflow.db here")
    raise ConfigError(f"no MLflow store at {db} (from {how}): run `synthloop run` here first, or pass "
                      f"--tracking-uri of the store that holds the model")


def _default_model(cfg) -> str:
    """The champion of the configured registered model; without one, a ConfigError that says how to get one.

    A version whose run missed its goal is never used by default (see `registry.settle_new_version`)."""
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
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except Exception:  # an older store without the registry tables answers like an empty one
        versions = []
    if not versions:
        raise ConfigError(f"no model to predict with: {name!r} has no registered version in {store}; "
                          f"run `synthloop run` until a run meets its goal, or pass --model URI")
    raise ConfigError(f"no model to predict with: {name!r} has {len(versions)} version(s) in {store} but no "
                      f"champion, because no run met its goal; run `synthloop run` until one does, or "
                      f"`synthloop promote VERSION` to serve one anyway")


def _check_champion_fits(cfg, rows, features, data: str) -> None:
    """The default model is the champion of one registered name, which runs on other data may share: when the table
    lacks the champion's features, say what the champion is and how to pick another model."""
    from synthloop import registry
    from synthloop.data import _listing
    from synthloop.errors import ConfigError
    from synthloop.tracking import resolve_tracking_uri

    missing = [f for f in features if f not in rows.columns]
    if not missing:
        return
    name = cfg.tracking.registered_model
    client = registry.client_for(resolve_tracking_uri(cfg.tracking.tracking_uri)[0])
    current = registry.champion(client, name)
    what = registry.problem_of(client, current.run_id if current is not None else None)
    raise ConfigError(f"{data}: lacks {len(missing)} of the {len(features)} columns the champion of {name!r} "
                      f"(version {current.version if current is not None else '?'}"
                      f"{', a ' + what if what else ''}) needs: {_listing(missing, 5)}; pass --model "
                      f"models:/NAME/VERSION for another model (`synthloop runs` lists the runs and their versions)")


def _stem(data: str) -> str:
    name = Path(data.split("?")[0]).name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return name or "predictions"
