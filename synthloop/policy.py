"""The loop's policy: from a validation report and the history, one action on one stage.

A policy is any object with `decide(report, history, options) -> Decision`; the flow takes it as a
parameter, so it can be replaced. :class:`RuleBasedPolicy` maps the diagnosis to actions, never
repeats an action that did not help, and says what it passed over and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from synthloop.types import Decision, ValidationReport

ACTION_STAGE = {
    "collect_labels": "collect",
    "add_synthetic": "collect",
    "reannotate": "annotate",
    "change_design": "train",
    "train_longer": "train",
    "regularize": "train",
}


@dataclass(frozen=True)
class Step:
    """One finished iteration: the action that led to it ("start" for the first) and its oriented score.

    `needed` is the gain over the best score before it that would have counted as real: the loop's minimum
    improvement in the metric's units, or the noise of a paired comparison on the validation rows if larger.
    """

    iteration: int
    action: str
    score: float
    needed: float = 0.0


@dataclass(frozen=True)
class Options:
    """What the loop can still do: the flow computes these from budgets and state."""

    labels_affordable: int = 0
    synthetic_available: bool = False
    designs_untried: tuple[str, ...] = ()
    can_train_longer: bool = True
    can_regularize: bool = True
    flagged_labels: int = 0
    blocked: dict[str, str] = field(default_factory=dict)


#: Goal metrics that weigh every class alike, so that class-balanced synthetic rows can raise them.
REBALANCE_METRICS = frozenset({"balanced_accuracy", "f1_macro"})


class Policy(Protocol):
    def decide(self, report: ValidationReport, history: Sequence[Step], options: Options) -> Decision: ...


def _why_undertrained(training: dict) -> str:
    return f"validation loss still falling at round {training['best_round'] + 1} of {training['max_rounds']}"


def _why_overfit(gap: dict) -> str:
    return f"train {gap['train']:.4f} is far above validation {gap['val']:.4f} (gap {gap['gap']:.4f}): overfitting"


def unhelpful_actions(history: Sequence[Step], min_improvement: float) -> dict[str, float]:
    """Actions whose iteration did not beat the best score before it by a real margin (`Step.needed`, at least
    `min_improvement`), with the change they made."""
    out: dict[str, float] = {}
    best = float("-inf")
    for step in history:
        if step.action != "start" and step.score < best + max(min_improvement, step.needed):
            out[step.action] = step.score - best
        best = max(best, step.score)
    return out


@dataclass(frozen=True)
class RuleBasedPolicy:
    """Diagnosis → action, in the order the evidence points, skipping what failed before.

    With a goal threshold, the order of preference is: noisy labels → re-annotate; learning curve rising →
    more real labels if affordable, else synthetic rows; undertrained → train longer; overfitting → regularize
    (or more data); underfitting → a different design; then whatever is left, until the goal is met.

    Open-ended (`open_ended`: no threshold, "as good as the budgets allow") the loop goes on after the goal
    check passes, and only moves with evidence behind them are candidates: noisy labels → re-annotate; a rising
    learning curve with labels to buy → buy them; a design never searched → a design search (an untuned default
    is the commonest limit on real data); undertrained → train longer; overfitting → regularize; a rising curve
    → synthetic rows; a class the model misses → class-balanced synthetic rows; and, when nothing else is left,
    synthetic rows if the generators' cross-validation on train says they help (the flow checks that before it
    adds any). A move that did not pay is not repeated, and the loop stops when no candidate is left.
    """

    min_improvement: float = 0.002
    open_ended: bool = False
    metric: str | None = None  # the goal metric: class-balanced synthetic rows only where it rewards minority recall

    def _rebalancing_pays(self) -> bool:
        """Whether rows in equal class shares can raise the goal metric. Accuracy, log loss and ROC AUC reward the
        true class shares (or ignore them); training on equal shares moves the model's prior away from them."""
        return self.metric is None or self.metric in REBALANCE_METRICS

    def decide(self, report: ValidationReport, history: Sequence[Step], options: Options) -> Decision:
        if report.passed and not self.open_ended:
            return Decision("stop", "test", f"goal met on validation ({report.score:.4f})")
        if self.open_ended:
            return self._decide_open(report, history, options)
        d = report.diagnosis
        lc, gap, training = d.get("learning_curve", {}), d.get("gap", {}), d.get("training", {})
        audit = d.get("label_audit", {})
        wanted: list[tuple[str, str]] = []
        if audit.get("noisy") and options.flagged_labels:
            wanted.append(("reannotate", f"label audit flags {options.flagged_labels} train labels as likely wrong "
                                         f"(estimated noise {audit.get('noise_rate', 0):.1%})"))
        if lc.get("rising"):
            why = (f"learning curve still rising: {lc['rows'][0]}→{lc['rows'][1]} rows gained "
                   f"{lc['gain']:+.4f}, so more rows should help")
            wanted += [("collect_labels", why), ("add_synthetic", why)]
        if training.get("undertrained"):
            wanted.append(("train_longer", _why_undertrained(training)))
        if gap.get("overfit"):
            wanted.append(("regularize", _why_overfit(gap)))
        if gap.get("underfit"):
            wanted.append(("change_design", f"train {gap['train']:.4f} is as low as validation {gap['val']:.4f}: "
                                            "the design underfits"))
        classes = d.get("classes", {})
        rebalance = False
        if (classes.get("imbalanced") and self._rebalancing_pays()
                and not any(a == "add_synthetic" for a, _ in wanted)):
            wanted.append(("add_synthetic", f"class {classes['worst_class']} has recall {classes['worst_recall']:.2f} "
                                            "on validation: synthetic rows in equal class shares"))
            rebalance = True
        fallback = "no finding points elsewhere"
        for action in ("change_design", "collect_labels", "add_synthetic", "train_longer", "regularize"):
            if action not in (a for a, _ in wanted):
                wanted.append((action, fallback))

        chosen, passed_over = self._choose(wanted, history, options)
        evidence = {"shortfall": report.shortfall, **{k: v for k, v in d.items()}}
        if chosen is None:
            return Decision("stop", "test", f"{report.shortfall}; no action left that could help, "
                                            "the best model on validation goes to the sealed test",
                            {**evidence, "stopped_by": "no_move_left"}, tuple(passed_over))
        action, why = chosen
        if action == "add_synthetic" and rebalance:
            evidence["rebalance"] = True
        return Decision(action, ACTION_STAGE[action], f"{report.shortfall}; {why}", evidence, tuple(passed_over))

    def _decide_open(self, report: ValidationReport, history: Sequence[Step], options: Options) -> Decision:
        d = report.diagnosis
        lc, gap, training = d.get("learning_curve", {}), d.get("gap", {}), d.get("training", {})
        audit, classes = d.get("label_audit", {}), d.get("classes", {})
        state = (f"{report.shortfall}; " if report.shortfall else
                 "clearly better than the baseline, no threshold set: going on while moves pay; ")
        wanted: list[tuple[str, str]] = []
        if audit.get("noisy"):
            wanted.append(("reannotate", f"label audit flags {options.flagged_labels} train labels as likely wrong "
                                         f"(estimated noise {audit.get('noise_rate', 0):.1%})"))
        rising = (f"learning curve still rising: {lc['rows'][0]}→{lc['rows'][1]} rows gained {lc['gain']:+.4f}"
                  if lc.get("rising") else "")
        if rising:
            wanted.append(("collect_labels", f"{rising}, and labels can be bought"))
        wanted.append(("change_design", "the design was never searched: cross-validation on train picks among "
                                        "tuned designs of every family and an ensemble of the best"))
        if training.get("undertrained"):
            wanted.append(("train_longer", _why_undertrained(training)))
        if gap.get("overfit"):
            wanted.append(("regularize", _why_overfit(gap)))
        rebalance = cv_decides = False
        if rising:
            wanted.append(("add_synthetic", f"{rising}; synthetic rows are free (kept only if validation improves)"))
        elif classes.get("imbalanced") and self._rebalancing_pays():
            wanted.append(("add_synthetic", f"class {classes['worst_class']} has recall {classes['worst_recall']:.2f} "
                                            "on validation: synthetic rows in equal class shares"))
            rebalance = True
        else:  # last: chosen only when nothing else is left
            wanted.append(("add_synthetic", "last move left: synthetic rows go in only if cross-validation on train "
                                            "says a generator helps, and stay only if validation improves"))
            cv_decides = True
        chosen, passed_over = self._choose(wanted, history, options)
        for action in ACTION_STAGE:
            if action not in (a for a, _ in wanted):
                passed_over.append(f"{action}: no evidence that it would pay")
        evidence = {"shortfall": report.shortfall, **d}
        if chosen is None:
            return Decision("stop", "test", f"{state}no move left that could pay; the best model on validation goes to the sealed test",
                            {**evidence, "stopped_by": "no_move_left"}, tuple(passed_over))
        action, why = chosen
        if action == "add_synthetic" and rebalance:
            evidence["rebalance"] = True
        if action == "add_synthetic" and cv_decides:
            evidence["synthetic_if_cv_helps"] = True
        return Decision(action, ACTION_STAGE[action], f"{state}{why}", evidence, tuple(passed_over))

    def _choose(self, wanted: list[tuple[str, str]], history: Sequence[Step],
                options: Options) -> tuple[tuple[str, str] | None, list[str]]:
        """The first wanted move that is open (not tried without paying, not blocked, available), and every other
        wanted move with why it was passed over."""
        failed = unhelpful_actions(history, self.min_improvement)
        available = self._available(options)
        chosen: tuple[str, str] | None = None
        passed_over: list[str] = []
        for action, why in wanted:
            if action in failed:
                passed_over.append(f"{action}: tried, changed the score by {failed[action]:+.4f} (did not pay)")
            elif action in options.blocked:
                passed_over.append(f"{action}: {options.blocked[action]}")
            elif not available[action]:
                passed_over.append(f"{action}: {'done already' if action == 'change_design' else 'not available'}")
            elif chosen is None:
                chosen = (action, why)
            else:
                passed_over.append(f"{action}: {why}")
        return chosen, passed_over

    @staticmethod
    def _available(o: Options) -> dict[str, bool]:
        return {"reannotate": o.flagged_labels > 0, "collect_labels": o.labels_affordable > 0,
                "add_synthetic": o.synthetic_available, "train_longer": o.can_train_longer,
                "regularize": o.can_regularize, "change_design": bool(o.designs_untried)}
