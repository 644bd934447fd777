"""Design trials as a Prefect subflow whose tasks run on Dask (prefect-dask's DaskTaskRunner).

`search_designs` decides where the trials run (`synthloop.parallel.plan_trials`): in forks of this process or
serially in it (one `design` task), else one task per trial on a temporary LocalCluster sized to the cores, or on
an existing scheduler given by `dask.address` (`--dask-address tcp://HOST:PORT`). Each trial is judged by
cross-validation on train (never on validation) and records the worker it ran on.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE


@task(name="design-trial", task_run_name="trial-it{iteration}-{label}", cache_policy=NO_CACHE)
def run_design_trial(spec, schema, X, y, metric: str, iteration: int, label: str, threads: int, seed: int,
                     folds: int, slots: dict[str, int] | None = None) -> dict[str, Any]:
    """One design trial: K-fold CV on the training rows, with the fit's threads set for the worker.

    Args:
        spec: The design point.
        schema: Column kinds and task.
        X, y: Training rows (sampled down to what CV uses).
        metric: The goal metric.
        iteration: Loop iteration (for the task-run name).
        label: Short name of the design point (for the task-run name).
        threads: Threads a fit may use (LocalCluster: cores // workers).
        seed: Random seed.
        folds: CV folds.
        slots: Task slots per host of an existing cluster; each fit then gets host cores // slots.
    Returns:
        The trial: spec, label, CV score (higher is better), std, seconds, threads, worker address, pid.
    """
    from synthloop.design import run_trial

    return run_trial(spec, schema, X, y, metric=metric, threads=threads, seed=seed, folds=folds, slots=slots)


# The rows a search works on, by key. A flow's parameters are sent to the Prefect API (which refuses more than
# 512 KB), so the subflow takes the key; the rows go to the workers as task arguments, which Dask ships itself.
_ROWS: dict[str, tuple[Any, Any]] = {}


@flow(name="design-trials", flow_run_name="design-trials-it{iteration}", validate_parameters=False,
      log_prints=False)
def design_trials(candidates: list, schema, rows_key: str, metric: str, iteration: int, threads: int, seed: int,
                  folds: int, slots: dict[str, int] | None = None, deadline: float | None = None,
                  in_flight: int = 0) -> list[dict[str, Any]]:
    """Submit one task per design point to the flow's task runner and gather the trials.

    Stages: one `design-trial` task per candidate, then gathered. Without a deadline all are submitted at once.
    With one (a `time.monotonic()` value), at most `in_flight` run at a time and none starts after the deadline
    (the first two always run), as in a serial search: a trial is never cut off halfway, so no task run is
    left unfinished in Prefect.
    """
    from prefect.futures import wait

    from synthloop.design import trial_label

    X, y = _ROWS[rows_key]

    def submit(spec):
        return run_design_trial.submit(spec, schema, X, y, metric, iteration, trial_label(spec), threads, seed,
                                       folds, slots)

    if deadline is None or in_flight < 1:
        return [f.result() for f in [submit(spec) for spec in candidates]]
    waiting, running, finished = list(enumerate(candidates)), [], []
    while waiting or running:
        while waiting and len(running) < in_flight and (len(finished) + len(running) < 2
                                                       or time.monotonic() < deadline):
            index, spec = waiting.pop(0)
            running.append((index, submit(spec)))
        if not running:
            break
        done = wait([f for _, f in running], timeout=0.25).done
        for item in [r for r in running if r[1] in done]:
            running.remove(item)
            finished.append((item[0], item[1].result()))
    return [trial for _, trial in sorted(finished, key=lambda pair: pair[0])]


def search_designs(data, candidates: list, schema, metric: str, iteration: int, *, threads: int, seed: int,
                   current_family: str | None = None, address: str | None = None, parallel: bool = True,
                   say=None, current=None, deadline: float | None = None) -> dict[str, Any]:
    """Run a design search where it is cheapest and rank the trials.

    Args:
        data: The training set (`TrainingSet`).
        candidates: Design points to try.
        schema: Column kinds and task.
        metric: The goal metric.
        iteration: Loop iteration.
        threads: Threads a fit may use when run in this process.
        seed: Random seed.
        current_family: The loop's current family (the choice is of another family when there is one).
        current: The loop's current design; when given, the choice is the best other design, its family's
            other settings included (see `synthloop.design.rank_trials`).
        address: An existing Dask scheduler (`tcp://HOST:PORT`), or None.
        parallel: False runs the trials serially in this process.
        say: Where to report the plan (a callable taking a line), or None.
        deadline: A `time.monotonic()` value after which the search starts no new trial (serial or on Dask).
    Returns:
        `synthloop.design.choose_design`'s result (ranked trials, the choice — a single design or an ensemble
        of the best ones, ready to fit —, the runner-up, the ensemble) and "plan": the TrialPlan.
    """
    from synthloop.design import choose_design, cv_rows, folds_for
    from synthloop.parallel import connect, plan_trials, prefect_api_for_workers, slots_by_host

    X, y = cv_rows(data.X, data.y, seed)
    folds = folds_for(len(y))
    plan = plan_trials(len(candidates), len(y), X.shape[1], folds=folds, threads=threads, address=address,
                       parallel=parallel)
    if say:
        say(f"  train: {len(candidates)} design trials, {folds}-fold CV on train — {plan.describe()}")
    if plan.mode in ("serial", "forks"):
        from synthloop.tasks.train import search_design

        trials = search_design(data, candidates, schema, metric, iteration, plan.fit_threads, seed, folds, deadline,
                               plan.slots)
    else:
        from prefect_dask import DaskTaskRunner

        slots = None
        in_flight = plan.n_workers
        if plan.mode == "address":
            client = connect(plan.address)
            try:
                slots = slots_by_host(client)
            finally:
                client.close()
            in_flight = sum(slots.values()) if slots else len(candidates)
        runner = DaskTaskRunner(**plan.runner_kwargs())
        key = uuid.uuid4().hex
        _ROWS[key] = (X, y)
        try:
            with prefect_api_for_workers():
                trials = design_trials.with_options(task_runner=runner)(candidates, schema, key, metric, iteration,
                                                                         plan.fit_threads, seed, folds, slots,
                                                                         deadline, in_flight)
        finally:
            _ROWS.pop(key, None)
    if current is None and current_family is not None:
        current = next((t["spec"] for t in trials if t["spec"].family == current_family), None)
    return {**choose_design(trials, schema, y, metric, current=current), "plan": plan}


def record_search(tracker, parent: str, iteration: int, metric: str, search: dict[str, Any],
                  trials_parent: str | None = None) -> None:
    """Every trial as an MLflow run nested in `trials_parent` (the iteration's run; the flow's run when None), with
    params, CV score, rank and where it ran, the choice and the runner-up tagged; the choice as tags and the whole
    search as `design/search-it{N}.json` on the flow's run. Nested in the iteration, the trials stay out of the
    flow run's own list of child runs, which then shows the iterations."""
    from synthloop.config import HIGHER_IS_BETTER
    from synthloop.design import design_params

    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    plan = search["plan"]
    rows = []
    listed = search["ranked"] + ([search["ensemble"]] if search.get("ensemble") else [])
    chosen = search.get("chosen_trial", search["choice"])
    for rank, trial in enumerate(listed, start=1):
        role = ("choice" if trial is chosen else "runner_up" if trial is search["runner_up"] else "")
        run = tracker.get_or_create_child(trials_parent or parent, f"trial-{iteration}-{trial['label']}",
                                          f"design-{iteration}-{trial['label']}",
                                          tags={"synthloop.trial": "true", "synthloop.iteration": str(iteration),
                                                "synthloop.trial_role": role or "candidate",
                                                "worker": trial["worker"], "executor": plan.mode})
        tracker.log_params(run, design_params(trial["spec"]))
        tracker.log_metrics(run, {f"cv_{metric}": sign * trial["score"], "cv_std": trial["std"], "rank": rank,
                                  "trial_seconds": trial["seconds"], "fit_threads": trial["threads"]})
        tracker.finish(run)
        rows.append({"rank": rank, "label": trial["label"], "family": trial["spec"].family,
                     "params": design_params(trial["spec"]), "rounds": trial.get("rounds"), f"cv_{metric}": sign * trial["score"], "cv_std": trial["std"],
                     "seconds": round(trial["seconds"], 3), "threads": trial["threads"], "worker": trial["worker"],
                     "role": role})
    runner_up = search["runner_up"]
    tracker.set_tags(parent, {f"design_choice_it{iteration}": chosen["label"],
                              f"design_runner_up_it{iteration}": runner_up["label"] if runner_up else "none"})
    tracker.log_dict(parent, {"iteration": iteration, "metric": metric, "executor": plan.describe(),
                              "folds": search["choice"]["folds"], "trials": rows},
                     f"design/search-it{iteration}.json")

