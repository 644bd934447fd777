"""Scheduled retrains with `flow.serve`: one process that both schedules and runs them.

`synthloop serve --cron "0 3 * * *"` calls :func:`serve_retrain`. It registers the deployment
`retrain/<name>` with a cron schedule (timezone and parameters from the config) on the Prefect server
and runs each scheduled run in a subprocess until stopped. Stopping it (Ctrl-C) pauses the schedule;
starting it again resumes it. For workers on a process work pool, see `deployments/prefect.yaml`.
"""

from __future__ import annotations

from typing import Any

from synthloop.config import Config
from synthloop.errors import ConfigError

DEFAULT_NAME = "nightly"


def check_schedule(cron: str, timezone: str) -> None:
    """Refuse a cron expression or timezone Prefect would not accept, with one line naming it."""
    import zoneinfo

    from prefect.schedules import validate_cron_string

    try:
        validate_cron_string(cron)
    except ValueError:
        raise ConfigError(f"retrain.cron: {cron!r} is not a cron expression (e.g. '0 3 * * *' = every day at 03:00)") from None
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"retrain.timezone: unknown timezone {timezone!r} (e.g. 'UTC', 'Europe/Berlin')") from None


def parameters(config: Config) -> dict[str, Any]:
    """The deployment's parameters: the whole config, with the MLflow store made absolute.

    Scheduled runs start in a subprocess that may not share the serving shell's directory, so a relative
    store (the default `./mlruns`) is pinned to the one seen when serving started.
    """
    from synthloop.tracking import resolve_tracking_uri

    data = config.model_dump(mode="json")
    data["tracking"]["tracking_uri"] = resolve_tracking_uri(config.tracking.tracking_uri)[0]
    return {"config": data}


def serve_retrain(config: Config, name: str = DEFAULT_NAME, cron: str | None = None,
                  timezone: str | None = None) -> None:
    """Serve the retrain flow on a cron schedule until interrupted (then its schedule is paused).

    Args:
        config: The retrain's config; `retrain.cron` and `retrain.timezone` unless given here.
        name: Deployment name (the deployment is `retrain/<name>`).
        cron: Cron expression, e.g. "0 3 * * *".
        timezone: IANA timezone of the cron expression, e.g. "Europe/Berlin".
    """
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from synthloop.flows.retrain import retrain

    cron, timezone = cron or config.retrain.cron, timezone or config.retrain.timezone
    check_schedule(cron, timezone)
    retrain.serve(name=name, schedules=[Cron(cron, timezone=timezone)], parameters=parameters(config),
                  description=f"Retrain on the latest data; promote only when better by {config.retrain.margin:g}",
                  tags=["synthloop", "retrain"], pause_on_shutdown=True, limit=1,
                  entrypoint_type=EntrypointType.MODULE_PATH)
