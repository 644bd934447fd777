"""Process settings applied before Prefect or MLflow is imported.

Telemetry off (the tool runs offline and must not phone home), Prefect's console chatter down to
warnings (its INFO logs still reach the Prefect API and UI), and thread pools sized on purpose.
Values the user already set are kept.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

QUIET_DEFAULTS = {
    # MLflow reads DO_NOT_TRACK as a boolean string and ignores "1".
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "GIT_PYTHON_REFRESH": "quiet",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
    # How long an idle OpenMP thread spins before it sleeps. Spinning forever steals the core another process
    # needs (a 2-thread fit beside other fits took 39 s instead of 3.7 s); never spinning (OMP_WAIT_POLICY=PASSIVE)
    # makes every small parallel region wait for a wake-up: a 2-thread xgboost fit on 560 rows x 64 took 2.7 s
    # instead of 0.2 s. A short spin (about 20 µs) costs neither.
    "GOMP_SPINCOUNT": "20000",
    # Prefect waits 20 s for its temporary server; a machine busy with other fits can take longer.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def apply_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set the quiet, offline defaults without overriding what the user set."""
    env = os.environ if environ is None else environ
    for key, value in QUIET_DEFAULTS.items():
        env.setdefault(key, value)


# Below this many cells (rows × features) a fit takes seconds, and it runs on one thread: two OpenMP threads on two
# cores, with Prefect's server process beside them, were measured 3-4x slower than one (HistGradientBoosting 5-fold
# CV on 4.8k × 8: 3.5 s on one thread, 13-16 s on two; xgboost 2.5 s against 9.6 s), and 40x slower beside a busy
# process (the regression label audit on 102 × 4: 90 s).
SMALL_FIT_CELLS = 1_000_000


def fit_threads(threads: int, rows: int, columns: int) -> int:
    """The threads a fit on `rows` × `columns` should use: one for a small fit, else `threads`."""
    return 1 if rows * max(1, columns) < SMALL_FIT_CELLS else max(1, int(threads))


def default_threads() -> int:
    """Threads a fit may use: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
