"""The policy: diagnosis → one action, never repeating what did not help; the goal check against the baseline."""

from __future__ import annotations

from synthloop.config import GoalConfig
from synthloop.judge import check_goal
from synthloop.policy import Options, RuleBasedPolicy, Step, unhelpful_actions
from synthloop.types import ValidationReport


def _report(passed=False, **diagnosis):
    return ValidationReport(metrics={"accuracy": 0.8}, train_metrics={"accuracy": 0.85}, baseline={"accuracy": 0.1},
                            score=0.8, passed=passed, shortfall="" if passed else "accuracy 0.8 misses the goal",
                            diagnosis=diagnosis)


RISING = {"rows": [50, 100], "scores": [0.7, 0.8], "gain": 0.1, "rising": True}
OVERFIT = {"train": 1.0, "val": 0.8, "gap": 0.2, "overfit": True, "underfit": False}
ALL = Options(labels_affordable=100, synthetic_available=True, designs_untried=("linear",))


def test_goal_met_stops_and_goes_to_test():
    d = RuleBasedPolicy().decide(_report(passed=True), [Step(1, "start", 0.8)], ALL)
    assert d.action == "stop" and d.stage == "test" and d.stops


def test_rising_learning_curve_buys_labels_when_affordable_else_synthetic():
    policy = RuleBasedPolicy()
    d = policy.decide(_report(learning_curve=RISING), [Step(1, "start", 0.8)], ALL)
    assert (d.action, d.stage) == ("collect_labels", "collect") and "learning curve" in d.reason
    broke = Options(labels_affordable=0, synthetic_available=True, designs_untried=("linear",),
                    blocked={"collect_labels": "label budget spent"})
    d = policy.decide(_report(learning_curve=RISING), [Step(1, "start", 0.8)], broke)
    assert d.action == "add_synthetic"
    assert any("label budget spent" in a for a in d.alternatives)


def test_overfitting_regularizes_and_an_unhelpful_action_is_not_repeated():
    policy = RuleBasedPolicy(min_improvement=0.002)
    d = policy.decide(_report(gap=OVERFIT), [Step(1, "start", 0.8)], ALL)
    assert d.action == "regularize" and d.stage == "train"
    history = [Step(1, "start", 0.8), Step(2, "regularize", 0.79)]
    d = policy.decide(_report(gap=OVERFIT), history, ALL)
    assert d.action != "regularize"
    assert any(a.startswith("regularize: tried") for a in d.alternatives)


def test_nothing_left_stops_with_the_reason():
    none = Options(labels_affordable=0, synthetic_available=False, designs_untried=(), can_train_longer=False,
                   can_regularize=False)
    d = RuleBasedPolicy().decide(_report(learning_curve=RISING), [Step(1, "start", 0.8)], none)
    assert d.stops and "no action left" in d.reason


def test_unhelpful_actions_compare_with_the_best_so_far():
    history = [Step(1, "start", 0.7), Step(2, "collect_labels", 0.8), Step(3, "add_synthetic", 0.79),
               Step(4, "change_design", 0.85)]
    assert set(unhelpful_actions(history, 0.002)) == {"add_synthetic"}


def test_goal_needs_threshold_and_a_clear_gain_over_the_baseline():
    goal = GoalConfig(metric="accuracy", threshold=0.6)
    assert check_goal(goal, "classification", {"accuracy": 0.7}, {"accuracy": 0.5}) == (True, "")
    ok, why = check_goal(goal, "classification", {"accuracy": 0.62}, {"accuracy": 0.6})
    assert not ok and "baseline" in why
    ok, why = check_goal(GoalConfig(metric="rmse", threshold=10), "regression", {"rmse": 12.0}, {"rmse": 30.0})
    assert not ok and "rmse 12.0000 misses the goal <= 10" in why


def test_a_gain_within_the_noise_of_few_validation_rows_is_not_clear():
    goal = GoalConfig(metric="accuracy")
    assert check_goal(goal, "classification", {"accuracy": 0.8}, {"accuracy": 0.6}, n_val=1000)[0]
    ok, why = check_goal(goal, "classification", {"accuracy": 0.8}, {"accuracy": 0.6}, n_val=10)
    assert not ok and "on 10 validation rows" in why


def _open_report(**diagnosis):
    return ValidationReport(metrics={"accuracy": 0.8}, train_metrics={"accuracy": 0.99}, baseline={"accuracy": 0.5},
                            score=0.8, passed=True, shortfall="", diagnosis=diagnosis)


OPEN = Options(labels_affordable=0, synthetic_available=True, designs_untried=("linear",),
               blocked={"collect_labels": "no unlabelled rows left to buy"})


def test_without_a_threshold_a_passed_goal_goes_on_to_a_design_search():
    policy = RuleBasedPolicy(open_ended=True)
    d = policy.decide(_open_report(), [Step(1, "start", 0.8)], OPEN)
    assert d.action == "change_design" and "never searched" in d.reason
    assert any(a.startswith("regularize: no evidence") for a in d.alternatives)


def test_without_a_threshold_the_path_follows_the_evidence_and_stops_when_nothing_can_pay():
    policy = RuleBasedPolicy(open_ended=True)
    searched = Options(labels_affordable=0, synthetic_available=True, designs_untried=())
    history = [Step(1, "start", 0.80), Step(2, "change_design", 0.85, needed=0.01)]
    d = policy.decide(_open_report(learning_curve=RISING), history, searched)
    assert d.action == "add_synthetic" and "learning curve" in d.reason
    d = policy.decide(_open_report(gap=OVERFIT), history, searched)
    assert d.action == "regularize"
    d = policy.decide(_open_report(), history, searched)  # no finding, design searched: synthetic rows, if CV says
    assert d.action == "add_synthetic" and d.evidence["synthetic_if_cv_helps"] and "last move" in d.reason
    assert not policy.decide(_open_report(learning_curve=RISING), history, searched).evidence.get(
        "synthetic_if_cv_helps")  # asked for by a finding: added without the check
    tried = history + [Step(3, "add_synthetic", 0.85, needed=0.01)]  # it did not pay: nothing else can
    d = policy.decide(_open_report(), tried, searched)
    assert d.stops and d.evidence["stopped_by"] == "no_move_left" and "no move left" in d.reason
    no_synthetic = Options(labels_affordable=0, synthetic_available=False, designs_untried=())
    assert policy.decide(_open_report(), history, no_synthetic).stops
    with_labels = Options(labels_affordable=50, synthetic_available=True, designs_untried=("linear",))
    assert policy.decide(_open_report(learning_curve=RISING), history[:1], with_labels).action == "collect_labels"


def test_a_gain_within_the_noise_does_not_count_as_paying():
    history = [Step(1, "start", 0.80), Step(2, "add_synthetic", 0.805, needed=0.012),
               Step(3, "regularize", 0.83, needed=0.012)]
    assert set(unhelpful_actions(history, 0.002)) == {"add_synthetic"}
    policy = RuleBasedPolicy(open_ended=True)
    searched = Options(synthetic_available=True, designs_untried=())
    d = policy.decide(_open_report(learning_curve=RISING), history[:2], searched)
    assert d.action != "add_synthetic" and any("add_synthetic: tried" in a for a in d.alternatives)


def test_paired_noise_is_smaller_for_models_that_err_on_the_same_rows():
    import numpy as np

    from synthloop.judge import gain_noise, row_losses

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    ref = np.where(rng.random(400) < 0.2, 1 - y, y)
    close = ref.copy()
    close[:8] = y[:8]  # fixes a few of the reference's rows, errs on the same others
    far = np.where(rng.random(400) < 0.2, 1 - y, y)  # as good, but errs on other rows
    lr, lc, lf = (row_losses("accuracy", y, p, None) for p in (ref, close, far))
    assert 0 < gain_noise("accuracy", lc, lr, 0.8) < gain_noise("accuracy", lf, lr, 0.8) / 2
    yr = rng.normal(10, 2, 300)
    a, b = yr + rng.normal(0, 1, 300), yr + rng.normal(0, 1, 300)
    se = gain_noise("rmse", row_losses("rmse", yr, a, None), row_losses("rmse", yr, b, None), 1.0)
    assert 0 < se < 0.2


def test_class_balanced_synthetic_rows_only_for_a_metric_that_weighs_classes_alike():
    missed = {"classes": {"worst_class": "yes", "worst_recall": 0.3, "imbalanced": True}}
    searched = Options(labels_affordable=0, synthetic_available=True, designs_untried=(),
                       blocked={"collect_labels": "no unlabelled rows left to buy"})
    history = [Step(1, "start", 0.80), Step(2, "change_design", 0.79, needed=0.01)]
    d = RuleBasedPolicy(open_ended=True, metric="balanced_accuracy").decide(_open_report(**missed), history, searched)
    assert d.action == "add_synthetic" and d.evidence.get("rebalance") and "recall 0.30" in d.reason
    # accuracy rewards the true class shares: the missed class is no reason for equal shares, so synthetic rows
    # come only as the last move, and only if cross-validation on train says they help
    d = RuleBasedPolicy(open_ended=True, metric="accuracy").decide(_open_report(**missed), history, searched)
    assert d.action == "add_synthetic" and not d.evidence.get("rebalance")
    assert d.evidence.get("synthetic_if_cv_helps")
    d = RuleBasedPolicy(metric="accuracy").decide(_report(**missed), history, searched)
    assert not d.evidence.get("rebalance")


def test_an_imbalanced_target_under_the_default_metric_gets_a_hint_and_a_chosen_metric_none():
    import pandas as pd

    from synthloop.flows.develop import _imbalance_note
    from synthloop.types import Schema

    schema = Schema("Class", "classification", {"x": "numeric"}, classes=("bad", "good"))
    skewed = pd.Series(["good"] * 95 + ["bad"] * 5)
    note = _imbalance_note(None, schema, skewed)
    assert "95.0% 'good'" in note and "--goal roc_auc" in note
    assert _imbalance_note("roc_auc", schema, skewed) is None  # the user chose the metric
    assert _imbalance_note(None, schema, pd.Series(["good"] * 80 + ["bad"] * 20)) is None
    three = Schema("k", "classification", {"x": "numeric"}, classes=("a", "b", "c"))
    assert "--goal log_loss" in _imbalance_note(None, three, pd.Series(["a"] * 92 + ["b"] * 4 + ["c"] * 4))
    assert _imbalance_note(None, Schema("y", "regression", {"x": "numeric"}), pd.Series([1.0] * 100)) is None


def test_the_missing_note_names_the_gappiest_features_of_train():
    import numpy as np
    import pandas as pd

    from synthloop.flows.develop import _missing_note

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.normal(size=200) for c in "abcdefg"})
    assert _missing_note(frame, list(frame.columns)) is None
    for column, share in zip("abcdef", (0.5, 0.1, 0.3, 0.005, 0.2, 0.05)):
        frame.loc[frame.sample(frac=share, random_state=1).index, column] = np.nan
    note = _missing_note(frame, list(frame.columns))
    assert note.startswith("6 of 7 feature columns have missing values in train ('a' 50%, 'c' 30%, 'e' 20%, 'b' 10%, "
                           "2 more)")
    assert "no row is dropped for a missing feature" in note
    assert "'d' <1%" in _missing_note(frame, ["d", "g"])
