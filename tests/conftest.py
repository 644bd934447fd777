"""Shared fixtures: quiet offline settings, one Prefect test server per session, a temporary MLflow store."""

from __future__ import annotations

import os

from synthloop.env import apply_defaults

apply_defaults()
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
# A `synthloop` process a test starts without a Prefect API uses a temporary server, never a lasting local one
# (tests/ops/test_local_server.py checks the local server, and stops it by its PID).
os.environ.setdefault("SYNTHLOOP_PREFECT_SERVER", "temporary")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """A real Prefect API on a temporary database for the whole session (no mocks)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A real MLflow store (SQLite + local artifacts) in a temporary folder, set as MLFLOW_TRACKING_URI."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def client(mlflow_uri):
    from mlflow import MlflowClient

    return MlflowClient(mlflow_uri)
