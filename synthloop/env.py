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
    # OpenMP threads that spin while waiting steal the core another process needs; on 2 busy cores a 2-thread
    # xgboost fit took 39 s of wall time with spinning, 3.7 s without.
    "GOMP_SPINCOUNT": "20000",
    # Prefect waits 20 s for its temporary server; a machine busy with other fits can take longer.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def apply_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set the quiet, offline defaults without overriding what the user set."""
    env = os.environ if environ is None else environ
    for key, value in QUIET_DEFAULTS.items():
        env.setdefault(key, value)


def default_threads() -> int:
    """Threads a fit may use: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
