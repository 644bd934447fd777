"""Operations commands: the two UIs, scheduled retrains, the champion, and comparing runs.

`ui`, `serve`, `retrain`, `promote`, `rollback`, `runs`, `compare`. Nothing heavy is imported at module
level: `synthloop --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

MLFLOW_DEFAULT = "http://127.0.0.1:5000"


def add_commands(sub) -> None:
    from synthloop.cli import HelpFormatter as fmt

    def store_options(p, config: bool = True) -> None:
        if config:
            p.add_argument("--config", metavar="FILE", help="YAML config (see `synthloop config`)")
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="override any config field, e.g. --set retrain.margin=0.01 (repeatable)")
        p.add_argument("--tracking-uri", metavar="URI",
                       help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///./mlruns/mlflow.db)")
        p.add_argument("--experiment", metavar="NAME", help="MLflow experiment name (default: synthloop)")

    ui = sub.add_parser("ui", formatter_class=fmt,
                        help="start the MLflow UI (and the Prefect server, unless one runs) on 127.0.0.1; Ctrl-C stops what it started")
    ui.add_argument("--prefect-port", type=int, metavar="PORT", help="default: 4200, or a free port if taken")
    ui.add_argument("--mlflow-port", type=int, metavar="PORT", help="default: 5000, or a free port if taken")
    ui.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for both to be healthy")
    store_options(ui, config=False)
    ui.set_defaults(handler=_cmd_ui)

    stop = sub.add_parser("stop", formatter_class=fmt,
                          help="stop the local Prefect server runs started in the background (and `synthloop ui`)")
    store_options(stop, config=False)
    stop.set_defaults(handler=_cmd_stop)

    serve = sub.add_parser("serve", formatter_class=fmt,
                           help="serve scheduled retrains (Prefect flow.serve with a cron schedule); Ctrl-C pauses it")
    serve.add_argument("--cron", metavar="EXPR", help="cron schedule (default: retrain.cron, '0 3 * * *')")
    serve.add_argument("--timezone", metavar="TZ", help="timezone of the schedule (default: retrain.timezone, UTC)")
    serve.add_argument("--name", default="nightly", help="deployment name: the deployment is retrain/NAME")
    store_options(serve)
    serve.set_defaults(handler=_cmd_serve)

    resume = sub.add_parser("resume", formatter_class=fmt,
                            help="resume a paused flow run (human labels filled in) on its Prefect server")
    resume.add_argument("flow_run", metavar="FLOW_RUN_ID", help="the paused run's Prefect flow-run id")
    store_options(resume, config=False)
    resume.set_defaults(handler=_cmd_resume)

    retrain = sub.add_parser("retrain", formatter_class=fmt,
                             help="retrain once now: drift, develop a challenger, promote only if better")
    retrain.add_argument("--json", action="store_true", help="print one JSON line with the outcome on stdout")
    store_options(retrain)
    retrain.set_defaults(handler=_cmd_retrain)

    promote = sub.add_parser("promote", formatter_class=fmt,
                             help="make a registered version (or a run's version) the champion")
    promote.add_argument("target", metavar="VERSION|RUN", help="a version number or an MLflow run id")
    promote.add_argument("--reason", default="promoted by hand", help="recorded on the version")
    promote.add_argument("--model", metavar="NAME", help="registered model (default: tracking.registered_model)")
    store_options(promote)
    promote.set_defaults(handler=_cmd_promote)

    rollback = sub.add_parser("rollback", formatter_class=fmt,
                              help="make the previous champion the champion again (they swap aliases)")
    rollback.add_argument("--reason", default="rolled back by hand", help="recorded on the version")
    rollback.add_argument("--model", metavar="NAME", help="registered model (default: tracking.registered_model)")
    store_options(rollback)
    rollback.set_defaults(handler=_cmd_rollback)

    runs = sub.add_parser("runs", formatter_class=fmt,
                          help="recent development runs and retrains (promoted or kept, and why), with links")
    runs.add_argument("--limit", type=int, default=15, help="how many runs, newest first")
    runs.add_argument("--json", action="store_true", help="print the rows as JSON lines instead")
    store_options(runs, config=False)
    runs.set_defaults(handler=_cmd_runs)

    compare = sub.add_parser("compare", formatter_class=fmt,
                             help="differences between runs, a comparison plot, and links into both UIs")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="MLflow run ids (or unique prefixes), two or more")
    compare.add_argument("--out", metavar="FILE.png", help="plot file (default: compare-<run>-<run>.png here)")
    store_options(compare, config=False)
    compare.set_defaults(handler=_cmd_compare)


# helpers --------------------------------------------------------------------------------------------
def _config(args: argparse.Namespace):
    import yaml

    from synthloop.config import Config
    from synthloop.errors import ConfigError

    overrides: dict[str, Any] = {"tracking.tracking_uri": args.tracking_uri, "tracking.experiment": args.experiment}
    for item in getattr(args, "set", []) or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: write it as KEY=VALUE, e.g. --set retrain.margin=0.01")
        overrides[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return Config.load(getattr(args, "config", None), overrides)


def _tracker(args: argparse.Namespace):
    from synthloop.tracking import Tracker

    return Tracker(args.tracking_uri, args.experiment or "synthloop")


def _ui_bases(tracking_uri: str | None) -> tuple[str | None, str | None]:
    """(MLflow UI, Prefect UI) base URLs of live servers started by `synthloop ui`, else None."""
    from synthloop import ui

    state = ui.read_state(tracking_uri) or {}
    return (state.get("mlflow", {}).get("url"), state.get("prefect", {}).get("url"))


def _quiet() -> None:
    """Our lines tell the story; Prefect's console and MLflow's INFO lines stay down."""
    import logging

    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


# ui -------------------------------------------------------------------------------------------------
def _cmd_ui(args: argparse.Namespace) -> int:
    from synthloop import ui
    from synthloop.tracking import Tracker, resolve_tracking_uri

    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops both, even when started in background
    _quiet()
    uri, artifact_root = resolve_tracking_uri(args.tracking_uri)
    directory = ui.store_dir(args.tracking_uri)
    running = ui.read_state(args.tracking_uri)
    if running:
        urls = ", ".join(v["url"] for v in running.values() if isinstance(v, dict))
        raise ui.ServerError(f"servers for this store already answer at {urls} (see {directory / ui.STATE_FILE}); "
                             "stop that `synthloop ui` first")
    local = ui.local_state()
    for port in (args.prefect_port, args.mlflow_port):
        if port is not None and ui.port_in_use(port) and not (local and local["url"].endswith(f":{port}")):
            raise ui.ServerError(f"port {port} on 127.0.0.1 is in use; pick another or leave the option out")
    tracker = Tracker(uri, args.experiment or "synthloop")  # creates or migrates the store once, under its lock
    # The usual ports (bookmarks and docs use them) when they are free, else any free port.
    prefect = ui.local_server(port=args.prefect_port)  # the local server runs use, or a new one
    if args.prefect_port and not prefect.started and not prefect.url.endswith(f":{args.prefect_port}"):
        print(f"the local Prefect server already runs at {prefect.url}; using it (not :{args.prefect_port})",
              file=sys.stderr)
    mlflow_port = args.mlflow_port or (5000 if not ui.port_in_use(5000) else ui.free_port())
    while prefect.url.endswith(f":{mlflow_port}"):
        mlflow_port = ui.free_port()
    logs = directory / "logs"
    mlflow = ui.mlflow_server(mlflow_port, uri, artifact_root, logs)
    state_path = None
    print(f"{'starting' if prefect.started else 'using'} the Prefect server ({prefect.url}) and starting the MLflow "
          f"UI (:{mlflow_port}) ...", file=sys.stderr)
    try:
        mlflow.start()
        prefect.wait(args.timeout)
        ui.wait_healthy([mlflow], args.timeout)
        state_path = ui.write_state(directory, [prefect, mlflow], uri, tracker.experiment_id)
        kept = "" if prefect.started else " (the Prefect server was running before and stays up: `synthloop stop`)"
        print(f"Prefect UI  {prefect.url}   (flow runs; API {prefect.api_url})\n"
              f"MLflow UI   {tracker.experiment_link(mlflow.url)}   (runs of experiment "
              f"{args.experiment or 'synthloop'})\n"
              f"store       {uri}\n"
              f"`synthloop run` and `synthloop serve` in another terminal now use these servers "
              f"(state in {state_path}). Ctrl-C stops {'both' if prefect.started else 'the MLflow UI'}{kept}.",
              flush=True)
        while True:
            code = mlflow.proc.poll()
            if code is not None:
                print(f"synthloop: the mlflow server exited with status {code}; its log {mlflow.log} ends "
                      f"with:\n{mlflow.log_tail()}", file=sys.stderr)
                return 1
            if not ui.pid_alive(prefect.pid):
                print(f"synthloop: the Prefect server (pid {prefect.pid}) exited; its log {prefect.log} ends with:\n"
                      f"{ui._tail(prefect.log)}", file=sys.stderr)
                return 1
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("stopping the servers `synthloop ui` started ...", file=sys.stderr)
    finally:
        ui.stop(mlflow)
        if prefect.started:
            ui.stop_local_server(prefect)
        if state_path is not None and state_path.exists():
            state_path.unlink()
    print("stopped.", file=sys.stderr)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    """Stop the local Prefect server and any `synthloop ui` servers of the store."""
    from synthloop import ui

    stopped = []
    state = ui.read_state(args.tracking_uri)
    ui_pid = (state or {}).get("ui_pid")
    if ui_pid and ui_pid != os.getpid() and ui.pid_alive(int(ui_pid)):
        os.kill(int(ui_pid), signal.SIGINT)  # `synthloop ui` stops what it started, as on Ctrl-C
        deadline = time.monotonic() + 30
        while ui.pid_alive(int(ui_pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        stopped.append(f"`synthloop ui` (pid {ui_pid})")
    for name, entry in (state or {}).items():  # servers left by a `ui` that is gone
        if isinstance(entry, dict) and "pid" in entry and ui.pid_alive(int(entry["pid"])) and name != "prefect":
            ui.stop_pid(int(entry["pid"]))
            stopped.append(f"{name} (pid {entry['pid']})")
    (ui.store_dir(args.tracking_uri) / ui.STATE_FILE).unlink(missing_ok=True)
    local = ui.stop_local_server()
    if local:
        stopped.append(f"the local Prefect server {local.url} (pid {local.pid})")
    from synthloop import runner

    warm = runner.stop()
    if warm:
        stopped.append(f"the warm runner (pid {warm['pid']})")
    print(("stopped " + ", ".join(stopped)) if stopped else "nothing to stop: no local Prefect server, warm runner "
          "or `synthloop ui` runs", file=sys.stderr)
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from synthloop import ui

    _quiet()
    api = ui.resume_run(args.flow_run, args.tracking_uri)
    print(f"resumed flow run {args.flow_run} on {api}: it reads the label file back (a bad file pauses it again; "
          "its log says why)", file=sys.stderr)
    return 0


# serve / retrain --------------------------------------------------------------------------------------
def _cmd_serve(args: argparse.Namespace) -> int:
    import signal

    from synthloop import ui
    from synthloop.deployments.serve import check_schedule, serve_retrain

    # Ctrl-C stops serving however it was started: a process started in the background by a script inherits
    # SIGINT ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    config = _config(args)
    cron, tz = args.cron or config.retrain.cron, args.timezone or config.retrain.timezone
    check_schedule(cron, tz)
    _check_source(config)
    prefect = ui.choose_prefect(config.tracking.tracking_uri)
    if prefect.api_url is None:
        raise ui.ServerError("serve needs a lasting Prefect server: unset SYNTHLOOP_PREFECT_SERVER=temporary "
                             "(the local server is then used), or set PREFECT_API_URL")
    prefect.ready()
    if prefect.note():
        print(prefect.note(), file=sys.stderr)
    _quiet()
    print(f"serving retrain/{args.name} on {os.environ['PREFECT_API_URL']}: cron '{cron}' ({tz}). "
          "Ctrl-C stops serving and pauses the schedule.", file=sys.stderr, flush=True)
    try:
        serve_retrain(config, name=args.name, cron=cron, timezone=tz)
    except KeyboardInterrupt:
        pass
    print(f"serve stopped: the schedule of retrain/{args.name} is paused until `synthloop serve` runs again.",
          file=sys.stderr)
    return 0


def _check_source(config) -> None:
    """A typo in the source, target, columns or goal is answered before any run (see synthloop/preflight.py)."""
    from synthloop.preflight import check_run

    check_run(config)


def _cmd_retrain(args: argparse.Namespace) -> int:
    from synthloop import ui

    config = _config(args)
    _check_source(config)
    prefect = ui.choose_prefect(config.tracking.tracking_uri)
    state = ui.read_state(config.tracking.tracking_uri)
    _quiet()
    from synthloop.flows.retrain import retrain

    from synthloop.cli import _prefect_ready

    _prefect_ready(prefect)

    from synthloop.cli import no_heartbeats

    with no_heartbeats():
        result = retrain(config)
    if args.json:
        keep = ("promoted", "reason", "metric", "champion_version", "challenger_version", "former_champion_version",
                "challenger_val", "champion_val", "validation_rows", "mlflow_run_id", "challenger_run_id",
                "prefect_flow_run_id")
        print(json.dumps({k: result[k] for k in keep}, default=str))
        return 0
    print(f"\n{'PROMOTED' if result['promoted'] else 'champion kept'}: {result['reason']}")
    print(result["drift"]["summary"])
    print(f"champion is version {result['champion_version']}"
          + (f" (previous: {result['former_champion_version']})" if result["promoted"] and
             result["former_champion_version"] else ""))
    mlflow_base, prefect_base = _ui_bases(config.tracking.tracking_uri) if state else (None, None)
    prefect_base = prefect_base or (prefect.server.url if prefect.server else None)
    print(f"MLflow retrain run {result['mlflow_run_id']}, challenger run {result['challenger_run_id']}")
    if mlflow_base:
        from synthloop.tracking import Tracker

        tracker = Tracker(config.tracking.tracking_uri, config.tracking.experiment)
        print(f"  {tracker.run_link(result['mlflow_run_id'], mlflow_base)}")
    if prefect_base:
        print(f"  {ui.prefect_run_link(prefect_base, result['prefect_flow_run_id'])}")
    return 0


# promote / rollback ---------------------------------------------------------------------------------
def _model_name(args: argparse.Namespace) -> str:
    from synthloop.errors import ConfigError

    name = args.model or _config(args).tracking.registered_model
    if not name:
        raise ConfigError("no registered model: pass --model NAME or set tracking.registered_model")
    return name


def _cmd_promote(args: argparse.Namespace) -> int:
    from synthloop import registry

    name = _model_name(args)
    tracker = _tracker(args)
    client = registry.client_for(tracker.uri)
    version = args.target if args.target.isdigit() else registry.version_of_run(client, name, _resolve_run(
        tracker, args.target))
    change = registry.promote(client, name, version, args.reason)
    print(f"{name}: champion is version {change.champion}"
          + (f"; previous is version {change.previous} (`synthloop rollback` to go back)" if change.previous else ""))
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from synthloop import registry

    name = _model_name(args)
    tracker = _tracker(args)
    change = registry.rollback(registry.client_for(tracker.uri), name, args.reason)
    print(f"{name}: champion is version {change.champion} again; previous is version {change.previous}")
    return 0


# runs / compare -------------------------------------------------------------------------------------
def _resolve_run(tracker, prefix: str) -> str:
    from synthloop.errors import SynthloopError

    if len(prefix) == 32:
        return prefix
    found = [r.info.run_id for r in tracker.client.search_runs([tracker.experiment_id], "", max_results=5000)
             if r.info.run_id.startswith(prefix)]
    if len(found) != 1:
        raise SynthloopError(f"run {prefix!r}: {'no run' if not found else f'{len(found)} runs'} in experiment "
                             f"{tracker.experiment_id} start with it; `synthloop runs` lists them")
    return found[0]


def run_table(tracker, limit: int, run_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per development run (newest first): the figures `runs` and `compare` print.

    Args:
        tracker: The experiment's Tracker.
        limit: How many runs.
        run_ids: Only these runs (in this order), else the newest development runs.
    Returns:
        Dicts with run_id, started, status, iterations, goal_met, metric, val, test, rows, synthetic_share,
        label_cost, seconds, version, aliases, prefect_flow_run_id, and the per-iteration validation path.
    """
    import mlflow

    from synthloop import registry

    exp = [tracker.experiment_id]
    if run_ids:
        parents = [tracker.client.get_run(r) for r in run_ids]
    else:
        parents = tracker.client.search_runs(exp, "tags.`synthloop.kind` = 'parent'", max_results=limit,
                                             order_by=["attributes.start_time DESC"])
    if not parents:
        return []
    children = mlflow.search_runs(exp, "tags.`synthloop.kind` = 'child'", max_results=50_000,
                                  output_format="list")
    by_parent: dict[str, list[Any]] = {}
    for child in children:
        if "iteration" in child.data.params and child.data.tags.get("synthloop.trial") != "true":
            by_parent.setdefault(child.data.tags.get("mlflow.parentRunId", ""), []).append(child)
    versions: dict[str, tuple[str, list[str]]] = {}
    name = None
    try:
        found = tracker.client.search_model_versions(f"run_id IN ({','.join(repr(p.info.run_id) for p in parents)})")
        for v in found:
            versions[v.run_id] = (str(v.version), list(getattr(v, "aliases", []) or []))
            name = v.name
        if name:  # aliases are listed on the registered model in some stores, not on versions
            for alias in (registry.CHAMPION, registry.PREVIOUS):
                mv = registry.version_by_alias(tracker.client, name, alias)
                if mv is not None and mv.run_id in versions and alias not in versions[mv.run_id][1]:
                    versions[mv.run_id][1].append(alias)
    except Exception:  # a store without a model registry: no version column
        pass
    rows = []
    for p in parents:
        d = p.data
        metric = d.params.get("goal_metric", "")
        its = sorted(by_parent.get(p.info.run_id, []), key=lambda c: int(c.data.params.get("iteration", 0)))
        best_it = d.tags.get("best_iteration")
        best = next((c for c in its if c.data.params.get("iteration") == best_it), its[-1] if its else None)
        real = int(best.data.params.get("rows_real", 0)) if best else None
        synth = int(best.data.params.get("rows_synthetic", 0)) if best else None
        version, aliases = versions.get(p.info.run_id, (None, []))
        end = p.info.end_time or int(time.time() * 1000)
        rows.append({
            "run_id": p.info.run_id, "run_name": p.info.run_name, "status": p.info.status,
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(p.info.start_time / 1000)),
            "iterations": int(d.metrics["iterations"]) if "iterations" in d.metrics else len(its),
            "goal_met": d.tags.get("goal_met"), "metric": metric,
            "val": d.metrics.get(f"val_{metric}"), "test": d.metrics.get(f"test_{metric}"),
            "rows": real, "synthetic_rows": synth,
            "synthetic_share": None if real is None else round(synth / max(1, real + synth), 4),
            "label_cost": d.metrics.get("label_cost"), "seconds": round((end - p.info.start_time) / 1000, 1),
            "version": version, "aliases": aliases, "best_model": d.tags.get("best_model"),
            "prefect_flow_run_id": d.tags.get("prefect.flow_run_id"),
            "val_path": [c.data.metrics.get(f"val_{metric}") for c in its],
            "iteration_run_ids": [c.info.run_id for c in its],
            "reason": d.tags.get("failure_reason") or d.tags.get("goal_shortfall"),
        })
    return rows


def retrain_table(tracker, limit: int) -> list[dict[str, Any]]:
    """One row per retrain (newest first): the decision, both models' validation scores, drift and the reason."""
    records = tracker.client.search_runs([tracker.experiment_id], "tags.`synthloop.kind` = 'retrain'",
                                         max_results=limit, order_by=["attributes.start_time DESC"])
    rows = []
    for r in records:
        d = r.data
        metric = d.params.get("goal_metric", "")
        end = r.info.end_time or int(time.time() * 1000)
        rows.append({
            "kind": "retrain", "run_id": r.info.run_id, "run_name": r.info.run_name, "status": r.info.status,
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.info.start_time / 1000)),
            "decision": d.tags.get("decision"), "reason": d.tags.get("reason") or d.tags.get("failure_reason"),
            "metric": metric, "challenger": d.metrics.get(f"challenger_val_{metric}"),
            "champion": d.metrics.get(f"champion_val_{metric}"),
            "challenger_version": d.params.get("challenger_version"),
            "former_champion_version": d.params.get("former_champion_version"),
            "drift_psi_max": d.metrics.get("drift_psi_max"), "drift_alerts": d.metrics.get("drift_features_alert"),
            "challenger_run_id": d.tags.get("synthloop.challenger_run_id"),
            "prefect_flow_run_id": d.tags.get("prefect.flow_run_id"),
            "seconds": round((end - r.info.start_time) / 1000, 1),
        })
    return rows


def _print_retrains(rows: list[dict[str, Any]]) -> None:
    print()
    print("retrains")
    print(f"{'run':<8}  {'started':<16}  {'decision':<8}  {'metric':<9}  {'challngr':>8}  {'champion':>8}  "
          f"{'psi max':>7}  {'secs':>6}  reason")
    for r in rows:
        versions = (f"v{r['challenger_version']}" if r["challenger_version"] else "-")
        if r["former_champion_version"] and r["former_champion_version"] != "None":
            versions += f" vs v{r['former_champion_version']}"
        decision = r["decision"] or r["status"].lower()
        reason = (r["reason"] or "").replace("\n", " ")
        print(f"{r['run_id'][:8]:<8}  {r['started']:<16}  {decision:<8}  {r['metric'][:9]:<9}  "
              f"{_fmt(r['challenger']):>8}  {_fmt(r['champion']):>8}  {_fmt(r['drift_psi_max'], '.3f'):>7}  "
              f"{r['seconds']:>6.1f}  {versions}: {reason[:120] + ('…' if len(reason) > 120 else '')}")


def _fmt(value: Any, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _cmd_runs(args: argparse.Namespace) -> int:
    tracker = _tracker(args)
    rows = run_table(tracker, args.limit)
    retrains = retrain_table(tracker, args.limit)
    if args.json:
        for row in [{"kind": "develop", **row} for row in rows] + retrains:
            print(json.dumps(row, default=str))
        return 0
    if not rows and not retrains:
        print(f"no runs yet in experiment {tracker.experiment_id} of {tracker.uri}; `synthloop run` makes one")
        return 0
    head = (f"{'run':<8}  {'started':<16}  {'it':>2}  {'goal':<4}  {'metric':<9}  {'val':>7}  {'test':>7}  "
            f"{'rows':>6}  {'synth':>5}  {'labels':>6}  {'secs':>6}  model")
    print(head)
    for r in rows:
        model = f"v{r['version']}" + (f" ({', '.join(r['aliases'])})" if r["aliases"] else "") if r["version"] else "-"
        goal = {"true": "met", "false": "no"}.get(r["goal_met"], "?")
        print(f"{r['run_id'][:8]:<8}  {r['started']:<16}  {r['iterations']:>2}  {goal:<4}  {r['metric'][:9]:<9}  "
              f"{_fmt(r['val']):>7}  {_fmt(r['test']):>7}  {_fmt(r['rows']):>6}  "
              f"{_fmt(r['synthetic_share'], '.0%'):>5}  {_fmt(r['label_cost'], 'g'):>6}  {r['seconds']:>6.1f}  "
              f"{model}" + ("" if r["status"] == "FINISHED" else f"  [{r['status']}]"))
        if r["status"] in ("FAILED", "KILLED"):  # why it ended early, on its own line: the reason is the point of the row
            reason = " ".join((r["reason"] or "no reason recorded").split())
            print(f"{'':<8}  {r['status'].lower()}: {reason[:200] + ('…' if len(reason) > 200 else '')}")
    if retrains:
        _print_retrains(retrains)
    _print_links(tracker, rows)
    return 0


def _print_links(tracker, rows: list[dict[str, Any]], compare: bool = False) -> None:
    from synthloop import ui

    mlflow_base, prefect_base = _ui_bases(tracker.uri)
    local = ui.local_state() if not prefect_base else None  # the local Prefect server runs started
    prefect_base = prefect_base or (local["url"] if local and ui.healthy(local["health"], 1.0) else None)
    shown = mlflow_base or MLFLOW_DEFAULT
    print()
    if not mlflow_base:
        print("links (start the UIs with `synthloop ui`; ports differ when it picked free ones):")
    ids = [r["run_id"] for r in rows]
    print(f"MLflow   runs     {tracker.experiment_link(shown)}")
    if compare:
        print(f"         compare  {tracker.compare_link(ids, shown)}")
        its = [i for r in rows for i in r["iteration_run_ids"]]
        if its:
            print(f"         iterations {tracker.compare_link(its, shown)}")
    if prefect_base:
        for r in rows[: 10 if compare else 3]:
            if r["prefect_flow_run_id"]:
                print(f"Prefect  {r['run_id'][:8]}  {ui.prefect_run_link(prefect_base, r['prefect_flow_run_id'])}")
    else:
        print("Prefect  flow runs appear at <Prefect UI>/runs once its server runs (`synthloop ui`); each run's "
              "flow-run id is in `synthloop runs --json`")


def _cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from synthloop.errors import SynthloopError

    if len(args.runs) < 2:
        raise SynthloopError("compare needs two or more runs")
    tracker = _tracker(args)
    ids = [_resolve_run(tracker, r) for r in args.runs]
    for run_id in ids:
        if tracker.client.get_run(run_id).data.tags.get("synthloop.kind") != "parent":
            raise SynthloopError(f"run {run_id} is not a development run (an iteration or retrain record?); "
                                 "`synthloop runs` lists the development runs")
    rows = run_table(tracker, len(ids), ids)
    runs = [tracker.client.get_run(r) for r in ids]
    short = [r[:8] for r in ids]
    width = max(12, *(len(s) for s in short))

    def line(label: str, values: list[str]) -> str:
        return f"{label:<34.34}  " + "  ".join(f"{v:>{width}.{width}}" for v in values)

    print(line("", short))
    for key, label, spec in (("iterations", "iterations", "d"), ("goal_met", "goal met", ""), ("val", "validation", ".4f"),
                             ("test", "test", ".4f"), ("rows", "rows (best iteration)", "d"),
                             ("synthetic_share", "synthetic share", ".0%"), ("label_cost", "label cost", "g"),
                             ("seconds", "seconds", ".1f")):
        print(line(label if key not in ("val", "test") else f"{label} {rows[0]['metric']}",
                   [_fmt(r[key], spec) if spec else _fmt(r[key]) for r in rows]))
    for r in rows:
        print(f"model of {r['run_id'][:8]}: {r['best_model']}")
    params = [r.data.params for r in runs]
    differ = sorted(k for k in set().union(*params) if len({p.get(k) for p in params}) > 1
                    and not k.endswith("_digest"))
    print(f"\nparams that differ ({len(differ)}):" if differ else "\nparams: identical")
    for k in differ[:40]:
        print(line(k, [p.get(k, "-") for p in params]))
    if len(differ) > 40:
        print(f"  ... and {len(differ) - 40} more")
    metrics = [r.data.metrics for r in runs]
    mdiff = sorted(k for k in set().union(*metrics) if len({round(m.get(k, float('nan')), 6) for m in metrics}) > 1
                   and (k.startswith(("test_", "val_")) or k in ("val_test_gap", "looks_at_validation")))
    if mdiff:
        print("\nmetrics that differ:")
        for k in mdiff:
            print(line(k, [_fmt(m.get(k)) for m in metrics]))
    out = Path(args.out or f"compare-{'-'.join(short[:4])}.png")
    _comparison_plot(rows, out)
    print(f"\nplot     {out.resolve()}")
    _print_links(tracker, rows, compare=True)
    return 0


def _comparison_plot(rows: list[dict[str, Any]], out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = rows[0]["metric"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for r in rows:
        path = r["val_path"]
        family = (r["best_model"] or "?").split("(")[0]
        left.plot(range(1, len(path) + 1), path, marker="o", label=f"{r['run_id'][:8]} (best: {family})")
    left.xaxis.get_major_locator().set_params(integer=True)
    left.set_xlabel("iteration")
    left.set_ylabel(f"validation {metric}")
    left.set_title("the loop's path, per run")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    x = range(len(rows))
    w = 0.38
    right.bar([i - w / 2 for i in x], [r["val"] or 0 for r in rows], w, label="validation (best iteration)")
    right.bar([i + w / 2 for i in x], [r["test"] or 0 for r in rows], w, label="test (opened once)")
    right.set_xticks(list(x), [r["run_id"][:8] for r in rows], fontsize=8)
    right.set_title(metric)
    values = [v for r in rows for v in (r["val"], r["test"]) if v is not None]
    if values:
        lo, hi = min(values), max(values)
        right.set_ylim(max(0.0, lo - (hi - lo) * 0.5 - 0.02) if lo >= 0 else lo * 1.1, hi + (hi - lo) * 0.3 + 0.01)
    right.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
