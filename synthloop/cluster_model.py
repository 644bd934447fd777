"""Training, scoring and diagnosing xgboost on a Dask cluster, and the model the registry keeps.

The preprocessor is the pandas path's own (`synthloop.models.build_preprocessor`), fitted on the driver's sample and
applied to every partition on the workers. `xgboost.dask` trains on the transformed partitions where they are.
Metrics are computed from per-partition sufficient statistics (a confusion matrix, log-loss sums and score
histograms; or error sums), added up on the driver: exact for accuracy, balanced accuracy, macro-F1, log loss,
RMSE, MAE and R², and ROC AUC from 1,000-bin score histograms (within about 0.001 of the exact value). The model
that is logged is the usual `Pipeline(preprocess, XGBClassifier | XGBRegressor)` holding the trained booster, so
`synthloop predict`, `modelstore.load_model` and `mlflow models serve` use it on a pandas frame unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synthloop.cluster_data import BUCKET, ClusterData
from synthloop.models import ModelSpec
from synthloop.types import Schema

Y = "_synthloop_y"
AUC_BINS = 1000
# sklearn names of xgboost settings -> the native names `xgboost.train` reads
NATIVE_NAMES = {"learning_rate": "eta", "reg_lambda": "lambda", "reg_alpha": "alpha", "min_split_loss": "gamma"}
NOT_BOOSTER_PARAMS = {"n_estimators", "early_stopping_rounds", "native_categorical", "target_transform", "n_jobs",
                      "random_state", "eval_metric", "enable_categorical"}


def fit_preprocessor(data: ClusterData):
    """The pandas path's preprocessing for xgboost, fitted on the driver's sample."""
    from synthloop.models import build_preprocessor

    schema = data.schema
    pre = build_preprocessor(schema, "xgboost")
    pre.fit(data.sample[schema.features])
    return pre


def _encode(y: pd.Series, schema: Schema) -> np.ndarray:
    if schema.task == "regression":
        return y.to_numpy(dtype="float64")
    lookup = {c: i for i, c in enumerate(schema.classes)}
    return y.map(lookup).to_numpy(dtype="float64")


def transform_part(part: pd.DataFrame, pre, schema: Schema, n_out: int) -> pd.DataFrame:
    """A prepared partition as model input: f0..fN (preprocessed features), the encoded target and the bucket."""
    if len(part):
        X = np.asarray(pre.transform(part[schema.features]), dtype="float32")
    else:
        X = np.empty((0, n_out), dtype="float32")
    out = pd.DataFrame(X, columns=[f"f{i}" for i in range(n_out)])
    out[Y] = _encode(part[schema.target].reset_index(drop=True), schema) if len(part) else np.empty(0)
    out[BUCKET] = part[BUCKET].to_numpy(dtype="int64")
    return out


@dataclass(frozen=True)
class Matrices:
    """Train and validation rows as model input on the cluster (persisted once per run)."""

    train: Any
    val: Any
    features: list[str]


def output_width(pre, data: ClusterData) -> int:
    """Columns the preprocessor gives (read off the sample: datetime features have no output names)."""
    return int(np.asarray(pre.transform(data.sample[data.schema.features].head(2))).shape[1])


def model_inputs(client, data: ClusterData, pre) -> Matrices:
    n_out = output_width(pre, data)
    features = [f"f{i}" for i in range(n_out)]
    meta = pd.DataFrame({**{f: pd.Series(dtype="float32") for f in features}, Y: pd.Series(dtype="float64"),
                         BUCKET: pd.Series(dtype="int64")})
    train = data.train.map_partitions(transform_part, pre, data.schema, n_out, meta=meta)
    val = data.val.map_partitions(transform_part, pre, data.schema, n_out, meta=meta)
    train, val = client.persist([train, val])
    return Matrices(train, val, features)


def transform_test(data: ClusterData, test, pre):
    n_out = output_width(pre, data)
    features = [f"f{i}" for i in range(n_out)]
    meta = pd.DataFrame({**{f: pd.Series(dtype="float32") for f in features}, Y: pd.Series(dtype="float64"),
                         BUCKET: pd.Series(dtype="int64")})
    return test.map_partitions(transform_part, pre, data.schema, n_out, meta=meta)


# training --------------------------------------------------------------------------------------
def booster_params(spec: ModelSpec, schema: Schema, nthread: int, seed: int) -> tuple[dict[str, Any], int, int | None]:
    """Native xgboost parameters of an xgboost ModelSpec, its rounds and its early-stopping patience."""
    p: dict[str, Any] = {"tree_method": "hist", "nthread": nthread, "seed": seed, "verbosity": 0}
    for k, v in spec.params.items():
        if k not in NOT_BOOSTER_PARAMS and v is not None:
            p[NATIVE_NAMES.get(k, k)] = v
    if schema.task == "classification":
        k = len(schema.classes)
        p.update({"objective": "binary:logistic", "eval_metric": "logloss"} if k == 2 else
                 {"objective": "multi:softprob", "num_class": k, "eval_metric": "mlogloss"})
    else:
        p.update({"objective": "reg:squarederror", "eval_metric": "rmse"})
    return p, int(spec.params.get("n_estimators", 200)), spec.params.get("early_stopping_rounds")


def worker_threads(client) -> int:
    return min(int(i["nthreads"]) for i in client.scheduler_info(n_workers=-1)["workers"].values())


@dataclass(frozen=True)
class ClusterFit:
    """A booster trained on the cluster and what its training recorded."""

    spec: ModelSpec
    booster: Any
    curves: dict[str, list[float]]
    rounds: int
    best_round: int
    fit_seconds: float
    n_rows: int


def train_booster(client, m: Matrices, spec: ModelSpec, schema: Schema, *, seed: int, train_upto: int | None = None,
                  n_rows: int = 0) -> ClusterFit:
    """Train xgboost on the train partitions, early-stopping on the validation partitions.

    Args:
        client: The cluster's client.
        m: Model inputs on the cluster.
        spec: An xgboost design (`n_estimators`, `early_stopping_rounds`, learning rate, depth ...).
        schema: Task and classes.
        seed: xgboost's seed.
        train_upto: Train only on train rows with a bucket below this (a nested hash fraction of train).
        n_rows: Rows trained on (recorded).
    Returns:
        The booster cut at its best round, with the train and validation loss per round.
    """
    import xgboost.dask as dxgb

    start = time.perf_counter()
    params, rounds, patience = booster_params(spec, schema, worker_threads(client), seed)
    train = m.train if train_upto is None else m.train[m.train[BUCKET] < train_upto]
    with client.as_current():
        dtrain = dxgb.DaskQuantileDMatrix(client, train[m.features], train[Y])
        dval = dxgb.DaskQuantileDMatrix(client, m.val[m.features], m.val[Y], ref=dtrain)
        out = dxgb.train(client, params, dtrain, num_boost_round=rounds, evals=[(dtrain, "train"), (dval, "validation")],
                         early_stopping_rounds=patience or None, verbose_eval=False)
    booster = out["booster"]
    history = {name: [float(v) for v in next(iter(h.values()))] for name, h in out["history"].items()}
    n_done = len(history["train"])
    best = int(booster.attr("best_iteration")) if patience and booster.attr("best_iteration") is not None else n_done - 1
    booster = booster[: best + 1]
    booster.feature_names = None  # the pipeline feeds it arrays
    booster.feature_types = None
    curves = {"train_loss": history["train"], "val_loss": history["validation"]}
    return ClusterFit(spec, booster, curves, n_done, best, time.perf_counter() - start, n_rows)


def sklearn_pipeline(pre, booster, task: str):
    """The usual `Pipeline(preprocess, model)`, the model an XGBClassifier / XGBRegressor holding the booster."""
    import xgboost as xgb
    from sklearn.pipeline import Pipeline

    est = xgb.XGBClassifier() if task == "classification" else xgb.XGBRegressor()
    est.load_model(bytearray(booster.save_raw("ubj")))
    est.set_params(n_jobs=1)
    return Pipeline([("preprocess", pre), ("model", est)])


# scoring ---------------------------------------------------------------------------------------
def _proba(booster, X: np.ndarray, k: int) -> np.ndarray:
    p = np.asarray(booster.inplace_predict(X))
    return np.column_stack([1 - p, p]) if k == 2 and p.ndim == 1 else p.reshape(len(X), k)


def part_stats(part: pd.DataFrame, booster, features: list[str], task: str, k: int | None,
               prior: np.ndarray | float | None, lo: int = 0, hi: int = 1 << 30) -> dict[str, Any]:
    """Sufficient statistics of a model's (and the constant baseline's) errors on a partition's rows with a bucket
    in [lo, hi) (on a worker)."""
    part = part[(part[BUCKET] >= lo) & (part[BUCKET] < hi)]
    y = part[Y].to_numpy()
    n = len(y)
    if booster is not None:
        booster.set_param({"nthread": 1})
    X = part[features].to_numpy(dtype="float32")
    out: dict[str, Any] = {"n": n}
    if task == "regression":
        for name, pred in (("model", booster.inplace_predict(X) if booster is not None and n else np.zeros(n)),
                           ("baseline", np.full(n, float(prior or 0.0)))):
            e = np.asarray(pred, dtype="float64") - y
            out[name] = {"se": float((e ** 2).sum()), "ae": float(np.abs(e).sum())}
        out["y_sum"], out["y2_sum"] = float(y.sum()), float((y ** 2).sum())
        return out
    yi = y.astype(int)
    for name in ("model", "baseline"):
        if name == "model":
            proba = _proba(booster, X, k) if booster is not None and n else np.full((n, k), 1.0 / k)
        else:
            proba = np.tile(np.asarray(prior, dtype="float64"), (n, 1))
        pred = proba.argmax(axis=1)
        conf = np.zeros((k, k), dtype="int64")
        np.add.at(conf, (yi, pred), 1)
        p = np.clip(proba / proba.sum(axis=1, keepdims=True), 1e-15, 1.0)
        ll = float(-np.log(p[np.arange(n), yi]).sum()) if n else 0.0
        bins = np.minimum((proba * AUC_BINS).astype(int), AUC_BINS - 1)
        hist = np.zeros((k, 2, AUC_BINS), dtype="int64")
        for c in range(k):
            pos = yi == c
            hist[c, 1] = np.bincount(bins[pos, c], minlength=AUC_BINS)
            hist[c, 0] = np.bincount(bins[~pos, c], minlength=AUC_BINS)
        out[name] = {"confusion": conf, "log_loss_sum": ll, "hist": hist}
    return out


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, dict):
        return {key: _add(a[key], b[key]) for key in a}
    return a + b


def cluster_stats(client, frame, booster, features: list[str], task: str, k: int | None, prior, lo: int = 0,
                  hi: int = 1 << 30) -> dict[str, Any]:
    """`part_stats` of every partition, computed on the cluster and added up here (small: K×K and histograms)."""
    import dask

    b = client.scatter(booster, broadcast=True, hash=False) if booster is not None else None
    parts = frame.to_delayed()
    tasks = [dask.delayed(part_stats)(p, b, features, task, k, prior, lo, hi) for p in parts]
    total = None
    for s in client.compute(tasks, sync=True):
        total = s if total is None else _add(total, s)
    return total


def _row_losses(booster, X: np.ndarray, y: np.ndarray, task: str, k: int | None, metric: str) -> np.ndarray:
    """Per row, the loss behind the goal metric, as `synthloop.judge.row_losses` defines it."""
    if task == "regression":
        e = np.asarray(booster.inplace_predict(X), dtype="float64") - y
        return np.abs(e) if metric == "mae" else e ** 2
    proba = _proba(booster, X, k)
    yi = y.astype(int)
    if metric == "log_loss":
        return -np.log(np.clip(proba[np.arange(len(y)), yi], 1e-15, 1.0))
    return (proba.argmax(axis=1) != yi).astype("float64")


def paired_part(part: pd.DataFrame, booster, reference, features: list[str], task: str, k: int | None,
                metric: str) -> dict[str, float]:
    """Sums of the row-by-row loss difference of two models on a partition (on a worker)."""
    for b in (booster, reference):
        b.set_param({"nthread": 1})
    if not len(part):
        return {"n": 0, "d": 0.0, "d2": 0.0}
    X, y = part[features].to_numpy(dtype="float32"), part[Y].to_numpy()
    d = _row_losses(booster, X, y, task, k, metric) - _row_losses(reference, X, y, task, k, metric)
    return {"n": len(d), "d": float(d.sum()), "d2": float((d ** 2).sum())}


def paired_noise(client, frame, booster, reference, features: list[str], task: str, k: int | None, metric: str,
                 reference_score: float, y_var: float | None = None) -> float:
    """One standard error of a model's gain over a reference on the same rows, in the metric's units (as
    `synthloop.judge.gain_noise`, from per-partition sums instead of per-row losses on the driver)."""
    import dask

    b = client.scatter(booster, broadcast=True, hash=False)
    r = client.scatter(reference, broadcast=True, hash=False)
    tasks = [dask.delayed(paired_part)(p, b, r, features, task, k, metric) for p in frame.to_delayed()]
    n = d = d2 = 0.0
    for s in client.compute(tasks, sync=True):
        n, d, d2 = n + s["n"], d + s["d"], d2 + s["d2"]
    if n < 2:
        return 0.0
    se = float(np.sqrt(max(d2 - d * d / n, 0.0) / (n - 1)) / np.sqrt(n))
    if metric == "rmse":
        return se / max(2.0 * abs(reference_score), 1e-12)
    if metric == "r2" and y_var:
        return se / max(y_var, 1e-12)
    return se


def _auc(hist: np.ndarray) -> float:
    """Area under the ROC curve from histograms of scores of negatives (hist[0]) and positives (hist[1])."""
    neg, pos = hist[0].astype("float64"), hist[1].astype("float64")
    if neg.sum() == 0 or pos.sum() == 0:
        return float("nan")
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    return float((pos * (below + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))


def metrics_from_stats(stats: dict[str, Any], task: str, which: str = "model") -> dict[str, float]:
    """The metrics `synthloop.models.compute_metrics` gives, from added-up statistics."""
    n = stats["n"]
    if not n:
        return {}
    s = stats[which]
    if task == "regression":
        ss_tot = stats["y2_sum"] - stats["y_sum"] ** 2 / n
        return {"rmse": float(np.sqrt(s["se"] / n)), "mae": float(s["ae"] / n),
                "r2": float(1 - s["se"] / ss_tot) if n > 1 and ss_tot > 0 else float("nan")}
    conf = s["confusion"]
    k = len(conf)
    true_n, pred_n, hit = conf.sum(axis=1), conf.sum(axis=0), np.diag(conf)
    present = true_n > 0
    recall = np.divide(hit, true_n, out=np.zeros(k), where=true_n > 0)
    precision = np.divide(hit, pred_n, out=np.zeros(k), where=pred_n > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    labelled = present | (pred_n > 0)  # sklearn's macro-F1 averages over labels in y_true or y_pred
    out = {"accuracy": float(hit.sum() / n), "balanced_accuracy": float(recall[present].mean()),
           "f1_macro": float(f1[labelled].mean()), "log_loss": float(s["log_loss_sum"] / n)}
    if present.sum() > 1:
        if k == 2:
            out["roc_auc"] = _auc(s["hist"][1])
        elif present.all():
            out["roc_auc"] = float(np.mean([_auc(s["hist"][c]) for c in range(k)]))
    return out


def recall_from_stats(stats: dict[str, Any]) -> np.ndarray:
    conf = stats["model"]["confusion"]
    true_n = conf.sum(axis=1)
    return np.divide(np.diag(conf), true_n, out=np.zeros(len(conf)), where=true_n > 0)


def train_prior(client, m: Matrices, schema: Schema):
    """The trivial model's prediction: class shares of train (classification) or the train mean (regression)."""
    y = m.train[Y]
    if schema.task == "regression":
        return float(client.compute(y.mean(), sync=True))
    counts = client.compute(y.value_counts(sort=False), sync=True)
    prior = np.zeros(len(schema.classes))
    prior[counts.index.to_numpy(dtype=int)] = counts.to_numpy()
    return prior / prior.sum()


# designs ---------------------------------------------------------------------------------------
def cluster_designs(current: ModelSpec) -> list[ModelSpec]:
    """A few xgboost settings around the current one, tried on the cluster when the loop changes the design."""
    p = current.params
    n = int(p.get("n_estimators", 200))
    return [current.with_params(max_depth=4, learning_rate=max(0.02, p.get("learning_rate", 0.1) / 2),
                                n_estimators=n * 2),
            current.with_params(max_depth=8, min_child_weight=4.0, subsample=0.8, colsample_bytree=0.8),
            current.with_params(max_depth=3, learning_rate=min(0.3, p.get("learning_rate", 0.1) * 2),
                                reg_lambda=5.0)]


# the cluster -----------------------------------------------------------------------------------
def open_cluster(address: str | None, workers: int = 2):
    """A context manager giving (client, description): the scheduler at `address`, or a temporary LocalCluster of
    `workers` process workers × 1 thread on 127.0.0.1."""
    import contextlib
    import logging

    @contextlib.contextmanager
    def _open():
        from distributed import Client, LocalCluster

        from synthloop.parallel import connect, local_cluster_kwargs

        if address:
            client = connect(address)
            try:
                n = len(client.scheduler_info(n_workers=-1)["workers"])
                yield client, f"Dask cluster at {address} ({n} worker(s))"
            finally:
                client.close()
            return
        with LocalCluster(**local_cluster_kwargs(workers), silence_logs=logging.CRITICAL) as cluster, \
                Client(cluster, set_as_default=False) as client:
            yield client, f"LocalCluster of {workers} worker process(es) × 1 thread on 127.0.0.1"

    return _open()


def head_rows(client, frame, n: int) -> pd.DataFrame:
    """The first `n` rows of a Dask DataFrame, computed on the cluster one partition at a time."""
    out: list[pd.DataFrame] = []
    got = 0
    for i in range(frame.npartitions):
        out.append(client.compute(frame.partitions[i].head(n - got, npartitions=1, compute=False), sync=True))
        got += len(out[-1])
        if got >= n:
            break
    return pd.concat(out, ignore_index=True) if out else frame._meta.copy()
