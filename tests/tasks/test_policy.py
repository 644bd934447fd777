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
