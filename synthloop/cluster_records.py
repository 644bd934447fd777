"""What a run on the cluster records in MLflow: the same runs, params, metrics, tags and plots as `develop`'s
(`synthloop.records`), from what the cluster path holds — fits and per-partition statistics, no rows."""

from __future__ import annotations

import resource
from typing import Any

from synthloop import records


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def iteration_record(it: int, action_in: str, metric: str, fit, report, decision) -> dict[str, Any]:
    """An iteration as the summary, the run's story and `iterations.json` hold it."""
    return {"iteration": it, "action_in": action_in, "metric": metric, "val_metrics": report.metrics,
            "train_rows": fit.n_rows, "synthetic_rows": 0, "model": fit.spec.describe(), "decision": decision.action,
            "stage": decision.stage, "reason": decision.reason, "alternatives": list(decision.alternatives),
            "label_cost": 0.0, "labels_bought": 0}


def log_iteration(tracker, child: str, fit, report, decision, record: dict[str, Any], schema, it: int,
                  needed: float) -> None:
    """The iteration's child run, as `records.log_iteration` writes it, plus the cluster's own figures."""
    from synthloop.types import Trained

    trained = Trained(fit.spec, None, fit.curves, fit.rounds, fit.best_round, fit.fit_seconds, fit.n_rows, 0)
    records.log_iteration(tracker, child, trained, report, decision, record, schema, it)
    tracker.log_metrics(child, {"train_sample_rows": report.diagnosis.get("train_sample_rows"),
                                "gain_noise": report.diagnosis.get("paired", {}).get("noise"),
                                "gain_needed": needed})


def log_outcome(tracker, parent: str, *, cfg, best: dict[str, Any], iterations: list[dict[str, Any]],
                test_metrics: dict[str, float], gap: float, looks: int, stopped_by: str | None, opened_at: str | None,
                sample_rows: int, pipeline, metric: str) -> None:
    """The parent run's test and validation metrics, outcome tags and plots (those that need no rows here)."""
    from synthloop import plots
    from synthloop.models import feature_importance

    goal_met = bool(best["report"].passed)
    tracker.log_metrics(parent, {f"test_{k}": v for k, v in test_metrics.items()})
    tracker.log_metrics(parent, {f"val_{k}": v for k, v in best["report"].metrics.items()})
    tracker.log_metrics(parent, {"val_test_gap": gap, "looks_at_validation": looks, "label_cost": 0.0,
                                 "iterations": len(iterations), "best_iteration": best["iteration"],
                                 "goal_met": float(goal_met), "sample_rows": sample_rows,
                                 "driver_peak_rss_mb": peak_rss_mb()})
    tracker.set_tags(parent, {"goal_met": str(goal_met).lower(), "test_opened_at": opened_at, "stopped_by": stopped_by,
                              "best_model": best["spec"].describe(), "best_iteration": best["iteration"]})
    if not goal_met:
        tracker.set_tags(parent, {"goal_shortfall": best["report"].shortfall})
    base = best["report"].baseline.get(metric)
    tracker.log_figure(parent, plots.loop_path(iterations, metric, cfg.goal.threshold, base), "plots/loop.png")
    imp = feature_importance(pipeline)
    if imp is not None and len(imp):
        tracker.log_figure(parent, plots.importance(imp), "plots/feature_importance.png")
    fit = best["fit"]
    tracker.log_figure(parent, plots.loss_curves(fit.curves, "chosen model", fit.best_round), "plots/loss_curves.png")
    tracker.log_dict(parent, {"iterations": iterations}, "iterations.json")


def log_search(tracker, parent: str, it: int, metric: str, ranked: list[dict[str, Any]]) -> None:
    """A design search on the cluster, judged on validation. Not `design/search-itN.json`: that one holds
    cross-validation on train, and report.html reads it as such."""
    tracker.log_dict(parent, {"iteration": it, "metric": metric, "judged_on": "validation",
                              "trials": [{"design": t["spec"].describe(), "val_metrics": t["metrics"]} for t in ranked]},
                     f"design/cluster-search-it{it}.json")
    tracker.set_tags(parent, {f"design_choice_it{it}": ranked[0]["spec"].describe()})
