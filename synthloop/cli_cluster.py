"""`synthloop run` on a Dask cluster: when it is chosen, and the run itself (`synthloop.flows.develop_cluster`).

The cycle runs on the cluster when `dask.mode` is `cluster`, or when `--data` is a Parquet directory or glob (or a
CSV glob), which only the cluster path reads: on the scheduler at `--dask-address`, else on a temporary 2-worker
LocalCluster. A single file without `dask.mode: cluster` keeps the pandas path (`--dask-address` then runs the
design trials there, as before).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def is_dataset_source(source: str | None) -> bool:
    """A local directory, or a path with a glob pattern (`*`, `?`, `[`): what the cluster path reads.

    Cheap on purpose (no pandas): every `synthloop run` asks it before its first line."""
    if not source or "://" in source or source.startswith(("sklearn:", "simulate:")):
        return False
    return any(ch in source for ch in "*?[") or Path(source).is_dir()


def wants_cluster(config) -> bool:
    return config.dask.mode == "cluster" or is_dataset_source(config.data.source)


def run_cluster(args: argparse.Namespace, config) -> int:
    from synthloop import cli, ui
    from synthloop.errors import ConfigError

    if not is_dataset_source(config.data.source) and not config.data.source.lower().endswith(
            (".parquet", ".pq", ".csv", ".tsv")):
        raise ConfigError(f"dask.mode cluster reads Parquet or CSV files (a folder, a glob or one file), not "
                          f"{config.data.source!r}")
    if config.dask.mode != "cluster":
        config.dask.mode = "cluster"
    where = (f"the Dask cluster at {config.dask.address}" if config.dask.address else
             f"a LocalCluster of {config.dask.workers} workers")
    print(f"{cli._start_line(config)} — on {where}", file=sys.stderr, flush=True)
    from synthloop.cluster_data import dataset_files
    from synthloop.cluster_loop import unsupported
    from synthloop.errors import DataError

    problems = unsupported(config)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"dask.mode cluster: {problems[0]}{more}")

    if is_dataset_source(config.data.source):
        dataset_files(config.data.source)  # no files: one line, and no run or server anywhere
    elif not Path(config.data.source).is_file():
        raise DataError(f"{config.data.source}: file not found")
    prefect = ui.choose_prefect(config.tracking.tracking_uri)
    cli._quiet_logs(args.verbose)
    from synthloop.flows.develop_cluster import develop_cluster

    cli._prefect_ready(prefect)
    servers = ui.read_state(config.tracking.tracking_uri)
    with cli.no_heartbeats():
        summary = develop_cluster(config)
    note = cli._registration_note(summary)
    links = summary.get("links") or {}
    base = (servers or {}).get("mlflow", {}).get("url") or "http://127.0.0.1:5000"
    if args.json:
        keep = ("iterations", "test_metrics", "goal_met", "mlflow_run_id", "prefect_flow_run_id", "goal_metric",
                "best_iteration", "best_model", "val_test_gap", "label_cost", "registered_version", "tracking_uri",
                "seconds", "looks_at_validation", "stopped_by", "time_budget_s", "sample_rows", "cluster")
        print(json.dumps({**{k: summary[k] for k in keep}, "registration": note,
                          "links": {k: f"{base}/{v}" for k, v in links.items()}}, default=str))
    else:
        print(cli._human_summary(summary, note, {k: f"{base}/{v}" for k, v in links.items()},
                                 prefect.server.url if prefect.server else None))
        if servers:
            print(ui.live_links(servers, summary))
    return 0
