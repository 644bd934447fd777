"""The three data strategies, synthetic rows, and the sealed test, end to end through Prefect and MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthloop.flows.develop import develop
from synthloop.config import Config
from synthloop.modelstore import load_model
from synthloop.splits import SealedTest
from synthloop.synth import GENERATORS

pytestmark = pytest.mark.usefixtures("prefect_harness")

HARD = "simulate:classification?n_rows=400&class_sep=0.7&n_informative=5"


def _children(client, parent_id):
    exp = client.get_run(parent_id).info.experiment_id
    runs = client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    return {int(r.data.tags["synthloop.iteration"]): r for r in runs if r.data.tags.get("synthloop.trial") != "true"}


def test_synthetic_rows_go_to_train_only_and_get_a_quality_report(mlflow_uri, client):
    cfg = Config.load(None, {"data.source": HARD, "goal.metric": "accuracy", "goal.threshold": 0.99,
                             "loop.max_iterations": 2})
    summary = develop(cfg)
    assert summary["iterations"][0]["decision"] == "add_synthetic"
    children = _children(client, summary["mlflow_run_id"])
    second = children[2]
    assert int(second.data.params["rows_synthetic"]) > 0
    assert int(second.data.params["rows_real"]) == summary["iterations"][0]["train_rows"]
    for key in ("synth_fidelity_column_shapes", "synth_utility_synthetic", "synth_utility_augmented",
                "synth_privacy_exact_copies"):
        assert key in second.data.metrics
    assert second.data.metrics["synth_fidelity_column_shapes"] > 0.8
    # synthetic.generator: auto (the default) chose by cross-validation on train, and the run says what and why
    chosen = second.data.params["synthetic.generator"]
    assert second.data.params["synthetic.generator_setting"] == "auto" and chosen in GENERATORS
    cv = {name: second.data.metrics[f"synth_choice_cv_{name}_augmented"] for name in GENERATORS}
    assert cv[chosen] >= max(cv.values()) - 0.002
    assert second.data.metrics["synth_choice_cv_folds"] == 3 and "synth_choice_cv_real" in second.data.metrics
    assert second.data.metrics["synth_privacy_exact_copies"] == 0 and "synth_privacy_dcr_floor" in second.data.metrics
    parent = client.get_run(summary["mlflow_run_id"])
    # validation and test stay the real rows split off at the start
    assert parent.data.params["data.val_rows"] == "80" and parent.data.params["data.test_rows"] == "80"


def test_from_scratch_buys_rows_and_labels_within_budget(mlflow_uri, client, tmp_path):
    cfg = Config.load(None, {"data.source": "sklearn:digits", "data.target": "target", "data.strategy": "from_scratch",
                             "data.cost_per_row": 0.2, "annotation.cost_per_label": 0.3, "annotation.budget": 120.0,
                             "annotation.batch_size": 100, "goal.metric": "accuracy", "goal.threshold": 0.99,
                             "loop.max_iterations": 4})
    summary = develop(cfg)
    assert 0 < summary["label_cost"] <= 120.0
    ledger_csv = client.download_artifacts(summary["mlflow_run_id"], "ledger.csv", str(tmp_path))
    ledger = pd.read_csv(ledger_csv)
    assert ledger["total"].sum() == pytest.approx(summary["label_cost"])
    assert ledger["total"].sum() <= 120.0 + 1e-9
    assert (ledger["source"] == "pool").any(), "from scratch, the first rows are bought too"
    bought = [it for it in summary["iterations"] if it["decision"] == "collect_labels"]
    assert bought, "with labels to buy and a rising learning curve the loop buys more"


def test_pretrain_finetune_continues_boosting_from_the_pretrained_model(mlflow_uri, client):
    cfg = Config.load(None, {"data.source": "simulate:classification?n_rows=1500&class_sep=1.0",
                             "data.strategy": "pretrain_finetune", "data.initial_labelled": 40,
                             "data.pretrain_rows": 2000, "goal.metric": "accuracy", "goal.threshold": 0.6,
                             "model.family": "xgboost", "model.n_estimators": 50})
    summary = develop(cfg)
    model = load_model(summary["model_uri"], summary["tracking_uri"])
    booster = model.pipeline.named_steps["model"].get_booster()
    own_rounds = client.get_run(summary["mlflow_run_id"])
    children = _children(client, summary["mlflow_run_id"])
    best = children[summary["best_iteration"]]
    fine_tune_rounds = len(client.get_metric_history(best.info.run_id, "train_loss"))
    assert booster.num_boosted_rounds() > fine_tune_rounds, "fine-tuning must add rounds to the pre-trained booster"
    assert own_rounds.info.status == "FINISHED"


def test_changing_test_labels_changes_only_the_test_metrics(mlflow_uri, client, monkeypatch):
    """The sealed test steers nothing: corrupt every test label and the loop must do exactly the same."""
    cfg = Config.embedded_default()
    cfg.loop.max_iterations = 3
    honest = develop(cfg)

    import synthloop.splits as splits_module  # the collect stage splits through it (synthloop.preflight.checked_split)

    real_split = splits_module.split_frame

    def split_with_wrong_test_labels(frame, schema, **kwargs):
        train, val, sealed = real_split(frame, schema, **kwargs)
        test = sealed.open()
        classes = np.array(schema.classes)
        wrong = test.copy()
        wrong[schema.target] = classes[(np.searchsorted(classes, test[schema.target]) + 1) % len(classes)]
        return train, val, SealedTest(wrong)

    monkeypatch.setattr(splits_module, "split_frame", split_with_wrong_test_labels)
    corrupted = develop(cfg)

    strip = [{k: it[k] for k in ("decision", "reason", "val_metrics", "model", "train_rows")} for it in honest["iterations"]]
    assert strip == [{k: it[k] for k in ("decision", "reason", "val_metrics", "model", "train_rows")}
                     for it in corrupted["iterations"]]
    assert honest["best_model"] == corrupted["best_model"]
    a, b = load_model(honest["model_uri"], honest["tracking_uri"]), load_model(corrupted["model_uri"], corrupted["tracking_uri"])
    X = pd.DataFrame(np.random.default_rng(0).integers(0, 16, size=(50, 64)).astype(float),
                     columns=[f"pixel_{i}" for i in range(64)])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert honest["test_metrics"]["accuracy"] > 0.8 > corrupted["test_metrics"]["accuracy"]


def test_the_sealed_test_opens_once():
    sealed = SealedTest(pd.DataFrame({"a": [1, 2], "target": [0, 1]}))
    assert "sealed" in repr(sealed) and "1, 2" not in repr(sealed)
    assert len(sealed.open()) == 2
    from synthloop.errors import SealedTestError

    with pytest.raises(SealedTestError, match="already opened"):
        sealed.open()
