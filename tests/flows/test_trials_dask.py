"""Design trials on a real Dask LocalCluster (2 workers × 1 thread, tiny data), through Prefect and MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthloop.types import Schema, TrainingSet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    from synthloop.parallel import local_cluster_kwargs

    with LocalCluster(**local_cluster_kwargs(2)) as cl, Client(cl, set_as_default=False) as client:
        yield cl, client


def _data(n: int = 240, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"x{i}" for i in range(5)])
    y = ((X.x0 + 0.5 * X.x1 ** 2 + rng.normal(scale=0.5, size=n)) > 0.5).astype(int).to_numpy()
    schema = Schema("y", "classification", {c: "numeric" for c in X.columns}, classes=(0, 1))
    return TrainingSet(X, y, np.full(n, "real", dtype=object)), schema


def test_trial_search_runs_on_the_cluster_and_picks_the_best_cv_score(cluster, prefect_harness, client):
    from prefect import flow

    from synthloop.flows.trials import record_search, search_designs
    from synthloop.design import design_candidates
    from synthloop.models import default_spec
    from synthloop.tracking import Tracker

    local, dask_client = cluster
    data, schema = _data(6000)  # rows that would exceed Prefect's 512 KB limit on flow parameters
    current = default_spec("xgboost", n_estimators=20)
    candidates = design_candidates(current, schema, data.y, trials=5)
    lines = []

    @flow
    def parent_flow():
        return search_designs(data, candidates, schema, "accuracy", 1, threads=1, seed=0,
                              current_family="xgboost", address=local.scheduler_address, say=lines.append)

    search = parent_flow()
    workers = set(dask_client.scheduler_info()["workers"])
    ranked = search["ranked"]
    assert search["plan"].mode == "address"
    assert len(ranked) == len(candidates)
    assert {t["worker"] for t in ranked} <= workers
    assert all(t["threads"] == 1 for t in ranked)  # 2 slots on a host with 2 cores (or fewer): 1 thread each
    others = [t for t in ranked if t["spec"] != current]
    single = search["single"]
    kept = next(t for t in ranked if t["spec"] == current)
    best_other = max(t["score"] for t in others)
    # the best design other than the current one, unless the current one scores best: then it stays
    assert single["score"] == (kept["score"] if kept["score"] > best_other else best_other)
    if search["ensemble"] is not None and search["ensemble"]["score"] > single["score"]:
        assert search["choice"]["spec"].family == "ensemble"
    else:
        assert search["choice"]["spec"].family == single["spec"].family
    assert search["runner_up"] is not search["chosen_trial"]
    assert all(t["oof"].shape == (len(data.y), 2) for t in ranked)  # out-of-fold probabilities came back
    assert "Dask cluster at" in lines[0]

    tracker = Tracker(None, "trials")
    parent = tracker.client.create_run(tracker.experiment_id).info.run_id
    record_search(tracker, parent, 1, "accuracy", search)
    runs = client.search_runs([tracker.experiment_id], "tags.`synthloop.trial` = 'true'")
    assert len(runs) == len(candidates) + (search["ensemble"] is not None)
    assert {r.data.tags["worker"] for r in runs if r.data.params["family"] != "ensemble"} <= workers
    roles = sorted(r.data.tags["synthloop.trial_role"] for r in runs)
    assert roles.count("choice") == 1 and roles.count("runner_up") == 1
    tags = client.get_run(parent).data.tags
    assert tags["design_choice_it1"] == search["chosen_trial"]["label"]


@pytest.mark.parametrize("forks", ["1", "0"])
def test_a_small_search_runs_in_forks_or_serially_here_and_says_why(prefect_harness, monkeypatch, forks):
    import os

    from prefect import flow

    from synthloop.flows.trials import search_designs
    from synthloop.design import design_candidates
    from synthloop.models import default_spec

    monkeypatch.setenv("SYNTHLOOP_FORKED_TRIALS", forks)
    data, schema = _data(120)
    candidates = design_candidates(default_spec("linear"), schema, data.y, trials=3)
    lines = []

    @flow
    def parent_flow():
        return search_designs(data, candidates, schema, "accuracy", 2, threads=2, seed=0, current_family="linear",
                              say=lines.append)

    search = parent_flow()
    workers = {t["worker"] for t in search["ranked"]}
    if forks == "1":
        assert search["plan"].mode == "forks" and "2 at a time in forks of this process" in lines[0]
        assert all(w.startswith("fork ") for w in workers) and f"fork {os.getpid()}" not in workers
    else:
        assert search["plan"].mode == "serial" and "small search" in lines[0]
        assert workers == {"in-process"}
    assert len(search["ranked"]) == 3 and search["chosen_trial"]["spec"] != default_spec("linear")


def test_xgboost_dask_trains_on_the_cluster(cluster):
    import dask.dataframe as dd

    from synthloop.parallel import fit_xgboost_dask, predict_xgboost_dask

    _, dask_client = cluster
    data, _ = _data(400)
    frame = data.X.assign(y=data.y)
    ddf = dd.from_pandas(frame, npartitions=4)
    out = fit_xgboost_dask(dask_client, ddf, "y", task="classification", params={"max_depth": 3},
                           num_boost_round=15, eval_frame=ddf, n_classes=2)
    loss = out["history"]["train"]
    assert len(loss) == 15 and loss[-1] < loss[0]
    proba = predict_xgboost_dask(dask_client, out["booster"], ddf[out["features"]])
    assert ((np.asarray(proba) > 0.5).astype(int) == data.y).mean() > 0.8


def test_an_unreachable_address_is_one_line_error():
    from synthloop.parallel import DaskAddressError, connect

    with pytest.raises(DaskAddressError, match="no scheduler answers"):
        connect("tcp://127.0.0.1:9", timeout=1)


def test_a_search_on_the_cluster_starts_no_trial_after_its_deadline(cluster, prefect_harness):
    """The serial search stopped at its share of the time budget, the Dask one did not: hotel_rates' search
    ran 170 s of a 186 s budget. Now no trial starts after the deadline, and none is cut off halfway."""
    import time

    from prefect import flow

    from synthloop.design import design_candidates
    from synthloop.flows.trials import search_designs
    from synthloop.models import default_spec

    local, _ = cluster
    data, schema = _data(600)
    candidates = design_candidates(default_spec("xgboost", n_estimators=20), schema, data.y, trials=6)

    @flow
    def parent_flow(deadline):
        return search_designs(data, candidates, schema, "accuracy", 1, threads=1, seed=0, current_family="xgboost",
                              address=local.scheduler_address, deadline=deadline)

    late = parent_flow(time.monotonic())  # already past: the two that always run, then no more
    assert len(late["ranked"]) == 2 and {repr(t["spec"]) for t in late["ranked"]} == set(map(repr, candidates[:2]))
    assert len(parent_flow(time.monotonic() + 600)["ranked"]) == len(candidates)
