"""Where design trials run, with how many threads each fit may use, and xgboost training on a Dask cluster.

Four ways to run a set of trials:

- **forks** — `slots` trials at a time in forks of this process (`forked_pool`), which start in milliseconds with
  the libraries and the rows already loaded: nothing is shipped or imported. Chosen on Linux whenever two or more
  trials can run side by side: a small search gives each small fit one thread (two OpenMP threads beside
  Prefect's server were measured 3-4× slower than one), a big one shares the cores among its trials. Threads
  would not do: a small fit spends much of its time in Python between its compiled steps, under the GIL.
- **serial** — one after another in this process. Chosen when there are fewer than two trials or cores (or
  `threads`), when `dask.parallel_trials` is off, or without forks (not Linux, `SYNTHLOOP_FORKED_TRIALS=0`) when
  the work is too small to pay for starting a cluster (a `LocalCluster` with process workers costs ~1.5 s to
  start, plus ~1-2 s for each worker to import the ML libraries on its first trial).
- **local** — without forks, a temporary `distributed.LocalCluster`: one worker process per trial slot, each
  running one trial at a time (`threads_per_worker=1`), `n_workers × fit threads = cores`, so fits never ask for
  more threads than the machine has.
- **address** — an existing Dask scheduler (`--dask-address tcp://HOST:PORT`): on each host, every trial
  slot gets `cores of the host // slots on the host` threads.

Inside every trial the fit's thread count is set explicitly (xgboost `n_jobs`, scikit-learn `n_jobs`) and
`threadpoolctl` caps the OpenMP and BLAS pools (HistGradientBoosting uses OpenMP): an OpenMP fit that
spins on threads it cannot get is 10-50x slower.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from synthloop.env import fit_threads
from synthloop.errors import SynthloopError

# Estimated work (training cells × folds × trials, see `estimate_work`) below which a temporary cluster is
# not worth starting. Calibrated with benchmarks/parallel.py: on 2 cores, 12 trials on 2,000 × 20 cells run
# serially in ~4 s, about what starting a 2-worker LocalCluster and importing the libraries in it costs.
MIN_WORK_FOR_CLUSTER = 5_000_000
ADDRESS_RE = re.compile(r"^(tcp|tls|ucx|inproc)://[^\s:/]+:\d{1,5}$")


class DaskAddressError(SynthloopError):
    """A Dask scheduler address that is malformed or does not answer."""


@dataclass(frozen=True)
class TrialPlan:
    """How a set of trials will run.

    Attributes:
        mode: "serial", "forks" (`slots` at a time in forks of this process), "local" (a temporary LocalCluster)
            or "address" (an existing scheduler).
        reason: Why this mode, in words (logged).
        n_workers: Worker processes of the temporary cluster (local mode).
        fit_threads: Threads each fit may use (serial and local modes; address mode decides per host).
        slots: Trials a "forks" plan runs at a time (slots × fit_threads ≤ cores).
        address: The scheduler address (address mode).
    """

    mode: str
    reason: str
    n_workers: int = 0
    fit_threads: int = 1
    slots: int = 1
    address: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def runner_kwargs(self) -> dict[str, Any]:
        """Arguments of prefect-dask's DaskTaskRunner for this plan."""
        if self.mode == "address":
            return {"address": self.address}
        if self.mode == "local":
            return {"cluster_kwargs": local_cluster_kwargs(self.n_workers)}
        raise ValueError(f"a {self.mode} plan has no Dask task runner")

    def describe(self) -> str:
        if self.mode == "forks":
            return (f"{self.slots} at a time in forks of this process, {self.fit_threads} thread(s) per fit — "
                    f"{self.reason}")
        if self.mode == "serial":
            return f"serial in-process, {self.fit_threads} thread(s) per fit — {self.reason}"
        if self.mode == "local":
            return (f"LocalCluster of {self.n_workers} worker(s) × 1 trial at a time, {self.fit_threads} thread(s) "
                    f"per fit — {self.reason}")
        return f"Dask cluster at {self.address} — {self.reason}"


def local_cluster_kwargs(n_workers: int) -> dict[str, Any]:
    """A LocalCluster of process workers, one task at a time each, bound to 127.0.0.1, no dashboard.

    The scheduler serves its HTTP routes (health, metrics) even without a dashboard, on port 8787 unless told
    otherwise: a free port instead, so a second cluster on the machine neither collides nor warns.
    """
    return {"n_workers": n_workers, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1",
            "dashboard_address": None, "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"}}


def check_address(address: str) -> str:
    """The address if it looks like `tcp://HOST:PORT`; DaskAddressError otherwise."""
    if not ADDRESS_RE.match(address.strip()):
        raise DaskAddressError(f"dask address {address!r}: write it as tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    return address.strip()


def estimate_work(n_rows: int, n_features: int, n_trials: int, folds: int) -> int:
    """A rough size of a trial search: cells fitted, over all folds and trials."""
    return int(n_rows * max(1, n_features) * max(1, folds - 1) * n_trials)


def plan_trials(n_trials: int, n_rows: int, n_features: int, *, folds: int = 3, cores: int | None = None,
                threads: int | None = None, address: str | None = None, parallel: bool = True) -> TrialPlan:
    """Choose where a set of trials runs (see the module docstring).

    Args:
        n_trials: Trials to run.
        n_rows, n_features: Size of the rows each trial cross-validates on.
        folds: Folds per trial.
        cores: Cores of this machine (default: those this process may run on).
        threads: Threads a fit may use when run serially (default: all cores).
        address: An existing Dask scheduler; None runs them here: in forks when the cores allow two at a time
            (Linux), else serially or, when that pays, on a temporary LocalCluster.
        parallel: False forces serial.
    Returns:
        The plan, with the reason for it.
    """
    from synthloop.env import default_threads

    cores = cores or default_threads()
    serial_threads = threads or cores
    if not parallel:
        return TrialPlan("serial", "dask.parallel_trials is off", fit_threads=serial_threads)
    if n_trials < 2:
        return TrialPlan("serial", f"{n_trials} trial(s): nothing to run side by side", fit_threads=serial_threads)
    if address:
        return TrialPlan("address", f"{n_trials} trials on the given scheduler", address=check_address(address))
    if cores < 2:
        return TrialPlan("serial", "one core: no parallelism to gain", fit_threads=serial_threads)
    work = estimate_work(n_rows, n_features, n_trials, folds)
    size = f"{n_trials} trials on {n_rows} × {n_features}"
    if work < MIN_WORK_FOR_CLUSTER:  # small: one thread per small fit (OpenMP contention), all for a big one
        per_fit = fit_threads(serial_threads, n_rows, n_features)
        slots = min(n_trials, serial_threads // per_fit)
    else:  # big: trials side by side, the cores shared among them
        slots = min(n_trials, serial_threads)
        per_fit = max(1, serial_threads // slots)
    if can_fork() and slots > 1:
        return TrialPlan("forks", f"{size}: forks start in milliseconds with the libraries and rows loaded",
                         fit_threads=per_fit, slots=slots)
    if work < MIN_WORK_FOR_CLUSTER:
        return TrialPlan("serial", f"small search ({size}): starting a cluster would cost more than it saves",
                         fit_threads=per_fit)
    n_workers = max(1, min(cores, n_trials))
    return TrialPlan("local", f"{size} rows × features", n_workers=n_workers, fit_threads=max(1, cores // n_workers))


def can_fork() -> bool:
    """Whether trials may run in forks of this process: Linux only (a fork of a process with threads is unsafe on
    macOS), and not switched off with `SYNTHLOOP_FORKED_TRIALS=0`."""
    import os
    import sys

    return sys.platform.startswith("linux") and os.environ.get("SYNTHLOOP_FORKED_TRIALS", "1") != "0"


def _forked_worker_init() -> None:
    """In each fork: die with the parent (a killed run leaves no worker behind) and leave Ctrl-C to the parent,
    which ends the workers itself."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def forked_pool(slots: int) -> Iterator[Any]:
    """A process pool of `slots` forks of this process (what it has loaded, they have). Whatever ends the block
    (an error, Ctrl-C) ends the forks at once: none is left running a trial nobody waits for."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=slots, mp_context=multiprocessing.get_context("fork"),
                               initializer=_forked_worker_init)
    try:
        yield pool
    except BaseException:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def slots_by_host(client) -> dict[str, int]:
    """Task slots (worker threads) of a Dask cluster, summed per host."""
    out: dict[str, int] = {}
    for info in client.scheduler_info(n_workers=-1)["workers"].values():
        out[info["host"]] = out.get(info["host"], 0) + int(info["nthreads"])
    return out


def worker_fit_threads(default: int, slots: dict[str, int] | None = None) -> tuple[int, str]:
    """Threads a fit may use where this code runs, and where that is.

    On a Dask worker: the host's cores shared among the host's task slots (`slots`), or `default` when
    the slots are not known; outside a worker: `default`.
    """
    from synthloop.env import default_threads

    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return default, "in-process"
    if slots:
        host = worker.address.split("://")[-1].rsplit(":", 1)[0]
        n = slots.get(host) or sum(slots.values())
        return max(1, default_threads() // max(1, n)), worker.address
    return default, worker.address


@contextmanager
def prefect_api_for_workers() -> Iterator[str | None]:
    """Point Dask workers at this process's Prefect API.

    Without a Prefect server (`PREFECT_API_URL` unset) this process runs Prefect's temporary local server;
    a worker process would otherwise start a temporary server of its own (seconds per worker, on the same
    database). The tasks' serialized settings carry the URL set here to the workers. A cluster on other
    machines needs a Prefect server they can reach (`PREFECT_API_URL`), as the temporary one listens on
    127.0.0.1 only.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()  # already running when a flow is: this returns at once
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield server.api_url


@contextmanager
def limit_threads(threads: int) -> Iterator[None]:
    """Cap OpenMP and BLAS thread pools (HistGradientBoosting, NumPy) at `threads` inside the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(1, int(threads))):
        yield


def connect(address: str, timeout: float = 10.0):
    """A Dask client of an existing scheduler; DaskAddressError (one line) when it does not answer."""
    from distributed import Client

    try:
        return Client(check_address(address), timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DaskAddressError(f"dask address {address}: no scheduler answers ({type(exc).__name__})") from None


def fit_xgboost_dask(client, frame, target: str, *, task: str, params: dict[str, Any] | None = None,
                     num_boost_round: int = 100, eval_frame=None, n_classes: int | None = None) -> dict[str, Any]:
    """Train xgboost from a Dask DataFrame on a Dask cluster (data larger than one machine holds).

    Each worker trains on the partitions it holds; xgboost's collective joins them into one model.
    Every worker's xgboost uses `nthread` = that worker's threads, so nothing is oversubscribed.

    Args:
        client: A `distributed.Client` of the cluster.
        frame: A Dask DataFrame with the features (numeric or `category` dtype) and `target`.
        target: The label column (classification: encoded 0..K-1).
        task: "classification" or "regression".
        params: xgboost parameters (e.g. max_depth, eta); the objective follows from `task`.
        num_boost_round: Boosting rounds.
        eval_frame: Optional Dask DataFrame of the same columns, recorded as "validation" in the history.
        n_classes: Classes (classification; computed from the target when absent).
    Returns:
        {"booster": the trained xgboost.Booster, "history": loss per round by split, "features": names}.
    """
    with client.as_current():  # the frame's own computations (max of the target) run on this cluster too
        return _fit_xgboost_dask(client, frame, target, task, params, num_boost_round, eval_frame, n_classes)


def _fit_xgboost_dask(client, frame, target, task, params, num_boost_round, eval_frame, n_classes):
    import xgboost as xgb
    import xgboost.dask as dxgb

    features = [c for c in frame.columns if c != target]
    nthread = min(int(i["nthreads"]) for i in client.scheduler_info(n_workers=-1)["workers"].values())
    p = {"tree_method": "hist", "nthread": nthread, **(params or {})}
    if task == "classification":
        k = n_classes or int(frame[target].max().compute()) + 1
        p.update({"objective": "binary:logistic", "eval_metric": "logloss"} if k == 2 else
                 {"objective": "multi:softprob", "num_class": k, "eval_metric": "mlogloss"})
    else:
        p.update({"objective": "reg:squarederror", "eval_metric": "rmse"})
    categorical = any(str(t) == "category" for t in frame[features].dtypes)
    dtrain = dxgb.DaskQuantileDMatrix(client, frame[features], frame[target], enable_categorical=categorical)
    evals = [(dtrain, "train")]
    if eval_frame is not None:
        evals.append((dxgb.DaskQuantileDMatrix(client, eval_frame[features], eval_frame[target], ref=dtrain,
                                               enable_categorical=categorical), "validation"))
    out = dxgb.train(client, p, dtrain, num_boost_round=num_boost_round, evals=evals, verbose_eval=False)
    booster: xgb.Booster = out["booster"]
    history = {name: [float(v) for v in next(iter(h.values()))] for name, h in out["history"].items()}
    return {"booster": booster, "history": history, "features": features}


def predict_xgboost_dask(client, booster, frame, *, gather: bool = True):
    """Predictions of a booster on a Dask DataFrame, computed on the cluster.

    Returns the predictions gathered here as a NumPy array, or (`gather=False`) the lazy Dask collection
    to keep on the cluster (e.g. to write with `to_parquet`; compute it with this client).
    """
    import numpy as np
    import xgboost.dask as dxgb

    with client.as_current():
        lazy = dxgb.inplace_predict(client, booster, frame)
    return np.asarray(client.compute(lazy).result()) if gather else lazy
