"""Retrain promotion and no-promotion on a real MLflow registry, through real Prefect."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_breast_cancer

from synthloop.flows.retrain import retrain
from synthloop import registry
from synthloop.config import Config

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _csv(path, shift: float = 0.0):
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.copy()
    frame["mean radius"] = frame["mean radius"] + shift * frame["mean radius"].std()
    frame.to_csv(path, index=False)
    return str(path)


def _config(source: str, **overrides) -> Config:
    base = {"data.source": source, "data.target": "target", "data.task": "classification",
            "goal.metric": "accuracy", "goal.threshold": 0.9, "loop.max_iterations": 1, "threads": 1,
            "model.family": "linear", "retrain.reference_rows": 200}
    return Config.load(None, {**base, **overrides})


def test_champion_changes_only_when_the_challenger_is_better(tmp_path, mlflow_uri, client, capsys):
    source = _csv(tmp_path / "cancer.csv")
    # 1. no champion yet: a weak model (12 labelled rows) that meets a modest goal becomes champion
    first = retrain(_config(source, **{"data.initial_labelled": 12, "goal.threshold": 0.6}))
    assert first["promoted"] and "no champion yet" in first["reason"]
    assert not first["drift"]["measured"]
    v1 = first["challenger_version"]
    assert str(registry.champion(client, "synthloop-model").version) == v1

    # 2. all labelled rows: clearly better on the same fresh validation rows → promoted, v1 kept as previous
    second = retrain(_config(source, **{"retrain.margin": 0.01}))
    assert second["promoted"], second["reason"]
    v2 = second["challenger_version"]
    assert second["champion_val"]["accuracy"] + 0.01 < second["challenger_val"]["accuracy"]
    assert str(registry.champion(client, "synthloop-model").version) == v2
    assert str(registry.version_by_alias(client, "synthloop-model", "previous").version) == v1
    assert second["drift"]["measured"] and second["drift"]["features"][0]["psi"] < 0.1  # same data: stable

    # 3. shifted data, a margin no challenger can clear → champion kept, the reason says why
    shifted = _csv(tmp_path / "cancer_shifted.csv", shift=2.0)
    third = retrain(_config(shifted, **{"retrain.margin": 0.5}))
    assert not third["promoted"] and "champion kept" in third["reason"] and "margin 0.5" in third["reason"]
    assert str(registry.champion(client, "synthloop-model").version) == v2
    worst = third["drift"]["features"][0]
    assert worst["feature"] == "mean radius" and worst["level"] == "major" and worst["ks_pvalue"] < 1e-6

    record = client.get_run(third["mlflow_run_id"])
    assert record.data.tags["decision"] == "kept" and "margin" in record.data.tags["reason"]
    assert record.data.metrics["drift_psi.mean radius"] > 0.25 and record.data.metrics["promoted"] == 0.0
    challenger = client.get_run(third["challenger_run_id"])
    assert challenger.data.tags["promotion"] == "kept"
    assert {a.path for a in client.list_artifacts(third["challenger_run_id"], "reference")} >= {
        "reference/features.parquet", "reference/kinds.json"}

    # `synthloop runs` lists the retrains, newest first, with their decisions and scores
    import json

    from synthloop.cli import main

    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    retrains = [r for r in rows if r["kind"] == "retrain"]
    assert [r["decision"] for r in retrains] == ["kept", "promoted", "promoted"]
    assert retrains[0]["drift_psi_max"] > 0.25 and retrains[2]["drift_psi_max"] is None
    assert retrains[1]["challenger"] == pytest.approx(second["challenger_val"]["accuracy"])
    assert {r["run_id"] for r in rows if r["kind"] == "develop"} >= {third["challenger_run_id"]}
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    kept = next(line for line in out.splitlines() if line.startswith(third["mlflow_run_id"][:8]))
    assert "kept" in kept and f"v{third['challenger_version']} vs v{v2}" in kept and "on the same fresh" in kept

    # 4. rollback: the previous champion comes back, the current one becomes previous
    change = registry.rollback(client, "synthloop-model")
    assert (change.champion, change.previous) == (v1, v2)
    assert str(registry.champion(client, "synthloop-model").version) == v1


def test_a_challenger_that_missed_its_goal_is_never_promoted(tmp_path, mlflow_uri, client):
    from synthloop.tasks.retrain import promote_if_better

    comparison = {"challenger": {"accuracy": 0.99}, "champion": None}
    outcome = promote_if_better(client, "m", "1", comparison, "accuracy", 0.0, None, True, goal_met=False)
    assert not outcome["promoted"] and "missed its goal" in outcome["reason"] and "no champion yet" in outcome["reason"]


def test_decide_respects_direction_and_margin():
    assert registry.decide("rmse", 9.0, 10.0, 0.5, "3")[0] is True
    assert registry.decide("rmse", 9.8, 10.0, 0.5, "3")[0] is False
    assert registry.decide("accuracy", 0.91, 0.90, 0.01, "3")[0] is False  # gain equal to the margin is not enough
    promote, reason = registry.decide("accuracy", 0.8, None, 0.01)
    assert promote and "no champion yet" in reason
