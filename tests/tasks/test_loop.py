"""The loop's bookkeeping: what ends it, the history's noise margins, and the label audit reused while labels stand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthloop.config import auto_time_budget
from synthloop.loop import LoopState, bound
from synthloop.types import Decision, ValidationReport


def _report(score=0.8, losses=None, audit=None):
    return ValidationReport(metrics={"accuracy": score}, train_metrics={}, baseline={"accuracy": 0.5}, score=score,
                            passed=True, shortfall="", diagnosis={"label_audit": audit} if audit else {},
                            row_losses=losses)


def test_bound_says_what_ended_the_loop():
    go = Decision("regularize", "train", "overfitting")
    assert bound(go, _report(), 2, 6, 10.0, 150.0, next_cost=5.0) == (go, None)
    d, why = bound(go, _report(), 6, 6, 10.0, 150.0)
    assert d.stops and why == "max_iterations" and "max_iterations (6)" in d.reason
    d, why = bound(go, _report(), 2, 6, 120.0, 150.0, next_cost=40.0)  # the next iteration would overrun the budget
    assert d.stops and why == "time_budget" and "regularize" in d.reason
    search = Decision("change_design", "train", "never searched")
    assert bound(search, _report(), 1, 6, 20.0, 150.0, next_cost=10.0)[1] is None
    stop = Decision("stop", "test", "nothing left", {"stopped_by": "no_move_left"})
    assert bound(stop, _report(), 3, 6, 10.0, 150.0)[1] == "no_move_left"
    assert bound(Decision("stop", "test", "goal met"), _report(), 1, 6, 1.0, 150.0)[1] == "goal_met"


def test_the_time_budget_grows_with_the_data():
    assert auto_time_budget(3_000) == auto_time_budget(10_000) == 150.0
    assert 150.0 < auto_time_budget(100_000) < auto_time_budget(1_000_000) <= 1800.0


def test_history_records_the_paired_noise_and_the_audit_is_reused_only_while_labels_stand():
    labelled = pd.DataFrame({"x": np.arange(200.0), "y": np.arange(200) % 2})
    state = LoopState(labelled=labelled, target="y", origin=np.full(200, "real", dtype=object), pool=[], spec=None)
    rng = np.random.default_rng(0)
    base = (rng.random(200) < 0.2).astype(float)
    audit = {"noisy": False, "flagged": [3, 7]}
    state.record(1, "start", "m1", _report(0.80, base, audit), "accuracy", 0.002, labelled["y"].to_numpy())
    assert list(state.flagged) == [3, 7] and state.previous_audit() is audit
    other = (rng.random(200) < 0.2).astype(float)  # as good, wrong on other rows: a noisy comparison
    step = state.record(2, "regularize", "m2", _report(0.81, other), "accuracy", 0.002, labelled["y"].to_numpy())
    assert step.needed > 0.02 and state.best["iteration"] == 2
    state.labelled = labelled.assign(y=1 - labelled["y"])  # re-annotated: the old audit no longer applies
    assert state.previous_audit() is None


def test_the_best_recipe_is_recognised_until_its_design_rows_labels_or_synthetic_rows_change():
    labelled = pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50) % 2})
    state = LoopState(labelled=labelled, target="y", origin=np.full(50, "real", dtype=object), pool=[], spec="A")
    assert not state.same_recipe_as_best()  # nothing trained yet
    state.record(1, "start", "m1", _report(0.8), "accuracy", 0.002, labelled["y"].to_numpy())
    assert state.same_recipe_as_best()
    state.spec = "B"
    assert not state.same_recipe_as_best()
    state.spec, state.synthetic = "A", (labelled[["x"]], labelled["y"])
    assert not state.same_recipe_as_best()
    state.synthetic = None
    state.labelled = labelled.assign(y=labelled["y"].where(labelled.index != 3, 0))  # one label changed
    assert not state.same_recipe_as_best()
    state.labelled = pd.concat([labelled, labelled.tail(1).set_axis([50])])  # one more row
    assert not state.same_recipe_as_best()


def test_new_synthetic_rows_replace_the_best_only_for_a_gain_beyond_the_noise():
    labelled = pd.DataFrame({"x": np.arange(200.0), "y": np.arange(200) % 2})
    y = labelled["y"].to_numpy()
    state = LoopState(labelled=labelled, target="y", origin=np.full(200, "real", dtype=object), pool=[], spec="A")
    rng = np.random.default_rng(0)
    state.record(1, "start", "m1", _report(0.80, (rng.random(200) < 0.2).astype(float)), "accuracy", 0.002, y)
    state.synthetic = (labelled[["x"]], labelled["y"])
    step = state.record(2, "add_synthetic", "m2", _report(0.81, (rng.random(200) < 0.19).astype(float)),
                        "accuracy", 0.002, y)
    assert 0.01 < step.needed and state.best["iteration"] == 1  # +0.01 within the paired noise: not kept
    state.build_on_best()
    assert state.synthetic is None
    state.spec = "B"  # a design change without synthetic rows counts any gain
    state.record(3, "change_design", "m3", _report(0.805, (rng.random(200) < 0.195).astype(float)), "accuracy",
                 0.002, y)
    assert state.best["iteration"] == 3
    state.synthetic = (labelled[["x"]], labelled["y"])
    same = state.best["report"].row_losses.copy()
    same[:30] = 0.0  # right on 30 more rows than the best: a clear gain
    state.record(4, "add_synthetic", "m4", _report(0.90, same), "accuracy", 0.002, y)
    assert state.best["iteration"] == 4


def test_the_terminal_says_why_an_iteration_is_not_kept_and_what_the_next_move_builds_on():
    from synthloop.flows.develop import _not_kept_line

    labelled = pd.DataFrame({"x": np.arange(200.0), "y": np.arange(200) % 2})
    y = labelled["y"].to_numpy()
    state = LoopState(labelled=labelled, target="y", origin=np.full(200, "real", dtype=object), pool=[], spec="A")
    rng = np.random.default_rng(0)
    before = state.best
    step = state.record(1, "start", "m1", _report(0.80, (rng.random(200) < 0.2).astype(float)), "accuracy", 0.002, y)
    assert _not_kept_line(before, state.best, step, state.synthetic, False, "accuracy", "start", False) is None  # the first is best
    state.synthetic = (labelled[["x"]], labelled["y"])
    before = state.best
    step = state.record(2, "add_synthetic", "m2", _report(0.79, (rng.random(200) < 0.21).astype(float)),
                        "accuracy", 0.002, y)
    line = _not_kept_line(before, state.best, step, state.synthetic, False, "accuracy", "add_synthetic", False)
    assert "accuracy 0.7900 with the new synthetic rows, against iteration 1's 0.8000" in line
    assert "next move starts from iteration 1" in line
    state.build_on_best()
    state.spec = "B"
    before = state.best
    # rmse: scores are kept oriented (negated); the line shows them in the metric's own sign
    state.best = {**state.best, "score": -30.0}
    before = state.best
    step = state.record(3, "change_design", "m3", ValidationReport(
        metrics={"rmse": 31.0}, train_metrics={}, baseline={"rmse": 50.0}, score=31.0, passed=True, shortfall="",
        diagnosis={}, row_losses=None), "rmse", 0.002, y)
    line = _not_kept_line(before, state.best, step, state.synthetic, False, "rmse", "change_design", True)
    assert "rmse 31.0000 after change_design, against iteration 1's 30.0000" in line
    assert line.endswith("not kept, iteration 1 stays the best")  # the loop stops here: no next move
    # a tie keeps the earlier iteration, and says so without "against" beside two equal scores
    step = state.record(4, "change_design", "m4", ValidationReport(
        metrics={"rmse": 30.0}, train_metrics={}, baseline={"rmse": 50.0}, score=30.0, passed=True, shortfall="",
        diagnosis={}, row_losses=None), "rmse", 0.002, y)
    line = _not_kept_line(before, state.best, step, state.synthetic, False, "rmse", "change_design", True)
    assert "rmse 30.0000 after change_design, no better than iteration 1's 30.0000: not kept" in line
