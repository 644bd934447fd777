"""The `synthloop` command.

Prefect, MLflow and the ML libraries are imported only inside the commands that need them, so
`--help` and argument errors answer at once. Errors caused by input or config print one line and
exit with status 2.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import signal
import sys
from typing import Any

EPILOG = """examples:
  synthloop run                                   the embedded default: digits, few labels, the loop goes back
  synthloop run --data sales.csv --target price   your own CSV or Parquet file
  synthloop run --data x.parquet --target y --goal "accuracy >= 0.9" --json
  synthloop run --config synthloop.yaml --set loop.max_iterations=3
  synthloop config > synthloop.yaml               write the default config to edit
  synthloop predict new.csv --proba               score new rows with the champion → new.predictions.csv
  synthloop report 3f2a9c1e                       a run's story as one page → report-<run>.html
"""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default only when it has one worth showing (not None, False or an empty list)."""

    def _get_help_string(self, action):
        default = action.default
        if default is None or default is False or default is argparse.SUPPRESS or default == [] \
                or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """No abbreviated flags (`--tar` is not `--target`), and a close match offered for a mistyped flag or command.

    Every subcommand's parser is one of these too (`add_subparsers(parser_class=Parser)`), so its errors show
    its own usage.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        invalid = re.match(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if invalid:
            choices = re.findall(r"'([^']*)'", invalid.group(3))
            close = difflib.get_close_matches(invalid.group(2), choices, n=1, cutoff=0.5)
            if close:
                message = f"{message}; did you mean {close[0]!r}?"
        super().error(message)

    def unknown_arguments(self, extras: list[str]):
        """Refuse arguments this parser does not know, with the flag each was probably meant to be."""
        hints = []
        for arg in extras:
            flag = arg.split("=", 1)[0]
            close = difflib.get_close_matches(flag, list(self._option_string_actions), n=1, cutoff=0.6) \
                if flag.startswith("-") else []
            if close:
                hints.append((flag, close[0]))
        message = "unrecognized arguments: " + " ".join(extras)
        if len(hints) == 1:
            message += f"; did you mean {hints[0][1]}?"
        elif hints:
            message += "; did you mean " + ", ".join(f"{good} (for {bad})" for bad, good in hints) + "?"
        self.error(message)


def _parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="synthloop",
        description="Run the ML development cycle (collect → annotate → train → validate → test) as a Prefect "
                    "flow that goes back on its own when validation falls short, recorded in MLflow.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    run = sub.add_parser("run", help="run the development cycle (no arguments: the embedded default scenario)",
                         formatter_class=HelpFormatter)
    run.add_argument("--config", metavar="FILE", help="YAML config (see `synthloop config`)")
    run.add_argument("--data", metavar="FILE", help="CSV or Parquet file, sklearn:NAME, a SQLAlchemy URL, or a Parquet "
                                                    "folder / glob (read on a Dask cluster)")
    run.add_argument("--target", metavar="COLUMN", help="the column to predict")
    run.add_argument("--task", choices=["classification", "regression"], help="guessed from the target when absent")
    run.add_argument("--table", help="table to read when --data is a SQLAlchemy URL")
    run.add_argument("--query", help="SQL query to read when --data is a SQLAlchemy URL")
    run.add_argument("--goal", metavar="EXPR", help="e.g. 'accuracy >= 0.9' or 'rmse <= 600' (validation), or a metric alone, e.g. "
                     "roc_auc: judged on it, no threshold")
    run.add_argument("--model", choices=["auto", "xgboost", "hist_gradient_boosting", "random_forest", "extra_trees",
                                         "linear"],
                     help="starting model family (the loop's design search may change it)")
    run.add_argument("--max-iterations", type=int, metavar="N", help="bound of the go-back loop")
    run.add_argument("--seed", type=int, help="seed of splits, sampling and models")
    run.add_argument("--threads", type=int, metavar="N", help="threads per model fit (default: all cores)")
    run.add_argument("--dask-address", metavar="tcp://HOST:PORT",
                     help="run design trials on this Dask scheduler (default: a LocalCluster when it pays); with a "
                          "Parquet folder or glob as --data, or --set dask.mode=cluster, the whole cycle runs there")
    run.add_argument("--tracking-uri", metavar="URI",
                     help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///./mlruns/mlflow.db)")
    run.add_argument("--experiment", metavar="NAME", help="MLflow experiment name")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override any config field, e.g. --set annotation.budget=200 (repeatable)")
    run.add_argument("--json", action="store_true", help="print one JSON line with the summary on stdout")
    run.add_argument("--verbose", action="store_true", help="show Prefect's own logs and full tracebacks")

    cfg = sub.add_parser("config", help="print the default config as YAML (the embedded scenario's values)")
    cfg.add_argument("--plain", action="store_true", help="the plain defaults instead of the embedded scenario")
    for module in PLUGIN_MODULES:
        _plugin(module).add_commands(sub)
    return p


# Further commands live in their own modules: each has `add_commands(subparsers)`, which registers its
# subcommands with `set_defaults(handler=fn)`, and imports nothing heavy at module level.
PLUGIN_MODULES: tuple[str, ...] = ("synthloop.cli_ops", "synthloop.cli_predict", "synthloop.report")


def _plugin(module: str):
    import importlib

    return importlib.import_module(module)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    from synthloop.errors import ConfigError

    out: dict[str, Any] = {
        "data.source": args.data, "data.target": args.target, "data.task": args.task, "data.table": args.table,
        "data.query": args.query, "model.family": args.model, "loop.max_iterations": args.max_iterations,
        "seed": args.seed, "threads": args.threads, "tracking.tracking_uri": args.tracking_uri,
        "tracking.experiment": args.experiment,
        "dask.address": getattr(args, "dask_address", None),
    }
    if args.goal:
        from synthloop.config import GoalConfig

        goal = GoalConfig.parse(args.goal)
        out["goal.metric"], out["goal.threshold"] = goal.metric, goal.threshold
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: write it as KEY=VALUE, e.g. --set loop.max_iterations=3")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def _cmd_run(args: argparse.Namespace) -> int:
    from synthloop.config import Config

    config = Config.load(args.config, _overrides(args))
    if args.data and not args.config and not config.data.target and args.data.startswith("sklearn:"):
        config.data.target = "target"
    from synthloop.cli_cluster import wants_cluster

    if wants_cluster(config):  # a Parquet folder or glob, or dask.mode: cluster: the cycle on a Dask DataFrame
        from synthloop.cli_cluster import run_cluster

        return run_cluster(args, config)
    print(_start_line(config), file=sys.stderr, flush=True)  # within a second: the rest takes a while to import
    from synthloop.preflight import check_run

    check_run(config)  # a typo in the source, target, columns or goal: one line, and no run or server anywhere
    from synthloop import ui

    # The local Prefect server starts (when none runs) while the flow's libraries load.
    prefect = ui.choose_prefect(config.tracking.tracking_uri)
    if prefect.server is not None and prefect.server.started:  # the wait that follows is not silent
        print("prefect: starting the local Prefect server in the background; this first run waits for it, later "
              "runs reuse it", file=sys.stderr, flush=True)
    from synthloop.data import move_secrets_to_environment

    # Prefect keeps the flow's parameters and MLflow its params: both get a ${VAR} reference, never the secret.
    config.data.source = move_secrets_to_environment(config.data.source)
    _result_storage(config.tracking.tracking_uri)
    _quiet_logs(args.verbose)
    from synthloop.flows.develop import develop

    _prefect_ready(prefect)
    if os.environ.get("SYNTHLOOP_RUNNER_CHILD"):  # Prefect was imported before this run set its API (the runner)
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    servers = ui.read_state(config.tracking.tracking_uri)  # servers `synthloop ui` started: the run is there live
    with no_heartbeats():
        summary = develop(config)
    note = _registration_note(summary)
    links = summary.get("links") or {}  # the flow wrote the run's story and report.html (synthloop/records.py)
    base = (servers or {}).get("mlflow", {}).get("url") or "http://127.0.0.1:5000"
    if args.json:
        keep = ("iterations", "test_metrics", "goal_met", "mlflow_run_id", "prefect_flow_run_id", "goal_metric",
                "best_iteration", "best_model", "val_test_gap", "label_cost", "registered_version", "tracking_uri",
                "seconds", "looks_at_validation", "stopped_by", "time_budget_s")
        print(json.dumps({**{k: summary[k] for k in keep}, "registration": note,
                          "links": {k: f"{base}/{v}" for k, v in links.items()}}, default=str))
    else:
        print(_human_summary(summary, note, {k: f"{base}/{v}" for k, v in links.items()},
                             prefect.server.url if prefect.server else None))
        if servers:
            print(ui.live_links(servers, summary))
    if prefect.how == "local" and _ORIGINAL_ENV:  # later runs start warm (synthloop/runner.py)
        sys.stdout.flush()
        from synthloop import runner

        pid = runner.start(_ORIGINAL_ENV)
        if pid:
            print(f"runner: loading the libraries in the background (pid {pid}): later runs start warm; "
                  "`synthloop stop` stops it", file=sys.stderr, flush=True)
    return 0


def _start_line(config) -> str:
    """The run's first line: what it reads, what it predicts, what it aims for."""
    goal = config.goal
    aim = (f"goal {goal.metric or 'default metric'} {'<=' if (goal.metric or '') in ('rmse', 'mae', 'log_loss') else '>='} "
           f"{goal.threshold:g}" if goal.threshold is not None else "no threshold: as good as the budgets allow")
    source = config.data.source
    if "://" in source:
        from synthloop.data import redact_url

        source = redact_url(source)
    target = f"target {config.data.target!r}" if config.data.target else "target to be guessed"
    return f"run: {source}, {target}, {aim}"


def no_heartbeats():
    """Prefect settings for a flow run from this terminal: no heartbeat thread.

    Heartbeats let a Prefect automation mark a flow run whose process vanished as crashed; a run from the
    terminal ends its runs itself (Ctrl-C and SIGTERM mark them, see `main`), and joining the heartbeat
    thread adds up to a second to every flow run.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def _import_while_waiting() -> None:
    """Load what every run needs later (MLflow, the model files' formats, the plots) while a Prefect server that
    was just started gets ready: the wait is otherwise idle."""
    import importlib

    for name in ("mlflow", "mlflow.pyfunc", "xgboost", "skops.io", "matplotlib"):
        try:
            importlib.import_module(name)
        except Exception:  # the stage that needs it reports any problem
            pass
    try:
        import matplotlib

        matplotlib.use("Agg")  # what synthloop.plots draws with
        importlib.import_module("matplotlib.pyplot")
    except Exception:
        pass


def _prefect_ready(prefect) -> None:
    """Say which Prefect server the run uses; wait for a local one still starting (or fall back to a temporary one)."""
    import os

    from synthloop.ui import ServerError

    if prefect.server is not None and prefect.server.started:
        _import_while_waiting()
    try:
        prefect.ready()
    except ServerError as exc:
        prefect.undo()
        os.environ.pop("PREFECT_API_URL", None)
        print(f"prefect: {str(exc).splitlines()[0]}; this run uses a temporary server instead", file=sys.stderr)
        return
    note = prefect.note()
    if note:
        print(note, file=sys.stderr, flush=True)


def _registration_note(summary: dict[str, Any]) -> str | None:
    """What the run's registered version is now (the champion, or why not), read from the registry."""
    from synthloop import registry

    if not summary.get("registered_version"):
        return None
    try:
        client = registry.client_for(summary["tracking_uri"])
        return registry.registration_note(client, summary["registered_model"], summary["registered_version"])
    except Exception as exc:  # the run is recorded; only this line is missing
        return f"(could not read the registry: {type(exc).__name__})"


def _result_storage(tracking_uri: str | None) -> None:
    """Stage results persist next to the MLflow store (`<store>/.prefect-results`), so a killed run resumes."""
    import os
    from pathlib import Path

    from synthloop.tracking import resolve_tracking_uri

    uri, _ = resolve_tracking_uri(tracking_uri)
    base = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else Path.cwd() / "mlruns"
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(base.resolve() / ".prefect-results"))


class _CompletedTaskFilter:
    """Drops Prefect's "Finished in state Completed()" line of a task run that completed."""

    def filter(self, record) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Finished in state Completed"))


def _quiet_logs(verbose: bool) -> None:
    """Our progress lines tell the story; Prefect's and MLflow's own INFO lines only with --verbose.

    Prefect's console handler is raised to CRITICAL so a failing stage is reported once, by us, as one
    line; the Prefect API and UI still receive every log line.
    """
    import logging
    import os

    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if verbose else "CRITICAL")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "WARNING")  # read when MLflow is imported
    if "prefect.logging" in sys.modules:  # configured at import, before this run (in a warm runner's fork)
        level = os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"]
        loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                          if isinstance(v, logging.Logger))]
        for handler in {h for lg in loggers for h in lg.handlers}:
            if type(handler).__name__ == "PrefectConsoleHandler":
                handler.setLevel(level)
    if not verbose:
        # One "Finished in state Completed()" per task run filled the flow run's log in the Prefect UI between the
        # decisions; the states are on its timeline. Failures, retries and everything else still go through.
        task_runs = logging.getLogger("prefect.task_runs")
        if not any(isinstance(f, _CompletedTaskFilter) for f in task_runs.filters):
            task_runs.addFilter(_CompletedTaskFilter())
        for name in ("mlflow", "alembic", "distributed"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # The model is the project's own, loaded only from its own store: the pickle caution is known.
        logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)


STOPPED_BY = {"no_move_left": " (stopped: no move left that could pay)",
              "max_iterations": " (stopped: max_iterations reached)",
              "time_budget": " (stopped: time budget spent)", "goal_met": ""}


def _human_summary(s: dict[str, Any], registration: str | None = None, links: dict[str, str] | None = None,
                   prefect_base: str | None = None) -> str:
    from synthloop.records import verdict

    metric = s["goal_metric"]
    lines = [
        "",
        f"{verdict(s['goal_met'], s.get('goal_threshold'))} after {len(s['iterations'])} iteration(s) in "
        f"{s['seconds']:.1f}s{STOPPED_BY.get(s.get('stopped_by'), '')} — test {metric} "
        f"{s['test_metrics'].get(metric, float('nan')):.4f} (best iteration {s['best_iteration']}: {s['best_model']})",
        "",
        f"  {'it':>2}  {'val ' + metric:>14}  {'rows':>10}  decision",
    ]
    for it in s["iterations"]:
        rows = f"{it['train_rows']}+{it['synthetic_rows']}" if it["synthetic_rows"] else str(it["train_rows"])
        best = "  ← best on validation, tested" if it["iteration"] == s["best_iteration"] else ""
        lines.append(f"  {it['iteration']:>2}  {it['val_metrics'].get(metric, float('nan')):>14.4f}  {rows:>10}  "
                     f"{it['decision']}{best}")
    if not s["goal_met"]:
        lines.append(f"  why not met: {s['shortfall']}")
    if s["label_cost"]:
        lines.append(f"  labels bought for {s['label_cost']:g}")
    lines += [
        "",
        f"MLflow   run {s['mlflow_run_id']} in {s['tracking_uri']}",
        f"         model {s['registered_model']} version {s['registered_version']}" if s["registered_version"] else None,
        f"         {registration}" if registration else None,
        f"         `synthloop ui` (or `mlflow ui --backend-store-uri {s['tracking_uri']}`), then open "
        + (links or {}).get("run", f"http://127.0.0.1:5000/#/experiments/{s['mlflow_experiment_id']}/runs/"
                                   f"{s['mlflow_run_id']}") + " (its description tells the story)",
        f"         compare its iterations: {links['compare']}" if links and links.get("compare") else None,
        f"         runs table with {s['goal_metric']}, test, goal_met, label cost: {links['runs']}"
        if links and links.get("runs") else None,
        f"         report.html on the run: the whole story in one page (`synthloop report {s['mlflow_run_id'][:8]}` "
        "writes it here)",
        f"Prefect  flow run '{s['prefect_flow_run_name']}' ({s['prefect_flow_run_id']})",
        f"         {prefect_base}/runs/flow-run/{s['prefect_flow_run_id']} (the local Prefect server; "
        "`synthloop stop` stops it)" if prefect_base else
        f"         `synthloop ui` (or `prefect server start`), then open "
        f"http://127.0.0.1:4200/runs/flow-run/{s['prefect_flow_run_id']}",
    ]
    return "\n".join(line for line in lines if line is not None)


def _cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from synthloop.config import Config

    cfg = Config() if args.plain else Config.embedded_default()
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), end="")
    return 0


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _raise_interrupt(signum, frame):  # SIGTERM ends the run like Ctrl-C: runs are closed, not left RUNNING
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    from synthloop.env import apply_defaults

    apply_defaults()
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # answered by the subcommand's own parser, so its usage is shown
        parser_of = _subparsers(parser).get(args.command, parser) if args.command else parser
        parser_of.unknown_arguments(extras)
    if not args.command:
        parser.print_help()
        return 0
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if os.environ.get("SYNTHLOOP_FAULT"):  # fault-injection runs (tests): SIGUSR1 prints every thread's stack
        import faulthandler

        try:
            faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
        except (AttributeError, OSError, ValueError):  # no real stderr (captured in-process)
            pass
    from synthloop.errors import SynthloopError

    try:
        handler = getattr(args, "handler", None) or {"run": _cmd_run, "config": _cmd_config}[args.command]
        return handler(args)
    except SynthloopError as exc:
        print(f"synthloop: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("synthloop: interrupted; open runs were marked KILLED", file=sys.stderr)
        return 130
    except Exception as exc:
        if getattr(args, "verbose", False):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"synthloop: failed: {type(exc).__name__}: {first} (run again with --verbose for the traceback)",
              file=sys.stderr)
        return 1
    except BaseException as exc:  # Prefect turns SIGTERM into TerminationSignal while a flow runs
        if type(exc).__name__ != "TerminationSignal":
            raise
        print("synthloop: terminated; open runs were marked KILLED", file=sys.stderr)
        return 143


def entry() -> None:
    """The `synthloop` command: `main` (in a warm runner when one is ready, see `synthloop.runner`), then exit
    without the interpreter's teardown."""
    import os

    rc = None
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from synthloop import runner

        rc = runner.delegate(sys.argv[1:])
    if rc is None:
        _ORIGINAL_ENV.update(os.environ)
        rc = main()
        finish_process()
    else:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(rc)


#: The environment the command started with, before a run changed it: a runner started at the end gets it.
_ORIGINAL_ENV: dict[str, str] = {}


def finish_process() -> None:
    """What normal exit does before the module teardown, which is skipped (`os._exit` follows).

    Freeing the modules Prefect, MLflow and the ML libraries loaded takes about a second after the work is
    done. Everything that normal exit runs first still runs, in its order: non-daemon threads are joined
    (Prefect's log and event workers drain there), then the `atexit` handlers.
    """
    import threading

    try:
        sys.stdout.flush()
        sys.stderr.flush()
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_Finalize does first
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # anything odd: the ordinary exit
        pass


if __name__ == "__main__":
    entry()
