"""The development cycle on a Dask cluster, for data that does not fit in one process.

Stages, in order: collect (sample → schema → every part checked, prepared and hash-split on the workers) →
preprocess (fitted on the sample, applied per partition) → train (`xgboost.dask`) → validate (metrics, baseline and
diagnosis on the cluster) → (go back to train: longer, regularized, or a few other xgboost settings, while
validation falls short) → test (the sealed rows, scored on the cluster once) → register. The driver holds the
sample and per-partition statistics only. MLflow records it as `develop` does: one parent run per flow run, one
child run per iteration (`<flow-run-name>/it-N`), the test metrics on the parent, the registered model.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from prefect.context import get_run_context

from synthloop import cluster_records, records
from synthloop.config import Config
from synthloop.loop import bound
from synthloop.tasks.cluster import (collect_on_cluster, evaluate_on_cluster, preprocess_on_cluster, search_on_cluster,
                                     train_on_cluster, validate_on_cluster)


@flow(name="develop-cluster", log_prints=False)
def develop_cluster(config: Config) -> dict[str, Any]:
    """Develop an xgboost model on a Dask cluster: collect → preprocess → train → validate, going back to train
    until the goal is met or no move is left, then test once.

    Args:
        config: The whole cycle's configuration; `dask.address` (or a LocalCluster of `dask.workers`) is where it runs.
    Returns:
        The same summary as `develop`: iterations, test metrics, goal_met, MLflow and Prefect run ids.
    """
    from synthloop.cluster_model import open_cluster
    from synthloop.flows.develop import _Say
    from synthloop.tracking import Tracker

    flow_run = get_run_context().flow_run
    tracker = Tracker(config.tracking.tracking_uri, config.tracking.experiment)
    tracker.mark_ghost_runs()
    parent = tracker.get_or_create_parent(str(flow_run.id), flow_run.name)
    open_runs = [parent]
    say = _Say()
    try:
        with open_cluster(config.dask.address, config.dask.workers) as (client, where):
            say(f"cluster: {where}")
            summary = _cycle(config, client, where, tracker, parent, open_runs, say, str(flow_run.id), flow_run.name)
    except BaseException as exc:
        from prefect.exceptions import TerminationSignal

        status = "KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit, TerminationSignal)) else "FAILED"
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        for run_id in reversed(open_runs):
            try:
                tracker.finish(run_id, status, reason)
            except Exception:  # the store itself failed: nothing more can be recorded
                pass
        raise
    tracker.finish(parent)
    return summary


def _cycle(cfg: Config, client, where: str, tracker, parent: str, open_runs: list[str], say, flow_run_id: str,
           flow_run_name: str) -> dict[str, Any]:
    from synthloop.cluster_loop import ClusterLoopState, explain
    from synthloop.cluster_model import head_rows, sklearn_pipeline, train_prior
    from synthloop.config import auto_time_budget
    from synthloop.judge import goal_metric, oriented
    from synthloop.models import default_spec
    from synthloop.policy import RuleBasedPolicy

    started = time.monotonic()
    seed = cfg.seed
    retry = {"retries": cfg.retry.retries, "retry_delay_seconds": cfg.retry.delays_s}
    tracker.log_params(parent, {"config": cfg.model_dump(mode="json")})
    tracker.set_tags(parent, {"synthloop.mode": "cluster", "dask.cluster": where})

    data, sealed = collect_on_cluster.with_options(**retry)(client, cfg.data, cfg.dask, seed)
    schema, lineage = data.schema, data.lineage
    metric = goal_metric(cfg.goal, schema.task)
    tracker.log_params(parent, {"data": lineage, "goal_metric": metric})
    tracker.set_tags(parent, {"task": schema.task, "target": schema.target, "source": lineage["source"]})
    say(f"collect: {lineage['source']} — {lineage['rows']} rows in {lineage['files']} {lineage['format']} file(s) "
        f"({lineage['parts']} parts), {lineage['columns']} features, {schema.task} of '{schema.target}'; hash split "
        f"{lineage['train_rows']} train / {lineage['val_rows']} validation / {lineage['test_rows']} test (sealed); "
        f"schema and preprocessing from a sample of {lineage['sample_rows']} rows")
    for note in data.notes:
        say(f"  note: {note}")
    pre, m = preprocess_on_cluster(client, data)
    prior = train_prior(client, m, schema)

    spec = default_spec("xgboost", n_estimators=cfg.model.n_estimators, learning_rate=cfg.model.learning_rate,
                        max_depth=cfg.model.max_depth, early_stopping_rounds=cfg.model.early_stopping_rounds,
                        extra=cfg.model.params)
    if cfg.model.family not in ("auto", "xgboost"):
        say(f"  note: model.family {cfg.model.family} is not trained on the cluster; xgboost is")
    state = ClusterLoopState(spec=spec)
    policy = RuleBasedPolicy(cfg.loop.min_improvement, open_ended=cfg.goal.threshold is None, metric=metric)
    budget = cfg.loop.time_budget_s or auto_time_budget(int(lineage["rows"]))
    iterations: list[dict[str, Any]] = []
    action_in, looks, stopped_by = "start", 0, None
    for it in range(1, cfg.loop.max_iterations + 1):
        child = tracker.get_or_create_child(parent, f"iteration-{it}", records.child_run_name(flow_run_name, it),
                                            tags={"synthloop.iteration": str(it), "action_in": action_in})
        open_runs.append(child)
        it_started = time.monotonic()
        fit = state.fits.pop(state.spec.describe(), None) or train_on_cluster(client, m, state.spec, data, it, seed)
        best = state.best or {}
        report = validate_on_cluster(client, data, m, fit, cfg.goal, prior, it, seed,
                                     learning_curve=it < cfg.loop.max_iterations, reference=best.get("fit"),
                                     reference_score=best["report"].score if best else None)
        looks += 1
        state.record(it, action_in, fit, report, metric, cfg.loop.min_improvement)
        decision, stopped_by = bound(explain(policy.decide(report, state.history, state.options())), report, it,
                                     cfg.loop.max_iterations, time.monotonic() - started, budget,
                                     next_cost=time.monotonic() - it_started)
        record = cluster_records.iteration_record(it, action_in, metric, fit, report, decision)
        iterations.append(record)
        cluster_records.log_iteration(tracker, child, fit, report, decision, record, schema, it,
                                      state.history[-1].needed)
        tracker.finish(child)
        open_runs.remove(child)
        say(f"iteration {it}: {metric} {report.score:.4f} on validation (baseline "
            f"{report.baseline.get(metric, float('nan')):.4f}, {fit.n_rows} train rows, xgboost on the cluster, "
            f"{fit.rounds} rounds) → {decision.action}: {decision.reason}")
        if decision.stops:
            break
        action_in = decision.action
        state.build_on_best()
        looks += _apply(decision, state, client, data, m, metric, prior, tracker, parent, it, seed, say)

    best = state.best
    goal_met = bool(best["report"].passed)
    test_metrics = evaluate_on_cluster(client, sealed, data, pre, best["fit"])
    val_score, test_score = best["report"].score, test_metrics.get(metric, float("nan"))
    gap = oriented(metric, val_score) - oriented(metric, test_score)
    pipeline = sklearn_pipeline(pre, best["fit"].booster, schema.task)
    cluster_records.log_outcome(tracker, parent, cfg=cfg, best=best, iterations=iterations, test_metrics=test_metrics,
                                gap=gap, looks=looks, stopped_by=stopped_by, opened_at=sealed.opened_at,
                                sample_rows=lineage["sample_rows"], pipeline=pipeline, metric=metric)
    # The input example (and so the signature `mlflow models serve` enforces) is rows as the files hold them:
    # what a user sends. Without the sample's raw rows, the first prepared validation rows.
    example = data.raw_example if data.raw_example is not None else head_rows(client, data.val, 5)[schema.features]
    model_uri, version = tracker.log_model(
        parent, pipeline, task=schema.task, family="xgboost",
        classes=list(schema.classes) if schema.classes is not None else None, kinds=dict(schema.kinds),
        example=example, registered_name=cfg.tracking.registered_model, goal_met=goal_met)
    summary = {
        "iterations": iterations, "test_metrics": test_metrics, "goal_met": goal_met, "goal_metric": metric,
        "goal_threshold": cfg.goal.threshold, "best_iteration": best["iteration"], "best_model": best["spec"].describe(),
        "val_test_gap": gap, "looks_at_validation": looks, "label_cost": 0.0, "shortfall": best["report"].shortfall,
        "mlflow_run_id": parent, "mlflow_experiment_id": tracker.experiment_id, "tracking_uri": tracker.uri,
        "model_uri": model_uri, "registered_model": cfg.tracking.registered_model, "registered_version": version,
        "prefect_flow_run_id": flow_run_id, "prefect_flow_run_name": flow_run_name,
        "seconds": round(time.monotonic() - started, 2), "stopped_by": stopped_by, "time_budget_s": budget,
        "sample_rows": lineage["sample_rows"], "cluster": where,
    }
    summary["links"] = records.tell_story(tracker, summary)
    records.write_report(tracker, parent)
    say(f"test (opened once, on the cluster): {metric} {test_score:.4f} — validation {val_score:.4f}, gap {gap:+.4f}; "
        + records.outcome(goal_met, cfg.goal.threshold, best["report"].shortfall))
    from synthloop.flows.develop import _prefect_artifact

    _prefect_artifact(summary, tracker)
    return summary


def _apply(decision, state, client, data, m, metric: str, prior, tracker, parent: str, it: int, seed: int,
           say) -> int:
    """Go back to train as the decision says; returns how many more looks at validation that took."""
    from synthloop import design
    from synthloop.cluster_model import cluster_designs

    state.count(decision.action)
    if decision.action == "train_longer":
        state.spec = design.train_longer(state.spec)
        say(f"  train: longer — {state.spec.describe()}")
    elif decision.action == "regularize":
        state.spec = design.regularize(state.spec)
        say(f"  train: regularized — {state.spec.describe()}")
    elif decision.action == "change_design":
        candidates = cluster_designs(state.spec)
        ranked = search_on_cluster(client, data, m, candidates, metric, prior, it, seed)
        state.searched = True
        choice = ranked[0]
        state.spec = choice["spec"]
        state.fits[choice["spec"].describe()] = choice["fit"]  # the next iteration validates it without a refit
        cluster_records.log_search(tracker, parent, it, metric, ranked)
        say(f"  train: {len(ranked)} xgboost settings trained on the cluster and judged on validation (no "
            f"cross-validation on the cluster yet) → {choice['spec'].describe()} ({metric} "
            f"{choice['metrics'][metric]:.4f})")
        return len(ranked)
    else:  # the policy was told these are blocked; a custom policy may still choose them
        say(f"  {decision.action}: not available on the cluster; nothing changed")
    return 0
