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
    pred = best["report"].val_pred  # validation's own predictions of this model
    if pred is None or len(pred) != len(y_val):
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


# the story where users look: the parent run's description, child run names, the runs table's view ---------------
NOTE_TAG = "mlflow.note.content"  # the MLflow UI renders it as the run's Markdown description
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
SHARED_VIEW_TAG = "mlflow.sharedViewState."  # + key; the runs page applies it for ?viewStateShareKey=<key>
PLOT_TITLES = {"loop.png": "the loop's path", "label_spend.png": "score against labels spent",
               "confusion_matrix.png": "confusion matrix", "residuals.png": "residuals",
               "feature_importance.png": "feature importance", "loss_curves.png": "loss curves"}


def child_run_name(flow_run_name: str, iteration: int) -> str:
    """An iteration's run name that tells runs of different parents apart, e.g. 'hairy-hoatzin/it-2'."""
    return f"{flow_run_name}/it-{iteration}"


def story_markdown(summary: dict[str, Any], experiment_id: str, plots: list[str] = (),
                   ledger: dict[str, tuple[float, float]] | None = None) -> str:
    """The run's story as Markdown: each iteration's validation score, decision and reason, the test result,
    the label ledger's totals and links to the plots (relative links: they work on whatever host and port the
    MLflow UI is served).

    Args:
        summary: The development flow's summary (iterations, test_metrics, goal_met, goal_metric, label_cost ...).
        experiment_id: The run's experiment (for the links).
        plots: Artifact paths of the run's plots, e.g. "plots/loop.png".
        ledger: Labels and spend per source, {source: (labels, cost)}.
    """
    metric, run = summary["goal_metric"], summary["mlflow_run_id"]
    esc = lambda text: str(text).replace("|", "/").replace("\n", " ")  # noqa: E731
    threshold = summary.get("goal_threshold")
    goal = f"{metric} {'>=' if _higher(metric) else '<='} {threshold:g}" if threshold is not None else \
        f"{metric} clearly better than the baseline"
    test = summary["test_metrics"].get(metric, float("nan"))
    best = next((it for it in summary["iterations"] if it["iteration"] == summary.get("best_iteration")), None)
    val = best["val_metrics"].get(metric, float("nan")) if best else float("nan")
    # The UI shows the first lines of a description folded: the verdict and the table come first.
    verdict_line = verdict(summary["goal_met"], threshold)
    lines = [f"### {verdict_line} — test {metric} {test:.4f} (validation {val:.4f}; goal: {goal})", "",
             f"| iteration | validation {metric} | rows (real+synthetic) | decision | reason |", "|---|---|---|---|---|"]
    for it in summary["iterations"]:
        rows = f"{it.get('train_rows', '')}+{it.get('synthetic_rows', 0)}"
        lines.append(f"| {it['iteration']} | {it['val_metrics'].get(metric, float('nan')):.4f} | {rows} | "
                     f"{esc(it['decision'])} | {esc(it['reason'])} |")
    gap = summary.get("val_test_gap")
    lines += ["", f"**Test** (the sealed split, opened once): {metric} {test:.4f}"
              + (f" — validation − test gap {gap:+.4f}" if gap is not None else "") + "."]
    if not summary["goal_met"] and summary.get("shortfall"):
        lines += ["", f"**Why the goal was not met**: {esc(summary['shortfall'])}."]
    lines += ["", f"**Chosen model**: iteration {summary.get('best_iteration')}, `{esc(summary.get('best_model', ''))}`."]
    if summary.get("dropped_columns"):
        lines += ["", left_out_line(summary["dropped_columns"])]
    if ledger:
        total = sum(cost for _, cost in ledger.values())
        parts = "; ".join(f"{src}: {int(n)} labels, {cost:g}" for src, (n, cost) in ledger.items())
        lines += ["", f"**Labels**: spent {total:g} — {parts} (`ledger.csv`)."]
    elif summary.get("label_cost"):
        lines += ["", f"**Labels**: spent {summary['label_cost']:g} (`ledger.csv`)."]
    if summary.get("registered_version"):
        lines += ["", f"**Model**: `{summary.get('registered_model')}` version {summary['registered_version']}."]
    if plots:
        links = " · ".join(f"[{PLOT_TITLES.get(p.rsplit('/', 1)[-1], p)}](#/experiments/{experiment_id}/runs/{run}"
                           f"/artifacts/{p})" for p in plots)
        lines += ["", f"**Plots**: {links}"]
    return "\n".join(lines)


def left_out_line(dropped: dict[str, str]) -> str:
    """The Markdown line naming the columns left out of the model, each with its reason (MLflow's story and the
    Prefect artifact)."""
    listed = "; ".join(f"`{c}` — {why}" for c, why in dropped.items()).replace("|", "/").replace("\n", " ")
    return f"**Columns left out of the model**: {listed}."


def runs_view(metric: str) -> tuple[str, dict[str, Any]]:
    """A shared view of the runs table (MLflow's `mlflow.sharedViewState.<key>` experiment tag, opened with
    `?viewStateShareKey=<key>`): newest first, with the goal metric, the test metric, goal_met and label cost."""
    key = f"synthloop-{metric}"
    state = {"orderByKey": "attributes.start_time", "orderByAsc": False,
             "selectedColumns": [f"metrics.`val_{metric}`", f"metrics.`test_{metric}`", "tags.`goal_met`",
                                 "metrics.`label_cost`", "metrics.`iterations`",
                                 "attributes.`Models`"]}
    return key, state


def tell_story(tracker, summary: dict[str, Any]) -> dict[str, str]:
    """Write the run's story where users look, and return the links to it ({} when it could not be written: said on
    stderr, the run itself is recorded).

    Sets the parent run's description (`mlflow.note.content`), names the iteration runs after their parent
    (`child_run_name`), marks the experiment as model development (MLflow's `mlflow.experimentKind`) and stores a
    runs-table view that shows the goal metric, the test metric, goal_met and label cost.
    Returns:
        `run`, `compare` (the run's iterations side by side) and `runs` (the runs table in that view): links
        relative to the MLflow UI's address.
    """
    import sys

    try:
        return _tell_story(tracker, summary)
    except Exception as exc:  # the run is recorded; only its description is missing
        print(f"synthloop: note: the run's description could not be written ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return {}


def _tell_story(tracker, summary: dict[str, Any]) -> dict[str, str]:
    import json

    client, run, exp = tracker.client, summary["mlflow_run_id"], tracker.experiment_id
    children = client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{run}' and tags.`synthloop.kind` = 'child'",
                                  max_results=1000)
    iterations = sorted((c for c in children if "iteration" in c.data.params), key=lambda c: int(c.data.params["iteration"]))
    parent_name = client.get_run(run).info.run_name
    for c in iterations:
        wanted = child_run_name(parent_name, int(c.data.params["iteration"]))
        if c.info.run_name != wanted:
            client.update_run(c.info.run_id, name=wanted)
    plots = sorted(f.path for f in client.list_artifacts(run, "plots") if not f.is_dir)
    plots.sort(key=lambda p: list(PLOT_TITLES).index(p.rsplit("/", 1)[-1]) if p.rsplit("/", 1)[-1] in PLOT_TITLES else 99)
    ledger = _ledger_totals(client.get_run(run).data.metrics)
    client.set_tag(run, NOTE_TAG, story_markdown(summary, exp, plots, ledger))
    key, state = runs_view(summary["goal_metric"])
    client.set_experiment_tag(exp, EXPERIMENT_KIND_TAG, "custom_model_development")
    client.set_experiment_tag(exp, SHARED_VIEW_TAG + key, json.dumps(state, separators=(",", ":")))
    ids = json.dumps([c.info.run_id for c in iterations], separators=(",", ":"))
    ml = "workflowType=machine_learning"  # the UI's model-training mode (its default is GenAI)
    return {"run": f"#/experiments/{exp}/runs/{run}?{ml}",
            "compare": f"#/compare-runs?runs={ids}&experiments=[\"{exp}\"]&{ml}",
            "runs": f"#/experiments/{exp}/runs?viewStateShareKey={key}&{ml}"}


def write_report(tracker, run_id: str) -> str | None:
    """`report.html` as an artifact of the parent run: the run's whole story in one page (`synthloop.report`).

    Returns:
        The HTML; None when it could not be written (said on stderr: the run itself is recorded, and
        `synthloop report RUN` can write the page later).
    """
    import sys

    from synthloop.report import write_report as write

    try:
        return write(tracker, run_id)
    except Exception as exc:
        print(f"synthloop: note: report.html could not be written ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def _ledger_totals(metrics: dict[str, float]) -> dict[str, tuple[float, float]]:
    sources = sorted(k.removeprefix("label_cost.") for k in metrics if k.startswith("label_cost."))
    return {s: (metrics.get(f"labels.{s}", 0.0), metrics[f"label_cost.{s}"]) for s in sources}


def _higher(metric: str) -> bool:
    from synthloop.config import HIGHER_IS_BETTER

    return HIGHER_IS_BETTER.get(metric, True)


def verdict(goal_met: bool, threshold: float | None) -> str:
    """"goal met" / "goal NOT met"; with no threshold the goal is to beat the baseline clearly, and it says so."""
    if threshold is None:
        return "clearly better than the baseline" if goal_met else "NOT clearly better than the baseline"
    return "goal met" if goal_met else "goal NOT met"


def outcome(goal_met: bool, threshold: float | None, shortfall: str) -> str:
    """The verdict with why it was missed, for the line that reports the test: "goal NOT met: <shortfall>"; with
    no threshold the shortfall alone (it already says the model is not clearly better than the baseline)."""
    if goal_met:
        return verdict(goal_met, threshold)
    return f"{verdict(goal_met, threshold)}: {shortfall}" if threshold is not None else shortfall
