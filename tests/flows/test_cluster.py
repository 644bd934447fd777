"""The whole loop on a real 2-worker Dask LocalCluster (process workers × 1 thread), through real Prefect and MLflow.

The data is a multi-file Parquet dataset in a temporary folder; the driver reads only a sample of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

FILES, ROWS = 4, 2500


def _write(folder: Path, *, bad_file: int | None = None, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(FILES):
        X = rng.normal(size=(ROWS, 5))
        df = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
        df["color"] = rng.choice(["red", "green", "blue", None], ROWS)
        df["member"] = rng.choice(["yes", "no"], ROWS)
        df["customer"] = rng.integers(0, 400, ROWS)
        df["joined"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, ROWS), unit="D")
        df.loc[rng.choice(ROWS, 100), "x4"] = np.nan
        signal = X[:, 0] + 0.7 * X[:, 1] - 0.5 * X[:, 2] ** 2 + (df.color == "red") + rng.normal(scale=0.6, size=ROWS)
        df["churned"] = np.where(signal > 0.0, "yes", "no")
        if bad_file == i:
            df["x3"] = df["x3"].round(3).astype(str)
            df.loc[1234, "x3"] = "twelve"
        df.to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("cluster") / "churn")


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    from synthloop.parallel import local_cluster_kwargs

    with LocalCluster(**local_cluster_kwargs(2)) as cl, Client(cl, set_as_default=False) as client:
        yield cl, client


def _config(source: Path, address: str, **extra):
    from synthloop.config import Config

    overrides = {"data.source": str(source), "data.target": "churned", "dask.mode": "cluster", "dask.address": address,
                 "dask.sample_rows": 2000, "model.n_estimators": 25, "loop.max_iterations": 3,
                 "goal.metric": "accuracy", "goal.threshold": 0.99, **extra}
    return Config.load(None, overrides)


def test_hash_split_is_deterministic_disjoint_and_independent_of_file_layout(dataset, cluster, tmp_path):
    from synthloop.cluster_data import BUCKET, collect_dataset
    from synthloop.errors import DataError

    _, client = cluster
    kwargs = dict(target="churned", task=None, column_types={}, drop=[], val_fraction=0.2, test_fraction=0.2, seed=0,
                  sample_rows=1000)
    data, sealed = collect_dataset(client, str(dataset), **kwargs)
    again, sealed_again = collect_dataset(client, str(dataset / "*.parquet"), **kwargs)
    cols = [*data.schema.features, data.schema.target]

    def rows(frame):
        return set(map(tuple, client.compute(frame, sync=True)[cols].astype(str).to_numpy().tolist()))

    train, val, test = rows(data.train), rows(data.val), rows(sealed.open())
    assert not train & val and not train & test and not val & test
    assert len(train) + len(val) + len(test) == FILES * ROWS
    assert rows(again.train) == train and rows(again.val) == val and rows(sealed_again.open()) == test
    assert abs(len(test) / (FILES * ROWS) - 0.2) < 0.03
    # the same rows in other files (shuffled, 2 files instead of 4) land in the same splits
    whole = pd.concat([pd.read_parquet(p) for p in sorted(dataset.glob("*.parquet"))]).sample(frac=1, random_state=1)
    other = tmp_path / "relaid"
    other.mkdir()
    half = len(whole) // 2
    for i, chunk in enumerate((whole.iloc[:half], whole.iloc[half:])):
        chunk.to_parquet(other / f"chunk-{i}.parquet", index=False)
    relaid, _ = collect_dataset(client, str(other), **kwargs)
    assert rows(relaid.val) == val
    assert data.lineage["sample_rows"] <= 1000 + FILES
    # a different seed makes a different split
    salted, _ = collect_dataset(client, str(dataset), **{**kwargs, "seed": 1})
    assert rows(salted.val) != val
    assert int(client.compute(data.train[BUCKET].min(), sync=True)) >= data.plan.val_end
    # with a split key, every row of one key value is in one split
    keyed, keyed_test = collect_dataset(client, str(dataset), **{**kwargs, "split_key": "customer"})
    where = {}
    for name, frame in (("train", keyed.train), ("val", keyed.val), ("test", keyed_test.open())):
        for key in client.compute(frame, sync=True)["customer"].unique():
            where.setdefault(key, set()).add(name)
    assert all(len(splits) == 1 for splits in where.values()) and len(where) == 400
    with pytest.raises(DataError, match="split_key 'member' left a split empty"):  # 2 keys cannot fill 3 splits
        collect_dataset(client, str(dataset), **{**kwargs, "split_key": "member"})


def test_a_leak_is_found_on_the_samples_train_rows_and_dropped_without_moving_a_row(dataset, cluster, tmp_path):
    from synthloop.cluster_data import collect_dataset

    _, client = cluster
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    rng = np.random.default_rng(4)
    for path in sorted(dataset.glob("*.parquet")):  # what a churned customer refunds: nothing for the others
        frame = pd.read_parquet(path)
        frame["refund"] = np.where(frame["churned"] == "yes", rng.gamma(2.0, 30.0, len(frame)).round(2), 0.0)
        frame.to_parquet(leaky / path.name, index=False)
    kwargs = dict(target="churned", task=None, column_types={}, drop=[], val_fraction=0.2, test_fraction=0.2, seed=0,
                  sample_rows=1000)
    data, sealed = collect_dataset(client, str(leaky), **kwargs)
    kept, kept_sealed = collect_dataset(client, str(leaky), **{**kwargs, "leak_check": "off"})
    assert "refund" not in data.schema.features and "refund" in kept.schema.features
    assert "refund" not in data.sample.columns and "target leak" in data.schema.dropped["refund"]
    assert any("'refund'" in n and "target leak" in n for n in data.notes), data.notes
    assert "refund" not in data.train.columns and "refund" not in client.compute(data.train, sync=True).columns
    cols = [*data.schema.features, data.schema.target]

    def rows(frame):
        return set(map(tuple, client.compute(frame, sync=True)[cols].astype(str).to_numpy().tolist()))

    # the same rows in each split with or without the column: dropping it moved none
    assert rows(data.val) == rows(kept.val) and rows(sealed.open()) == rows(kept_sealed.open())
    warned, _ = collect_dataset(client, str(leaky), **{**kwargs, "leak_check": "warn"})
    assert "refund" in warned.schema.features and any(n.startswith("warning:") and "'refund'" in n for n in warned.notes)


def _prefect_flow_and_tasks(flow_run_id):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as c:
            fr = await c.read_flow_run(flow_run_id)
            trs = await c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
            return fr, trs

    return asyncio.run(read())


def test_the_loop_runs_on_the_cluster_and_is_recorded(dataset, cluster, prefect_harness, client, mlflow_uri, tmp_path):
    import mlflow.pyfunc

    from synthloop.flows.develop_cluster import develop_cluster
    from synthloop.modelstore import load_model

    local, _ = cluster
    summary = develop_cluster(_config(dataset, local.scheduler_address))
    assert summary["mlflow_run_id"] and summary["prefect_flow_run_id"]
    assert 1 <= len(summary["iterations"]) <= 3
    assert summary["iterations"][0]["decision"] != "stop"  # 0.99 is out of reach: the loop goes back
    assert summary["test_metrics"]["accuracy"] > 0.7
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["test_accuracy"] == pytest.approx(summary["test_metrics"]["accuracy"])
    assert parent.data.params["data.sample_rows"] == str(summary["sample_rows"])
    assert parent.data.tags["synthloop.mode"] == "cluster"
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    names = sorted(c.info.run_name for c in children)
    assert names == [f"{summary['prefect_flow_run_name']}/it-{i}" for i in range(1, len(summary["iterations"]) + 1)]
    first = next(c for c in children if c.info.run_name.endswith("/it-1"))
    assert "val_loss" in first.data.metrics and "baseline_accuracy" in first.data.metrics
    assert first.data.tags["decision"] == summary["iterations"][0]["decision"]
    assert "collect_labels: not on the cluster yet" in first.data.tags["alternatives"]
    artifacts = {f.path for f in client.list_artifacts(first.info.run_id, "plots")}
    assert "plots/loss_curves.png" in artifacts
    assert all(c.info.status == "FINISHED" for c in children)
    second = [c for c in children if c.info.run_name.endswith("/it-2")]
    if second:  # a later iteration is judged against the best so far by the paired noise on validation
        assert second[0].data.metrics["gain_noise"] > 0
        assert second[0].data.metrics["gain_needed"] >= second[0].data.metrics["gain_noise"]
    flow_run, task_runs = _prefect_flow_and_tasks(summary["prefect_flow_run_id"])
    assert flow_run.state.is_completed() and flow_run.name == summary["prefect_flow_run_name"]
    names = {t.name for t in task_runs}
    n = len(summary["iterations"])
    assert {"collect-dataset", "preprocess-on-sample", "evaluate-on-holdout"} <= names
    assert {f"validate-it{i}" for i in range(1, n + 1)} <= names and "train-it1" in names
    assert all(t.state.is_completed() for t in task_runs)

    frame = pd.read_parquet(sorted(dataset.glob("*.parquet"))[0]).head(50)
    model = load_model(f"models:/synthloop-model/{summary['registered_version']}", mlflow_uri)
    pred = model.predict(frame.drop(columns="churned"))
    assert set(pred) <= {"yes", "no"} and (pred == frame.churned.to_numpy()).mean() > 0.6
    # `synthloop predict` with the champion on a pandas-read file
    from synthloop.cli import main

    frame.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(tmp_path / "new.csv"), "--tracking-uri", mlflow_uri, "--out",
                 str(tmp_path / "out.csv"), "--model", f"models:/synthloop-model/{summary['registered_version']}"]) == 0
    assert list(pd.read_csv(tmp_path / "out.csv")["prediction"]) == list(pred)
    # plain MLflow last: loading through pyfunc writes registered_model_meta into a local store's model folder
    pyfunc = mlflow.pyfunc.load_model(summary["model_uri"])
    assert list(pyfunc.predict(frame.drop(columns="churned"))) == list(pred)


def test_the_cluster_path_is_chosen_for_folders_globs_and_dask_mode(dataset):
    from synthloop.cli_cluster import wants_cluster
    from synthloop.config import Config

    def cfg(**o):
        return Config.load(None, {"data.target": "churned", **o})

    assert wants_cluster(cfg(**{"data.source": str(dataset)}))
    assert wants_cluster(cfg(**{"data.source": str(dataset / "*.parquet")}))
    single = str(sorted(dataset.glob("*.parquet"))[0])
    assert not wants_cluster(cfg(**{"data.source": single}))  # today's pandas path stays the default
    assert not wants_cluster(cfg(**{"data.source": single, "dask.address": "tcp://127.0.0.1:8786"}))
    assert wants_cluster(cfg(**{"data.source": single, "dask.mode": "cluster"}))


def test_a_bad_value_in_one_file_is_one_line_naming_it_and_leaves_no_run_running(cluster, prefect_harness, client,
                                                                                tmp_path):
    from synthloop.errors import DataError
    from synthloop.flows.develop_cluster import develop_cluster

    local, _ = cluster
    bad = _write(tmp_path / "bad", bad_file=2)
    with pytest.raises(DataError) as info:
        develop_cluster(_config(bad, local.scheduler_address, **{"dask.sample_rows": 200}))
    message = str(info.value)
    assert "\n" not in message
    assert "part-2.parquet" in message and "'x3'" in message and "'twelve'" in message
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and all(r.info.status != "RUNNING" for r in runs)
    assert any(r.info.status == "FAILED" and "part-2.parquet" in r.data.tags.get("failure_reason", "") for r in runs)


@pytest.mark.parametrize("k", [2, 3])
def test_metrics_from_partition_statistics_match_scikit_learn(k):
    import xgboost as xgb

    from synthloop.cluster_data import BUCKET
    from synthloop.cluster_model import Y, _add, metrics_from_stats, part_stats
    from synthloop.models import baseline_metrics, compute_metrics

    rng = np.random.default_rng(k)
    X = rng.normal(size=(3000, 4)).astype("float32")
    y = (np.digitize(X[:, 0] + rng.normal(scale=0.8, size=3000), [-0.5, 0.5][: k - 1])).astype(float)
    booster = xgb.train({"objective": "binary:logistic"} if k == 2 else {"objective": "multi:softprob", "num_class": k},
                        xgb.DMatrix(X[:2000], label=y[:2000]), 10)
    frame = pd.DataFrame(X[2000:], columns=[f"f{i}" for i in range(4)]).assign(**{Y: y[2000:], BUCKET: 5})
    prior = np.bincount(y[:2000].astype(int), minlength=k) / 2000
    parts = [part_stats(frame.iloc[i:i + 300], booster, list(frame.columns[:4]), "classification", k, prior)
             for i in range(0, 1000, 300)]
    total = parts[0]
    for p in parts[1:]:
        total = _add(total, p)
    proba = booster.inplace_predict(X[2000:])
    proba = np.column_stack([1 - proba, proba]) if k == 2 else proba
    exact = compute_metrics("classification", y[2000:].astype(int), proba.argmax(axis=1), proba, k)
    ours = metrics_from_stats(total, "classification")
    for name in ("accuracy", "balanced_accuracy", "f1_macro", "log_loss"):
        assert ours[name] == pytest.approx(exact[name], abs=1e-6), name
    assert ours["roc_auc"] == pytest.approx(exact["roc_auc"], abs=2e-3)
    base = baseline_metrics("classification", y[:2000].astype(int), y[2000:].astype(int), k)
    ours_base = metrics_from_stats(total, "classification", "baseline")
    for name in ("accuracy", "balanced_accuracy", "f1_macro", "log_loss"):
        assert ours_base[name] == pytest.approx(base[name], abs=1e-6), name


def test_a_stage_failing_mid_loop_ends_the_parent_and_the_iteration_failed(dataset, cluster, prefect_harness, client,
                                                                           monkeypatch):
    from synthloop.flows.develop_cluster import develop_cluster

    local, _ = cluster
    monkeypatch.setenv("SYNTHLOOP_FAULT", "validate:error")
    with pytest.raises(RuntimeError, match="injected permanent fault in validate"):
        develop_cluster(_config(dataset, local.scheduler_address, **{"model.n_estimators": 5}))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert {r.data.tags.get("synthloop.kind") for r in runs} == {"parent", "child"}
    assert all(r.info.status == "FAILED" for r in runs)
    assert all("injected permanent fault" in r.data.tags["failure_reason"] for r in runs)
