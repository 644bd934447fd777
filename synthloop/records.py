"""What the development flow records in MLflow: per iteration, the summary plots, datasets, labels and ledger.

The flow (`flows/develop.py`) only wires stages; these functions decide what a run looks like in the MLflow UI:
params, step metrics, tags (`decision`, `reason`, `alternatives`), `decision.json` and the plots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def log_iteration(tracker, run_id, trained, report, decision, record, schema, it) -> None:
    """An iteration's child run: rows and design as params, loss curves as step metrics, validation/train/baseline
    metrics, the decision as tags and `decision.json` (with the full diagnosis), and its plots."""
    from synthloop import plots
    from synthloop.design import design_params

    tracker.log_params(run_id, {"iteration": it, "rows_real": trained.n_real, "rows_synthetic": trained.n_synthetic,
                                "synthetic_share": round(trained.n_synthetic / max(1, trained.n_real + trained.n_synthetic), 4),
                                "model_family": trained.spec.family,
                                **{f"model.{k}": v for k, v in design_params(trained.spec).items() if k != "family"}})
    tracker.log_curves(run_id, trained.curves)
    tracker.log_metrics(run_id, {**{f"val_{k}": v for k, v in report.metrics.items()},
                                 **{f"train_{k}": v for k, v in report.train_metrics.items()},
                                 **{f"baseline_{k}": v for k, v in report.baseline.items()},
                                 "fit_seconds": trained.fit_seconds, "label_cost": record["label_cost"]})
    tracker.set_tags(run_id, {"decision": decision.action, "reason": decision.reason, "stage": decision.stage,
                              "goal_met": str(report.passed).lower(), "action_in": record["action_in"],
                              "alternatives": "; ".join(decision.alternatives) or "-"})
    tracker.log_dict(run_id, {"decision": decision.action, "stage": decision.stage, "reason": decision.reason,
                              "alternatives": list(decision.alternatives), "diagnosis": report.diagnosis},
                     "decision.json")
    if trained.curves:
        tracker.log_figure(run_id, plots.loss_curves(trained.curves, f"iteration {it}: {trained.spec.family}",
                                                     trained.best_round), "plots/loss_curves.png")
    curve = report.diagnosis.get("learning_curve")
    if curve:
        tracker.log_figure(run_id, plots.learning_curve(curve, record["metric"]), "plots/learning_curve.png")


def log_summary_plots(tracker, parent, iterations, metric, cfg, best, schema, X_val, y_val) -> None:
    """The parent run's plots (the loop's path, confusion matrix or residuals, importance, loss curves) and
    `iterations.json`."""
    from synthloop import plots
    from synthloop.models import feature_importance, predict

    base = best["report"].baseline.get(metric)
    tracker.log_figure(parent, plots.loop_path(iterations, metric, cfg.goal.threshold, base), "plots/loop.png")
    pred, _ = predict(best["trained"].pipeline, X_val, schema.task)
    if schema.task == "classification":
        tracker.log_figure(parent, plots.confusion(y_val, pred, schema.classes), "plots/confusion_matrix.png")
    else:
        tracker.log_figure(parent, plots.residuals(y_val, pred), "plots/residuals.png")
    imp = feature_importance(best["trained"].pipeline)
    if imp is not None and len(imp):
        tracker.log_figure(parent, plots.importance(imp), "plots/feature_importance.png")
    if best["trained"].curves:
        tracker.log_figure(parent, plots.loss_curves(best["trained"].curves, "chosen model", best["trained"].best_round),
                           "plots/loss_curves.png")
    tracker.log_dict(parent, {"iterations": iterations}, "iterations.json")


def log_datasets(tracker, parent, collected) -> None:
    """The train and validation splits as MLflow datasets (lineage with digests; never the test split)."""
    schema = collected.schema
    for name, frame in (("train", collected.train), ("validation", collected.val)):
        tracker.log_dataset(parent, frame, name=name, source=collected.lineage["source"], context=name,
                            targets=schema.target)


def log_labels(tracker, parent: str, child: str, report, ledger, iterations: list[dict[str, Any]], metric: str,
                it: int) -> None:
    """Per iteration: what labels cost so far and in this iteration, and what the label audit found."""
    tracker.log_metrics(parent, {"label_cost_cumulative": ledger.spent, "labels_bought": iterations[-1]["labels_bought"],
                                 f"val_{metric}_by_iteration": iterations[-1]["val_metrics"].get(metric, float("nan"))},
                        step=it)
    audit = report.diagnosis.get("label_audit")
    values = {"labels_bought": iterations[-1]["labels_bought"]}
    if audit:
        values.update({"label_noise_estimated": audit.get("noise_rate"), "label_flags": audit.get("n_flagged"),
                       "label_noisy": float(bool(audit.get("noisy"))),
                       "label_audit_gap": audit.get("gap"), "label_audit_precision": audit.get("precision"),
                       "label_audit_recall": audit.get("recall"), "label_noise_true": audit.get("true_noise_rate")})
    if iterations[-1]["action_in"] == "reannotate" and len(iterations) > 1:
        before = iterations[-2]["val_metrics"].get(metric, float("nan"))
        values["reannotate_gain"] = iterations[-1]["val_metrics"].get(metric, float("nan")) - before
    tracker.log_metrics(child, {k: v for k, v in values.items() if v is not None})


def log_ledger(tracker, parent: str, ledger, iterations: list[dict[str, Any]], metric: str, say: Callable[[str], None]) -> None:
    """Totals by source and kind to MLflow and the terminal, and the spend-against-score plot."""
    import re

    from synthloop.labelling import spend_curve

    frame = ledger.to_frame()
    by_source = frame.groupby("source")[["n_labels", "total"]].sum()
    by_kind = frame.groupby("kind")[["n_labels", "total"]].sum()
    clean = lambda name: re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))  # noqa: E731
    tracker.log_metrics(parent, {**{f"label_cost.{clean(s)}": r.total for s, r in by_source.iterrows()},
                                 **{f"labels.{clean(s)}": r.n_labels for s, r in by_source.iterrows()},
                                 **{f"label_cost_kind.{clean(k)}": r.total for k, r in by_kind.iterrows()}})
    for iteration, total in ledger.totals_by_iteration().items():  # step = the iteration that booked the spend
        tracker.log_metrics(parent, {"label_cost_iteration": total}, step=iteration)
    tracker.log_figure(parent, spend_curve(iterations, metric), "plots/label_spend.png")
    budget = "" if ledger.budget is None else f" of {ledger.budget:g}"
    parts = [f"{s} {int(r.n_labels)} labels = {r.total:g}" for s, r in by_source.iterrows()]
    say(f"ledger: spent {ledger.spent:g}{budget} — " + "; ".join(parts) + " (ledger.csv in the MLflow run)")
