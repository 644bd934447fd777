"""The loop's judgement and bookkeeping on a Dask cluster: validation report, diagnosis, what the loop can do.

The report is the pandas path's `ValidationReport`, with the diagnosis keys `synthloop.policy.RuleBasedPolicy`
reads (`learning_curve`, `gap`, `training`, `classes`) and the same thresholds (`synthloop.judge`), so the same
policy decides. What the cluster path cannot do yet is passed to the policy as blocked, with the reason, and so
appears in every decision's `alternatives`:

- buying labels from a pool column (there is no pool on the cluster: every row of the dataset is labelled),
- synthetic rows (the generators fit in one process; a few thousand synthetic rows fitted to a sample would not
  move a model trained on millions of real ones),
- a label audit (confident learning needs out-of-fold predictions of every train row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthloop.cluster_data import ClusterData
from synthloop.cluster_model import (ClusterFit, Matrices, cluster_stats, metrics_from_stats, recall_from_stats,
                                     train_booster)
from synthloop.config import GoalConfig
from synthloop.policy import Options, Step
from synthloop.types import ValidationReport

TRAIN_SAMPLE_SHARE = 0.1  # train rows scored for the train–validation gap: a nested tenth of train by hash
BLOCKED = {
    "collect_labels": "not on the cluster yet: every row of the dataset comes labelled, and buying labels from a "
                      "pool column is built for tables that fit one process (run without dask.mode=cluster)",
    "add_synthetic": "not on the cluster yet: the generators fit in one process, and a few thousand synthetic rows "
                     "fitted to a sample would not move a model trained on the whole dataset",
    "reannotate": "no label audit on the cluster yet (it needs out-of-fold predictions of every train row)",
}


def unsupported(config) -> list[str]:
    """Settings the cluster path cannot honour, each as a line saying so (refused before any run starts)."""
    out = []
    if config.data.strategy != "existing":
        out.append(f"data.strategy {config.data.strategy} is not on the cluster yet; use existing")
    if config.data.initial_labelled is not None:
        out.append("data.initial_labelled (a pool of labels to buy) is not on the cluster yet; leave it unset")
    if config.data.table or config.data.query:
        out.append("data.table / data.query: the cluster reads Parquet or CSV files, not SQL")
    if config.annotation.mode == "human":
        out.append("annotation.mode human is not on the cluster yet")
    return out


def validate_fit(client, data: ClusterData, m: Matrices, fit: ClusterFit, goal: GoalConfig, prior, *, seed: int,
                 learning_curve: bool = True, reference: ClusterFit | None = None,
                 reference_score: float | None = None) -> ValidationReport:
    """Score a cluster fit on validation against the goal and the trivial baseline, and diagnose it on the cluster.

    The train–validation gap is read on a nested tenth of train (by hash); the learning curve refits the same
    design on the first half of train (by hash: the half is a subset of the whole) and compares validation scores;
    loss curves come from the boosting history. With a `reference` (the best fit so far, scoring `reference_score`),
    `diagnosis["paired"]["noise"]` is one standard error of the gain over it on the same validation rows: what a
    move must beat, beside `loop.min_improvement`, to count as paying.
    """
    from synthloop.judge import (LEARNING_CURVE_RISING, LOW_CLASS_RECALL, OVERFIT_GAP, UNDERTRAINED_DROP, check_goal,
                                 goal_metric, make_report, oriented)

    schema = data.schema
    task, k = schema.task, len(schema.classes) if schema.classes else None
    metric = goal_metric(goal, task)
    val = cluster_stats(client, m.val, fit.booster, m.features, task, k, prior)
    metrics, baseline = metrics_from_stats(val, task), metrics_from_stats(val, task, "baseline")
    hi = data.plan.train_fraction_end(TRAIN_SAMPLE_SHARE)
    train_stats = cluster_stats(client, m.train, fit.booster, m.features, task, k, prior, data.plan.val_end, hi)
    train_metrics = metrics_from_stats(train_stats, task)
    n_val = int(val["n"])
    findings: dict[str, Any] = {"train_sample_rows": int(train_stats["n"])}
    if reference is not None and reference.booster is not fit.booster:
        from synthloop.cluster_model import paired_noise

        y_var = None
        if task == "regression":
            y_var = val["y2_sum"] / max(n_val, 1) - (val["y_sum"] / max(n_val, 1)) ** 2
        findings["paired"] = {"noise": paired_noise(client, m.val, fit.booster, reference.booster, m.features, task,
                                                    k, metric, reference_score, y_var)}
    if goal.threshold is not None and check_goal(goal, task, metrics, baseline, n_val)[0]:
        return make_report(goal, task, metrics, train_metrics, baseline, findings, n_val)
    score = oriented(metric, metrics[metric])
    if learning_curve:
        half_end = data.plan.train_fraction_end(0.5)
        n_half = data.rows_between(data.plan.val_end, half_end)
        half = train_booster(client, m, fit.spec, schema, seed=seed, train_upto=half_end, n_rows=n_half)
        half_stats = cluster_stats(client, m.val, half.booster, m.features, task, k, prior)
        half_score = oriented(metric, metrics_from_stats(half_stats, task).get(metric, np.nan))
        gain = score - half_score
        findings["learning_curve"] = {"rows": [n_half, fit.n_rows], "scores": [half_score, score], "gain": gain,
                                      "rising": bool(gain > LEARNING_CURVE_RISING), "how": "nested hash halves of train"}
    train_score = oriented(metric, train_metrics.get(metric, np.nan))
    gap = train_score - score
    findings["gap"] = {"train": train_score, "val": score, "gap": gap, "overfit": bool(gap > OVERFIT_GAP),
                       "underfit": bool(gap < OVERFIT_GAP / 2 and goal.threshold is not None
                                        and train_score < oriented(metric, goal.threshold))}
    vl = fit.curves.get("val_loss") or []
    n_estimators = int(fit.spec.params.get("n_estimators", 0))
    if vl:
        tail = max(1, len(vl) // 10)
        drop = (vl[-tail - 1] - vl[-1]) / max(abs(vl[-tail - 1]), 1e-12) if len(vl) > tail else 0.0
        still = fit.best_round >= fit.rounds - 2 and fit.rounds >= n_estimators and drop > UNDERTRAINED_DROP
        findings["training"] = {"rounds": fit.rounds, "best_round": fit.best_round, "max_rounds": n_estimators,
                                "recent_val_loss_drop": float(drop), "undertrained": bool(still)}
    if task == "classification":
        recall = recall_from_stats(val)
        worst = int(np.argmin(recall))
        findings["classes"] = {"worst_class": str(schema.classes[worst]), "worst_recall": float(recall[worst]),
                               "imbalanced": bool(recall[worst] < LOW_CLASS_RECALL)}
    return make_report(goal, task, metrics, train_metrics, baseline, findings, n_val)


SEARCH_WORDS = "cross-validation on train picks among tuned designs of every family and an ensemble of the best"
CLUSTER_SEARCH_WORDS = ("a few xgboost settings are trained on the cluster and judged on validation (other families, "
                        "cross-validation and ensembles are not on the cluster yet)")


def explain(decision):
    """The policy's decision in the cluster path's words: its design search is a few xgboost settings."""
    from dataclasses import replace

    return replace(decision, reason=decision.reason.replace(SEARCH_WORDS, CLUSTER_SEARCH_WORDS),
                   alternatives=tuple(a.replace(SEARCH_WORDS, CLUSTER_SEARCH_WORDS) for a in decision.alternatives))


@dataclass
class ClusterLoopState:
    """What the loop carries between iterations on the cluster: the design, the history, the best so far."""

    spec: Any
    history: list[Step] = field(default_factory=list)
    best: dict[str, Any] | None = None
    moves: dict[str, int] = field(default_factory=dict)
    searched: bool = False
    fits: dict[str, ClusterFit] = field(default_factory=dict)  # by spec, so a design search's winner is not refitted
    deadline: float | None = None

    def record(self, it: int, action_in: str, fit: ClusterFit, report: ValidationReport, metric: str,
               min_improvement: float) -> Step:
        from synthloop.judge import SCORE_TIE, needed_gain, oriented

        score = oriented(metric, report.score)
        needed = 0.0
        if self.best:  # the loop's minimum improvement, or the paired noise on validation against the best if larger
            needed = max(needed_gain(metric, min_improvement, self.best["score"]),
                         float(report.diagnosis.get("paired", {}).get("noise", 0.0)))
        step = Step(it, action_in, score, needed)
        self.history.append(step)
        if self.best is None or score > self.best["score"] + SCORE_TIE:
            self.best = {"score": score, "iteration": it, "fit": fit, "report": report, "spec": self.spec}
        return step

    def build_on_best(self) -> None:
        self.spec = self.best["spec"]

    def count(self, action: str) -> None:
        self.moves[action] = self.moves.get(action, 0) + 1

    def options(self) -> Options:
        return Options(labels_affordable=0, synthetic_available=False, flagged_labels=0,
                       designs_untried=() if self.searched else ("xgboost settings on the cluster",),
                       can_train_longer=self.moves.get("train_longer", 0) < 2,
                       can_regularize=self.moves.get("regularize", 0) < 2, blocked=dict(BLOCKED))
