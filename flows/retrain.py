"""The scheduled retrain as a Prefect flow.

Stages, in order: collect the latest data from the configured source → measure per-feature drift
against the data the current champion was trained on → develop a challenger (the development cycle,
as a subflow) → score challenger and champion on the same fresh validation rows (never the test
split) → move the `champion` alias only when the challenger is better by `retrain.margin` (the former
champion stays reachable as `previous`). The reason is recorded either way, on an MLflow run of its
own (tag `synthloop.kind = retrain`) and as a Prefect artifact.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from synthloop.config import Config
from synthloop.tasks.collect import collect_data
from synthloop.tasks.retrain import compare_models, measure_drift, promote_if_better, save_reference


@flow(name="retrain", log_prints=False)
def retrain(config: Config | None = None) -> dict[str, Any]:
    """Retrain on the latest data and promote the challenger only if it beats the champion by the margin.

    Args:
        config: The whole configuration (its `retrain` section sets margin and drift alert); None runs the
            embedded default scenario.
    Returns:
        A summary: promoted, reason, champion and challenger versions and scores, drift per feature,
        and the develop subflow's summary under "develop".
    """
    from synthloop.flows.develop import develop
    from synthloop import drift as drift_lib
    from synthloop import registry
    from synthloop.errors import ConfigError
    from synthloop.judge import goal_metric
    from synthloop.tracking import TAG_HOST, TAG_KIND, TAG_PID, TAG_PREFECT_NAME, TAG_PREFECT_RUN, Tracker

    cfg = config or Config.embedded_default()
    name = cfg.tracking.registered_model
    if not name:
        raise ConfigError("tracking.registered_model: a retrain promotes registered versions; set a model name")
    logger = get_run_logger()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        logger.info(message)

    flow_run = get_run_context().flow_run
    tracker = Tracker(cfg.tracking.tracking_uri, cfg.tracking.experiment)
    client = registry.client_for(tracker.uri)
    record = tracker.client.create_run(tracker.experiment_id, run_name=f"retrain-{flow_run.name}", tags={
        TAG_KIND: "retrain", TAG_PREFECT_RUN: str(flow_run.id), TAG_PREFECT_NAME: flow_run.name,
        TAG_PID: str(os.getpid()), TAG_HOST: socket.gethostname()}).info.run_id
    try:
        retry = {"retries": cfg.retry.retries, "retry_delay_seconds": cfg.retry.delays_s}
        collected, _sealed = collect_data.with_options(task_run_name="collect-latest-data", **retry)(cfg.data, cfg.seed)
        metric = goal_metric(cfg.goal, collected.schema.task)
        champ = registry.champion(client, name)
        champ_version = str(champ.version) if champ else None
        say(f"retrain: latest data {collected.lineage['source']} ({collected.lineage['rows']} rows); champion "
            f"{'version ' + champ_version if champ else 'none yet'}")

        drift = measure_drift(collected, client, champ.run_id if champ else None)
        if drift["measured"]:
            top = [drift_lib.FeatureDrift(**d) for d in drift["features"]]
            drift["summary"] = drift_lib.summarize(top, cfg.retrain.drift_psi_alert)
            tracker.log_metrics(record, {f"drift_psi.{d.feature}"[:250]: d.psi for d in top})
            tracker.log_metrics(record, {f"drift_ks_p.{d.feature}"[:250]: d.ks_pvalue for d in top
                                         if d.ks_pvalue is not None})
            tracker.log_metrics(record, {"drift_psi_max": max((d.psi for d in top), default=0.0),
                                         "drift_features_alert": sum(d.psi >= cfg.retrain.drift_psi_alert for d in top)})
        else:
            drift["summary"] = f"drift: not measured — {drift['note']}"
        tracker.log_dict(record, drift, "drift.json")
        say(drift["summary"])

        summary = develop(cfg)
        challenger_version = summary["registered_version"]
        challenger_run = summary["mlflow_run_id"]
        save_reference(collected, tracker, challenger_run, cfg.retrain.reference_rows, cfg.seed)
        same_rows = tracker.client.get_run(challenger_run).data.params.get("data.val_digest") == \
            collected.lineage["val_digest"]
        champion_uri = f"models:/{name}/{champ_version}" if champ else None
        comparison = compare_models(collected, summary["model_uri"], champion_uri, metric, tracker.uri)
        outcome = promote_if_better(client, name, challenger_version, comparison, metric, cfg.retrain.margin,
                                    champ_version, same_rows, goal_met=summary["goal_met"])
        say(f"retrain: {outcome['reason']}")

        result = {
            "promoted": outcome["promoted"], "reason": outcome["reason"], "metric": metric,
            "champion_version": outcome["champion"], "challenger_version": challenger_version,
            "former_champion_version": champ_version,
            "challenger_val": comparison["challenger"], "champion_val": comparison["champion"],
            "validation_rows": comparison["rows"], "drift": drift, "mlflow_run_id": record,
            "challenger_run_id": challenger_run, "prefect_flow_run_id": str(flow_run.id), "develop": summary,
        }
        tracker.log_params(record, {"registered_model": name, "margin": cfg.retrain.margin, "goal_metric": metric,
                                    "challenger_version": challenger_version,
                                    "former_champion_version": result["former_champion_version"],
                                    "validation_rows": comparison["rows"]})
        scores = {f"challenger_val_{metric}": comparison["challenger"].get(metric)}
        if comparison["champion"]:
            scores[f"champion_val_{metric}"] = comparison["champion"].get(metric)
        tracker.log_metrics(record, {**scores, "promoted": float(outcome["promoted"])})
        decision = "promoted" if outcome["promoted"] else "kept"
        tracker.set_tags(record, {"decision": decision, "reason": outcome["reason"],
                                  "synthloop.challenger_run_id": challenger_run})
        tracker.set_tags(challenger_run, {"synthloop.retrain_run_id": record, "promotion": decision,
                                          "promotion_reason": outcome["reason"]})
        _prefect_artifact(result, tracker)
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "FAILED"
        try:
            tracker.finish(record, status, f"{type(exc).__name__}: {exc}".splitlines()[0])
        except Exception:  # the store itself failed: nothing more can be recorded
            pass
        raise
    tracker.finish(record)
    return result


def _prefect_artifact(result: dict[str, Any], tracker) -> None:
    from prefect.artifacts import create_markdown_artifact

    metric = result["metric"]
    champ = (result["champion_val"] or {}).get(metric)
    rows = "\n".join(f"| {d['feature']} | {d['kind']} | {d['psi']:.4f} | "
                     f"{'' if d['ks_pvalue'] is None else format(d['ks_pvalue'], '.3g')} | {d['level']} |"
                     for d in result["drift"]["features"][:10])
    md = (f"## Retrain: {'promoted' if result['promoted'] else 'champion kept'}\n\n{result['reason']}\n\n"
          f"Challenger version {result['challenger_version']}: validation {metric} "
          f"{result['challenger_val'].get(metric, float('nan')):.4f}; former champion "
          f"{result['former_champion_version'] or '—'}: {'—' if champ is None else format(champ, '.4f')} "
          f"({result['validation_rows']} fresh validation rows).\n\n"
          f"MLflow: {tracker.run_link(result['mlflow_run_id'])}\n\n### {result['drift']['summary']}\n\n"
          + (f"| feature | kind | PSI | KS p | level |\n|---|---|---|---|---|\n{rows}\n" if rows else ""))
    create_markdown_artifact(markdown=md, key="retrain-decision", description="Why the champion changed or not")
