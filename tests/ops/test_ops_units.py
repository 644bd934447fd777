"""Drift measures, the deployment file, and the operations commands on a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from synthloop import drift
from synthloop.cli import main
from synthloop.config import Config

ROOT = Path(__file__).resolve().parents[2]


def test_psi_and_ks_tell_a_shift_from_noise():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 3000), "c": rng.choice(["a", "b", "c"], 3000, p=[0.5, 0.3, 0.2])})
    same = pd.DataFrame({"x": rng.normal(0, 1, 3000), "c": rng.choice(["a", "b", "c"], 3000, p=[0.5, 0.3, 0.2])})
    moved = pd.DataFrame({"x": rng.normal(1.0, 1, 3000), "c": rng.choice(["a", "b", "d"], 3000, p=[0.2, 0.3, 0.5])})
    kinds = {"x": "numeric", "c": "categorical"}
    calm = {d.feature: d for d in drift.feature_drift(ref, same, kinds)}
    hot = {d.feature: d for d in drift.feature_drift(ref, moved, kinds)}
    assert calm["x"].psi < 0.02 and calm["x"].ks_pvalue > 0.01 and calm["x"].level == "stable"
    assert calm["c"].psi < 0.02 and calm["c"].ks_pvalue is None
    assert hot["x"].psi > 0.25 and hot["x"].ks_pvalue < 1e-10 and hot["x"].level == "major"
    assert hot["c"].psi > 0.25  # a new category and shifted shares
    assert "2 of 2 features" in drift.summarize(list(hot.values()), 0.25)


def test_missing_values_count_as_drift():
    ref = pd.Series(np.arange(1000, dtype=float))
    cur = ref.copy()
    cur[:400] = np.nan
    assert drift.numeric_psi(ref, cur) > 0.25


def test_prefect_yaml_points_at_the_retrain_flow_with_a_valid_schedule_and_config():
    from prefect.flows import load_flow_from_entrypoint

    from synthloop.deployments.serve import check_schedule

    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    dep = spec["deployments"][0]
    flow = load_flow_from_entrypoint(str(ROOT / dep["entrypoint"]))
    assert flow.name == "retrain"
    check_schedule(dep["schedules"][0]["cron"], dep["schedules"][0]["timezone"])
    cfg = Config.validate_dict(dep["parameters"]["config"])
    assert cfg.data.source == "sklearn:digits" and cfg.retrain.margin == 0.005
    assert dep["work_pool"]["name"] == "synthloop-process"


@pytest.mark.usefixtures("prefect_harness")
def test_runs_compare_promote_rollback_commands(mlflow_uri, client, tmp_path, capsys):
    from synthloop.flows.develop import develop

    ids = []
    for threshold, family in ((0.9, "linear"), (0.99, "linear")):
        cfg = Config.load(None, {"data.source": "sklearn:breast_cancer", "data.target": "target",
                                 "goal.metric": "accuracy", "goal.threshold": threshold, "loop.max_iterations": 1,
                                 "threads": 1, "model.family": family})
        ids.append(develop(cfg)["mlflow_run_id"])
    capsys.readouterr()

    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert ids[0][:8] in out and ids[1][:8] in out and "#/experiments/" in out
    line = next(x for x in out.splitlines() if x.startswith(ids[0][:8]))
    assert " met " in line and "v1" in line

    plot = tmp_path / "cmp.png"
    assert main(["compare", ids[0][:10], ids[1], "--out", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "config.goal.threshold" in out and "0.99" in out and plot.stat().st_size > 10_000
    assert f'#/compare-runs?runs=["{ids[0]}","{ids[1]}"]' in out

    assert main(["promote", "1"]) == 0 and main(["promote", ids[1]]) == 0
    assert "previous is version 1" in capsys.readouterr().out
    assert main(["rollback"]) == 0
    assert "champion is version 1 again" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("synthloop-model", "champion").version) == "1"
    assert main(["promote", "99"]) == 2
    assert "no version 99" in capsys.readouterr().err
    assert main(["compare", ids[0]]) == 2


def test_a_warm_runner_is_used_only_with_the_settings_it_imported_with():
    """The runner's key: the same for the same interpreter, code and import-time settings; another PREFECT_ or
    thread setting gives another key (that command runs in its own process); other variables do not matter."""
    from synthloop import runner

    base = {"HOME": "/home/u", "PREFECT_HOME": "/home/u/.prefect", "PATH": "/bin", "MLFLOW_TRACKING_URI": "a"}
    key = runner.code_key(base)
    assert runner.code_key(dict(base)) == key
    assert runner.code_key({**base, "PATH": "/usr/bin", "MLFLOW_TRACKING_URI": "b", "TERM": "x"}) == key
    assert runner.code_key({**base, "PREFECT_LOGGING_LEVEL": "DEBUG"}) != key
    assert runner.code_key({**base, "OMP_NUM_THREADS": "1"}) != key
    assert runner.code_key({**base, "PREFECT_HOME": "/elsewhere"}) != key
    assert not runner.enabled({**base, "SYNTHLOOP_RUNNER": "off"})
    assert not runner.enabled({**base, "SYNTHLOOP_PREFECT_SERVER": "temporary"})
    assert not runner.enabled({**base, "SYNTHLOOP_RUNNER_CHILD": "123"})  # a fork never starts another runner
    assert runner.enabled(base)
