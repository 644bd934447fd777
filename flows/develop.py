"""The development cycle as a Prefect flow.

Stages, in order: collect → annotate → train → validate → (go back to collect, annotate or train
while validation falls short, bounded by `loop.max_iterations`, the time budget and the label budget)
→ test (the sealed split, opened once) → register. One MLflow parent run per flow run, one child
run per iteration.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger
from prefect.context import get_run_context

from synthloop import records
from synthloop.config import Config
from synthloop.loop import LoopState, bound, labels_bought, row_price
from synthloop.types import Decision
from synthloop.tasks import cache
from synthloop.tasks.annotate import annotate_rows, human_labels, reannotate_rows
from synthloop.tasks.collect import (assess_synthetic, choose_generator, collect_data, collect_pretrain_data,
                                     select_pool_rows, synthesize_rows)
from synthloop.tasks.evaluate import evaluate_on_holdout
from synthloop.tasks.train import pretrain_model, train_model
from synthloop.tasks.validate import validate_model


@flow(name="develop", log_prints=False)
def develop(config: Config | None = None) -> dict[str, Any]:
    """Develop a model: collect → annotate → train → validate, going back until the goal is met, then test once.

    Args:
        config: The whole cycle's configuration; None runs the embedded default scenario.
    Returns:
        A summary: iterations (with validation metrics, decision and reason), test metrics, goal_met,
        and the MLflow and Prefect run ids.
    """
    from synthloop.tracking import Tracker

    cfg = config or Config.embedded_default()
    flow_run = get_run_context().flow_run
    tracker = Tracker(cfg.tracking.tracking_uri, cfg.tracking.experiment)
    killed = tracker.mark_ghost_runs()
    parent = tracker.get_or_create_parent(str(flow_run.id), flow_run.name)
    say = _Say()
    if killed:
        say(f"marked {len(killed)} MLflow run(s) left RUNNING by ended processes as KILLED")
    # A run of the same config that was killed or failed is resumed: finished stages come from Prefect's
    # persisted results (tasks/cache.py), and the new parent run links to the old one.
    resumed_from, scope = tracker.resume_scope(parent, cache.digest(cfg)[:16])
    if resumed_from:
        say(f"resuming MLflow run {resumed_from} (same config, ended early): finished stages are reused")
    scope_token = cache.set_scope(scope)
    open_runs = [parent]
    try:
        summary = _cycle(cfg, tracker, parent, open_runs, say, str(flow_run.id), flow_run.name)
    except BaseException as exc:
        from prefect.exceptions import TerminationSignal

        killed_by = (KeyboardInterrupt, SystemExit, TerminationSignal)
        status = "KILLED" if isinstance(exc, killed_by) else "FAILED"
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        for run_id in reversed(open_runs):
            try:
                tracker.finish(run_id, status, reason)
            except Exception:  # the store itself failed: nothing more can be recorded
                pass
        raise
    finally:
        cache.reset_scope(scope_token)
    tracker.finish(parent)
    cache.discard_scope(scope)  # a finished run is never resumed: its stage results can go
    return summary


class _Say:
    """Progress for the terminal (stderr) and the Prefect run log."""

    def __init__(self):
        self.logger = get_run_logger()

    def __call__(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        self.logger.info(message)


def _cycle(cfg: Config, tracker, parent: str, open_runs: list[str], say: _Say, flow_run_id: str,
           flow_run_name: str) -> dict[str, Any]:
    from synthloop.annotation import Ledger
    from synthloop.config import auto_time_budget
    from synthloop.env import default_threads
    from synthloop.judge import goal_metric, oriented
    from synthloop.models import default_spec
    from synthloop.policy import RuleBasedPolicy
    from synthloop.splits import encode_target

    started = time.monotonic()
    threads, seed = cfg.threads or default_threads(), cfg.seed
    retry = {"retries": cfg.retry.retries, "retry_delay_seconds": cfg.retry.delays_s}
    tracker.log_params(parent, {"config": cfg.model_dump(mode="json")})

    collected, sealed = collect_data.with_options(**retry)(cfg.data, seed)
    schema = collected.schema
    metric = goal_metric(cfg.goal, schema.task)
    tracker.log_params(parent, {"data": collected.lineage, "goal_metric": metric})
    tracker.set_tags(parent, {"task": schema.task, "target": schema.target, "source": collected.lineage["source"]})
    if schema.dropped:  # in the run's tags at a glance; the story gives each reason
        tracker.set_tags(parent, {"columns_left_out": ", ".join(schema.dropped)[:5000]})
    say(f"collect: {collected.lineage['source']} — {collected.lineage['rows']} rows, "
        f"{collected.lineage['columns']} features, {schema.task} of '{schema.target}'; split "
        f"{collected.lineage['train_rows']} train (labelled) / {collected.lineage['pool_rows']} pool / "
        f"{collected.lineage['val_rows']} validation / {collected.lineage['test_rows']} test (sealed)")
    kinds = pd.Series(list(schema.kinds.values())).value_counts()
    dropped = list(schema.dropped)
    named = ", ".join(dropped[:5]) + (f", {len(dropped) - 5} more" if len(dropped) > 5 else "")
    say(f"  columns: {', '.join(f'{n} {k}' for k, n in kinds.items())}"
        f"{f'; dropped {len(dropped)} ({named})' if dropped else ''}; strategy {cfg.data.strategy}")
    gaps = _missing_note(collected.train, schema.features)
    if gaps:
        say(f"  missing: {gaps}")
    for note in collected.notes:
        say(f"  note: {note}")
    imbalance = _imbalance_note(cfg.goal.metric, schema, collected.train[schema.target])
    if imbalance:
        say(f"  note: {imbalance}")
    records.log_datasets(tracker, parent, collected)

    X_val = collected.val[schema.features]
    y_val = encode_target(collected.val[schema.target], schema)
    family = cfg.model.family if cfg.model.family != "auto" else "xgboost"
    spec = default_spec(family, n_estimators=cfg.model.n_estimators, learning_rate=cfg.model.learning_rate,
                        max_depth=cfg.model.max_depth, early_stopping_rounds=cfg.model.early_stopping_rounds,
                        extra=cfg.model.params)
    state = LoopState(labelled=collected.train, target=schema.target,
                      origin=np.array(["real"], dtype=object).repeat(len(collected.train)), pool=collected.pool, spec=spec,
                      tried_families={family}, val=collected.val)
    ledger = Ledger(cfg.annotation.budget)
    state.book, state.label_dir = _label_book(cfg, collected, tracker, flow_run_id)
    if cfg.data.strategy == "from_scratch":
        ledger.book("pool", 0, len(collected.train), row_price(cfg), kind="row+label")
        say(f"  from scratch: bought {len(collected.train)} rows with labels for {ledger.spent:g}")
    if cfg.data.strategy == "pretrain_finetune":
        state.pretrained = _pretrain(cfg, state, schema, threads, seed, say)
        state.pretrained_family = state.spec.family
    open_ended = cfg.goal.threshold is None
    policy = RuleBasedPolicy(cfg.loop.min_improvement, open_ended=open_ended, metric=metric)
    budget = cfg.loop.time_budget_s or auto_time_budget(int(collected.lineage["rows"]))
    state.deadline = started + budget
    if open_ended:
        say(f"  goal: no threshold — the loop goes on while its moves pay on validation, within {budget:.0f}s "
            f"(loop.time_budget_s) and {cfg.loop.max_iterations} iterations")
    iterations: list[dict[str, Any]] = []
    action_in = "start"
    looks = 0

    for it in range(1, cfg.loop.max_iterations + 1):
        child = tracker.get_or_create_child(parent, f"iteration-{it}", records.child_run_name(flow_run_name, it),
                                            tags={"synthloop.iteration": str(it), "action_in": action_in})
        open_runs.append(child)
        it_started = time.monotonic()
        data = state.training_set(schema)
        reused = it > 1 and state.same_recipe_as_best()
        if reused:  # a seeded fit of the same recipe gives the same model: its scores are not looked at again
            trained, report = state.best["trained"], state.best["report"]
            say(f"  train: the recipe is iteration {state.best['iteration']}'s, so its model and validation scores "
                "are reused (no new fit, no new look at validation)")
            tracker.set_tags(child, {"reused_iteration": str(state.best["iteration"])})
        else:
            init = state.pretrained if state.spec.family == state.pretrained_family else None
            trained = train_model(data, state.spec, schema, X_val, y_val, it, threads, seed, init_model=init)
        if state.synthetic is not None and state.synthetic_choice is not None:
            generator, evidence = state.synthetic_choice
            tracker.log_metrics(child, {f"synth_{k}": v for k, v in (state.synthetic_report or {}).items()})
            tracker.log_metrics(child, {f"synth_choice_{k}": v for k, v in evidence.items()})
            tracker.log_params(child, {"synthetic.generator": generator, "synthetic.generator_setting":
                                       cfg.synthetic.generator, "synthetic.ratio": cfg.synthetic.ratio})
        if not reused:
            # On the last iteration a new label audit runs only to show what a re-annotation did: nothing follows
            # that could act on its flags (a still valid earlier audit costs nothing and is kept).
            last, previous_audit = it >= cfg.loop.max_iterations, state.previous_audit()
            skip_audit = last and action_in != "reannotate" and previous_audit is None
            report = validate_model(trained, data, schema, X_val, y_val, cfg.goal, it, threads, seed,
                                    audit=None if skip_audit else cfg.annotation,
                                    scorer=state.book.scorer(state.labelled[schema.target]),
                                    previous_audit=previous_audit, last=last)
            looks += 1
        before = state.best
        step = state.record(it, action_in, trained, report, metric, cfg.loop.min_improvement, y_val)
        decision, stopped_by = bound(policy.decide(report, state.history, state.options(cfg, ledger)), report, it,
                                     cfg.loop.max_iterations, time.monotonic() - started, budget,
                                     next_cost=time.monotonic() - it_started)
        kept_line = _not_kept_line(before, state.best, step, state.synthetic, reused, metric, action_in,
                                   decision.stops)

        record = {"iteration": it, "action_in": action_in, "metric": metric, "val_metrics": report.metrics,
                  "train_rows": trained.n_real, "synthetic_rows": trained.n_synthetic, "model": state.spec.describe(),
                  "decision": decision.action, "stage": decision.stage, "reason": decision.reason,
                  "alternatives": list(decision.alternatives), "label_cost": ledger.spent,
                  "labels_bought": labels_bought(ledger)}
        iterations.append(record)
        records.log_iteration(tracker, child, trained, report, decision, record, schema, it)
        records.log_labels(tracker, parent, child, report, ledger, iterations, metric, it)
        tracker.finish(child)
        open_runs.remove(child)
        say(f"iteration {it}: {metric} {report.score:.4f} on validation (baseline {report.baseline.get(metric, float('nan')):.4f}, "
            f"{trained.n_real} real + {trained.n_synthetic} synthetic rows, {state.spec.family}) → "
            f"{decision.action}: {decision.reason}")
        if kept_line:
            say(kept_line)
        if decision.stops:
            break
        action_in = decision.action
        state.build_on_best()
        _apply(decision, state, cfg, schema, ledger, trained, data, metric, tracker, parent, it, threads, seed,
               retry, say, iteration_run=child)

    best = state.best
    goal_met = bool(best["report"].passed)
    test_metrics = evaluate_on_holdout(best["trained"].pipeline, sealed, schema)
    val_score, test_score = best["report"].score, test_metrics.get(metric, float("nan"))
    gap = oriented(metric, val_score) - oriented(metric, test_score)
    tracker.log_metrics(parent, {f"test_{k}": v for k, v in test_metrics.items()})
    tracker.log_metrics(parent, {f"val_{k}": v for k, v in best["report"].metrics.items()})
    tracker.log_metrics(parent, {"val_test_gap": gap, "looks_at_validation": looks, "label_cost": ledger.spent,
                                 "iterations": len(iterations), "best_iteration": best["iteration"],
                                 "goal_met": float(goal_met)})
    tracker.set_tags(parent, {"goal_met": str(goal_met).lower(), "test_opened_at": sealed.opened_at,
                              "stopped_by": stopped_by,
                              "best_model": best["spec"].describe(), "best_iteration": best["iteration"]})
    if not goal_met:
        tracker.set_tags(parent, {"goal_shortfall": best["report"].shortfall})
    records.log_summary_plots(tracker, parent, iterations, metric, cfg, best, schema, X_val, y_val)
    if ledger.entries:
        tracker.log_text(parent, ledger.to_frame().to_csv(index=False), "ledger.csv")
        records.log_ledger(tracker, parent, ledger, iterations, metric, say)

    model_uri, version = tracker.log_model(
        parent, best["trained"].pipeline, task=schema.task, family=best["spec"].family,
        classes=list(schema.classes) if schema.classes is not None else None, kinds=dict(schema.kinds),
        example=X_val.head(5),
        registered_name=cfg.tracking.registered_model, goal_met=goal_met)
    summary = {
        "iterations": iterations, "test_metrics": test_metrics, "goal_met": goal_met, "goal_metric": metric,
        "goal_threshold": cfg.goal.threshold, "best_iteration": best["iteration"], "best_model": best["spec"].describe(),
        "val_test_gap": gap, "looks_at_validation": looks, "label_cost": ledger.spent,
        "shortfall": best["report"].shortfall, "mlflow_run_id": parent, "mlflow_experiment_id": tracker.experiment_id,
        "tracking_uri": tracker.uri, "model_uri": model_uri, "registered_model": cfg.tracking.registered_model,
        "registered_version": version, "prefect_flow_run_id": flow_run_id, "prefect_flow_run_name": flow_run_name,
        "seconds": round(time.monotonic() - started, 2), "stopped_by": stopped_by, "time_budget_s": budget,
        "dropped_columns": dict(schema.dropped),
    }
    summary["links"] = records.tell_story(tracker, summary)
    records.write_report(tracker, parent)
    say(f"test (opened once): {metric} {test_score:.4f} — validation {val_score:.4f}, gap {gap:+.4f}; "
        + records.outcome(goal_met, cfg.goal.threshold, best["report"].shortfall))
    _prefect_artifact(summary, tracker)
    return summary


def _pretrain(cfg: Config, state: LoopState, schema, threads: int, seed: int, say: _Say):
    """Pre-train on a large set once; the loop fine-tunes it on the real rows while the family allows."""
    from synthloop.models import FINE_TUNABLE, default_spec
    from synthloop.splits import encode_target

    if state.spec.family not in FINE_TUNABLE:
        say(f"  pretrain: {state.spec.family} cannot be fine-tuned; using xgboost for pre-train / fine-tune")
        state.spec = default_spec("xgboost", n_estimators=cfg.model.n_estimators, learning_rate=cfg.model.learning_rate,
                                  max_depth=cfg.model.max_depth, early_stopping_rounds=cfg.model.early_stopping_rounds)
        state.tried_families.add("xgboost")
    X_pre, y_pre = collect_pretrain_data(cfg.data, cfg.synthetic, state.labelled, schema, seed)
    model = pretrain_model(X_pre, encode_target(y_pre, schema), state.spec, schema, threads, seed)
    say(f"  pretrain: {state.spec.family} on {len(X_pre)} rows from {cfg.data.pretrain_source or 'synthetic'}; "
        "each iteration fine-tunes it on the real train rows")
    return model


def _apply(decision: Decision, state: LoopState, cfg: Config, schema, ledger, trained, data, metric, tracker, parent,
           it: int, threads: int, seed: int, retry: dict, say: _Say, iteration_run: str | None = None) -> None:
    """Go back to the stage the decision names and redo only what it changes (a design search's trials are
    recorded as runs nested in `iteration_run`, the iteration whose diagnosis asked for it)."""
    from synthloop import design
    from synthloop.config import HIGHER_IS_BETTER
    from synthloop.models import FAMILIES

    state.count(decision.action)
    if decision.action == "collect_labels":
        n = min(cfg.annotation.batch_size, state.options(cfg, ledger).labels_affordable)
        index = select_pool_rows.with_options(**retry)(state.pool, n, cfg.annotation.selection, trained.pipeline, it, seed)
        if cfg.annotation.mode == "human":
            rows, _, state.pool = state.pool.take(index)
            rows = rows.assign(**{schema.target: human_labels(rows, schema, cfg.annotation, ledger, it, state.label_dir,
                                                              say).to_numpy()})
        else:
            rows, state.pool = annotate_rows.with_options(**retry)(state.pool, index, schema, cfg.annotation, ledger, it,
                                                                   seed, book=state.book)
        if cfg.data.strategy == "from_scratch" and cfg.data.cost_per_row:
            ledger.book("pool", it, len(rows), cfg.data.cost_per_row, kind="row")
        state.labelled = pd.concat([state.labelled, rows])
        state.origin = np.concatenate([state.origin, np.full(len(rows), "real:bought", dtype=object)])
        say(f"  collect → annotate: bought {len(rows)} labels ({cfg.annotation.selection} selection), "
            f"spent {ledger.spent:g}{'' if cfg.annotation.budget is None else f' of {cfg.annotation.budget:g}'}")
    elif decision.action == "reannotate":
        _reannotate(state, cfg, schema, ledger, it, seed, retry, say)
    elif decision.action == "add_synthetic":
        balance = bool(decision.evidence.get("rebalance"))
        generator, evidence = choose_generator(state.labelled, schema, cfg.synthetic, it, threads, seed, metric)
        cv_metric = metric if schema.task == "classification" else "r2"
        shown = (lambda v: -v) if cv_metric == "log_loss" else (lambda v: v)  # scored negated: higher is better
        if decision.evidence.get("synthetic_if_cv_helps") and evidence and not _generator_helps(evidence):
            say(f"  synthetic: no generator helps by {int(evidence.get('cv_folds', 0))}-fold cross-validation on "
                f"train ({cv_metric}: real + synthetic at best {shown(_best_augmented(evidence)):.3f}, real only "
                f"{shown(evidence.get('cv_real', float('nan'))):.3f}): none added")
            return  # the recipe stays the best one: the next iteration reuses its model, and the loop moves on
        X_syn, y_syn = synthesize_rows(state.labelled, schema, cfg.synthetic, it, seed, balance, generator)
        state.synthetic, state.synthetic_choice = (X_syn, y_syn), (generator, evidence)
        ledger.book(f"synthetic:{generator}", it, len(X_syn), 0.0, kind="synthetic")
        if evidence:
            say(f"  synthetic: chose {generator} by {int(evidence['cv_folds'])}-fold cross-validation on train "
                f"({cv_metric}, real + synthetic: " + ", ".join(
                    f"{k.removeprefix('cv_').removesuffix('_augmented')} {shown(v):.3f}"
                    for k, v in evidence.items() if k.endswith("_augmented"))
                + f"; real only {shown(evidence['cv_real']):.3f})")
        say(f"  collect: {len(X_syn)} synthetic rows from a {generator} fitted to "
            f"{len(state.labelled)} real train rows (train only)")
        if cfg.synthetic.report:
            state.synthetic_report = assess_synthetic(state.labelled, X_syn, y_syn, state.val, schema, it, threads,
                                                      seed)
            r = state.synthetic_report
            say(f"  synthetic report: fidelity {r.get('fidelity_overall', float('nan')):.3f}, utility on validation "
                f"real {r.get('utility_real', float('nan')):.3f} / synthetic only {r.get('utility_synthetic', float('nan')):.3f}"
                f" / augmented {r.get('utility_augmented', float('nan')):.3f}, exact copies "
                f"{int(r.get('privacy_exact_copies', 0))}")
    elif decision.action == "change_design":
        from synthloop.flows.trials import record_search, search_designs

        candidates = design.design_candidates(state.spec, schema, data.y, trials=cfg.model.search_trials, seed=seed)
        # The search may spend about half of what is left of the loop's budget: the chosen design is still to be
        # fitted and validated, and later moves need their share.
        now = time.monotonic()
        deadline = now + 0.5 * max(0.0, state.deadline - now) if state.deadline else None
        search = search_designs(data, candidates, schema, metric, it, threads=threads, seed=seed,
                                current_family=state.spec.family, current=state.spec,
                                address=cfg.dask.address,
                                parallel=cfg.dask.parallel_trials, say=say, deadline=deadline)
        record_search(tracker, parent, it, metric, search, trials_parent=iteration_run)
        choice, runner_up, single = search["choice"], search["runner_up"], search["single"]
        kept = search["chosen_trial"]["spec"] == state.spec
        state.spec = choice["spec"]
        # One search per run: it spent its share of the budget on the designs most likely to pay, so the families it
        # had no time for count as tried (a second search would only repeat the first at a higher cost).
        state.tried_families.update(FAMILIES)
        sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
        shown = f"{runner_up['label']} (CV {metric} {sign * runner_up['score']:.4f})" if runner_up else "none"
        say(f"  train: design search, {len(search['ranked'])} designs by {choice['folds']}-fold CV on train "
            f"(validation not looked at) → {choice['label']} (CV {metric} {sign * choice['score']:.4f}); "
            f"runner-up {shown}" + ("; no other design beats the current one, so it stays" if kept else "")
            + (f"; {len(candidates) - len(search['ranked'])} of {len(candidates)} designs not tried: the search's "
               "share of the time budget was spent" if len(search["ranked"]) < len(candidates) else ""))
        if search.get("ensemble") and choice["spec"].family == "ensemble":
            say(f"  train: ensemble selection on out-of-fold predictions: {choice['spec'].describe()}")
        elif search.get("ensemble"):
            say(f"  train: the ensemble (CV {sign * search['ensemble']['score']:.4f}) did not beat the best single "
                f"design {single['label']}: kept the single design")
    elif decision.action == "train_longer":
        state.spec = design.train_longer(state.spec)
        say(f"  train: longer — {state.spec.describe()}")
    elif decision.action == "regularize":
        state.spec = design.regularize(state.spec)
        say(f"  train: regularized — {state.spec.describe()}")


def _not_kept_line(before, best, step, synthetic, reused: bool, metric: str, action_in: str,
                   stops: bool) -> str | None:
    """What the terminal says when an iteration did not become the best: whether its new synthetic rows fell
    within the noise or validation fell, and which iteration stays the best (and the next move builds on)."""
    from synthloop.judge import SCORE_TIE, oriented  # oriented is its own inverse: back to the metric's own sign

    if before is None or best is not before or reused:
        return None
    new_rows = synthetic is not None and synthetic is not before["synthetic"]
    stays = (f"iteration {before['iteration']} stays the best" if stops else
             f"the next move starts from iteration {before['iteration']}")
    delta = step.score - before["score"]  # oriented: higher is better
    if new_rows and delta > SCORE_TIE:
        return (f"  validation: {delta:+.4f} with the new synthetic rows is within the noise (a gain of "
                f"{step.needed:+.4f} would count): they are not kept, {stays}")
    what = "with the new synthetic rows" if new_rows else f"after {action_in}"
    # a tie keeps the earlier iteration: "no better than" reads truer than "against" beside two equal scores
    against = "no better than" if abs(delta) <= SCORE_TIE else "against"
    return (f"  validation: {metric} {oriented(metric, step.score):.4f} {what}, {against} iteration "
            f"{before['iteration']}'s {oriented(metric, before['score']):.4f}: not kept, {stays}")


#: How much better than real rows alone (accuracy or R², cross-validated on train) real + synthetic rows must
#: score for a generator to count as helping when no finding asked for synthetic rows.
GENERATOR_MARGIN = 0.002


def _best_augmented(evidence: dict[str, float]) -> float:
    return max((v for k, v in evidence.items() if k.endswith("_augmented")), default=float("nan"))


IMBALANCED_SHARE = 0.9  # a majority class this large leaves accuracy little room above always answering it


def _imbalance_note(goal_metric: str | None, schema, y: pd.Series) -> str | None:
    """A hint when accuracy is the default metric and one class holds most train rows: accuracy can then hardly beat
    the majority answer, while a ranking or probability metric still sees what the model knows."""
    if goal_metric is not None or schema.task != "classification" or not len(y):
        return None
    shares = y.value_counts(normalize=True)
    if shares.iloc[0] < IMBALANCED_SHARE:
        return None
    other = "roc_auc" if len(shares) == 2 else "log_loss"
    return (f"'{schema.target}' is imbalanced ({shares.iloc[0]:.1%} '{shares.index[0]}' in train): accuracy, the "
            f"default metric, can hardly beat answering '{shares.index[0]}' every time; --goal {other} (or "
            f"balanced_accuracy, f1_macro) judges the loop's moves by what the model tells apart")


def _missing_note(train: pd.DataFrame, features: list[str], shown: int = 4) -> str | None:
    """Which features have missing values in train, and how many, the largest shares first (None: none do).
    Markers such as "", NA, N/A, null and "?" were read as missing."""
    if not len(train) or not features:
        return None
    shares = train[features].isna().mean()
    shares = shares[shares > 0].sort_values(ascending=False, kind="stable")
    if shares.empty:
        return None
    listed = ", ".join(f"'{c}' {_share(v)}" for c, v in shares.head(shown).items())
    more = f", {len(shares) - shown} more" if len(shares) > shown else ""
    return (f"{len(shares)} of {len(features)} feature columns have missing values in train ({listed}{more}); "
            "trees split on them as missing, linear models take train's median and a missing flag; no row is dropped "
            "for a missing feature")


def _share(v: float) -> str:
    return f"{v:.0%}" if v >= 0.01 else "<1%"


def _generator_helps(evidence: dict[str, float]) -> bool:
    """Whether cross-validation on train found a generator whose rows beat real rows alone (False without it)."""
    return bool(_best_augmented(evidence) > evidence.get("cv_real", float("inf")) + GENERATOR_MARGIN)


def _prefect_artifact(summary: dict[str, Any], tracker) -> None:
    from prefect.artifacts import create_markdown_artifact

    rows = "\n".join(f"| {it['iteration']} | {it['val_metrics'].get(summary['goal_metric'], float('nan')):.4f} | "
                     f"{it['decision']} | {it['reason'].replace('|', '/')} |" for it in summary["iterations"])
    test = summary["test_metrics"].get(summary["goal_metric"], float("nan"))
    md = (f"## MLflow run `{summary['mlflow_run_id']}`\n\n"
          f"Tracking store: `{summary['tracking_uri']}` — experiment {summary['mlflow_experiment_id']}.\n\n"
          f"Open in the MLflow UI (`synthloop ui`): {tracker.run_link(summary['mlflow_run_id'])}\n\n"
          f"| iteration | validation {summary['goal_metric']} | decision | reason |\n|---|---|---|---|\n{rows}\n\n"
          f"**Test** {summary['goal_metric']}: {test:.4f} — goal met: **{summary['goal_met']}**; "
          f"model `{summary['best_model']}`, registered as `{summary['registered_model']}` "
          f"version {summary['registered_version']}.")
    if summary.get("dropped_columns"):
        md += "\n\n" + records.left_out_line(summary["dropped_columns"])
    create_markdown_artifact(markdown=md, key="mlflow-run", description="Where this run is recorded in MLflow")


# labels: who labels, the audit's flags, re-annotation, and the ledger in MLflow and the terminal ------------------
def _label_book(cfg: Config, collected, tracker, flow_run_id: str):
    """The run's LabelBook (holding the truth only in simulations) and its folder for human label files."""
    from synthloop.human import labels_folder
    from synthloop.labelling import LabelBook

    simulated = cfg.annotation.mode == "simulated" and len(collected.pool) and collected.pool.has_truth
    truth = collected.train[collected.schema.target] if simulated else None
    book = LabelBook(collected.schema.classes, truth=truth)
    return book, labels_folder(tracker.uri, cfg.annotation.labels_dir, flow_run_id)


def _reannotate(state: LoopState, cfg: Config, schema, ledger, it: int, seed: int, retry: dict, say: _Say) -> None:
    """Flagged labels: re-labelled (more votes, or a better annotator) or dropped, as `annotation.on_flag` says."""
    from synthloop.labelling import item_cost

    acfg = cfg.annotation
    if acfg.on_flag == "drop":
        keep = ~state.labelled.index.isin(state.flagged)
        state.labelled, state.origin = state.labelled[keep], state.origin[keep]
        say(f"  annotate: dropped {int((~keep).sum())} flagged labels; {len(state.labelled)} real rows remain")
        return
    index = state.flagged[: ledger.affordable(item_cost(acfg, relabel=True))]
    if acfg.mode == "human":
        current = state.labelled.loc[index, schema.target]
        labels = human_labels(state.labelled.loc[index], schema, acfg, ledger, it, state.label_dir, say, current=current)
        changed = int((labels != current).sum())
        state.labelled = state.labelled.copy()
        state.labelled.loc[index, schema.target] = labels.to_numpy()
    else:
        state.labelled, changed = reannotate_rows.with_options(**retry)(state.labelled, index, schema, acfg, ledger,
                                                                        state.book, it, seed)
    how = f"{acfg.reannotate_votes} vote(s) from {acfg.reannotate_by}" if acfg.reannotate_by else \
        f"{acfg.reannotate_votes} more vote(s), {'median' if schema.task == 'regression' else acfg.aggregation}"
    say(f"  annotate: re-labelled {len(index)} flagged rows ({'a person' if acfg.mode == 'human' else how}); "
        f"{changed} labels changed; spent {ledger.spent:g}"
        f"{'' if acfg.budget is None else f' of {acfg.budget:g}'}")


