"""Bad files and bad config through the CLI: exit status 2, one clear line, nothing registered, no RUNNING run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.conftest import all_runs, cli_env, start_cli, store_uri, tally_store

GOOD = "\n".join(f"{i % 7}.5,{i % 3},{'a' if i % 2 else 'b'}" for i in range(40))
BAD_FILES: dict[str, tuple[bytes, str]] = {
    # name: (content, a word the one-line message must contain)
    "empty": (b"", "empty"),
    "header_only": (b"x1,x2,y\n", "no data rows"),
    "single_class": (("x1,x2,y\n" + "\n".join(f"{i},{i * 2},1" for i in range(40))).encode(), "single class"),
    "ragged": (("x1,x2,y\n" + GOOD + "\n1,2,a,9,9\n" + GOOD).encode(), "fields"),
    "wrong_delimiter": (("x1:x2:y\n" + GOOD.replace(",", ":")).encode(), "delimiter"),
    "binary": (bytes(range(256)) * 8, "text table"),
    "text_in_numbers": (("x1,x2,y\n" + GOOD + "\n" + "\n".join("oops,1,a" for _ in range(3))).encode(), "text"),
    "infinities": (("x1,x2,y\n" + GOOD + "\ninf,1,a\n-inf,2,b").encode(), "infinite"),
    "duplicated_columns": (("x1,x1,y\n" + GOOD).encode(), "more than once"),
}


def _write(folder: Path, name: str, content: bytes) -> Path:
    path = folder / f"{name}.csv"
    path.write_bytes(content)
    return path


def _assert_clear_error(rc: int, err: str, counts, must_contain: str = "", real: bool = False) -> None:
    """Exit status 2 and one line from `synthloop`; in a real process (`real=True`) nothing else on stderr but
    the run's first line.

    In-process, Prefect's and MLflow's loggers keep the test process's settings, so only our own lines are
    checked there; the real-process tests check that stderr holds nothing but that line.
    """
    counts["bad_inputs"] += 1
    ours = [line for line in err.splitlines() if line.startswith("synthloop: ")]
    assert rc == 2, err
    assert len(ours) == 1 and ours[0].startswith("synthloop: error: "), err
    if real:  # the run's first line (what it reads) comes at once, before the check; then only the error
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines[-1:] == ours and all(line.startswith("run: ") for line in lines[:-1]) and len(lines) <= 2, err
    assert must_contain.lower() in ours[0].lower(), ours[0]
    counts["clear_errors"] += 1


def _assert_nothing_registered(folder: Path) -> None:
    uri = store_uri(folder)
    if not Path(uri.removeprefix("sqlite:///")).exists():
        return  # answered before any store was touched
    from mlflow import MlflowClient

    assert tally_store(uri) == 0
    assert MlflowClient(uri).search_model_versions() == []
    for run in all_runs(uri):
        assert run.info.status == "FAILED" and run.data.tags.get("failure_reason"), run.info


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_gives_one_clear_line(case, in_process, capsys, counts):
    from synthloop.cli import main

    content, word = BAD_FILES[case]
    path = _write(in_process, case, content)
    rc = main(["run", "--data", str(path), "--target", "y", "--max-iterations", "1", "--threads", "1"])
    _assert_clear_error(rc, capsys.readouterr().err, counts, word)
    _assert_nothing_registered(in_process)


def test_missing_or_single_class_target(in_process, capsys, counts):
    from synthloop.cli import main

    path = _write(in_process, "good", ("x1,x2,y\n" + GOOD).encode())
    rc = main(["run", "--data", str(path), "--target", "nope", "--threads", "1"])
    _assert_clear_error(rc, capsys.readouterr().err, counts, "'nope' not found")
    _assert_nothing_registered(in_process)


def test_bad_input_is_not_retried(in_process, counts, prefect_api):
    """A DataError inside the flow is final at once: the collect task ran once although retries are configured.

    The CLI refuses such a file before any run starts, so the flow is called directly here: a file can still
    go bad between that check and the collect stage.
    """
    from tests.faults.conftest import prefect_flow_run
    from synthloop.flows.develop import develop
    from synthloop.config import Config
    from synthloop.errors import DataError

    path = _write(in_process, "empty", b"")
    cfg = Config.load(None, {"data.source": str(path), "data.target": "y", "retry.retries": 3,
                             "retry.delays_s": [5], "threads": 1})
    started = time.monotonic()
    with pytest.raises(DataError, match="empty"):
        develop(cfg)
    (parent,) = all_runs(store_uri(in_process))
    assert parent.info.status == "FAILED" and "empty" in parent.data.tags["failure_reason"]
    flow_run, task_runs = prefect_flow_run(prefect_api, parent.data.tags["prefect.flow_run_id"])
    assert flow_run.state.is_failed()
    collect = next(t for t in task_runs if t.name == "collect-real-data")
    assert collect.run_count == 1 and collect.state.is_failed()
    print(f"bad file answered in {time.monotonic() - started:.1f}s (retry delay 5s not spent)")


def _flow_run_count(api: str) -> int:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def count():
        async with get_client() as c:
            return await c.count_flow_runs()

    with temporary_settings({PREFECT_API_URL: api}):
        return asyncio.run(count())


@pytest.mark.parametrize("argv,word", [
    (["--data", "sklearn:digit"], "did you mean 'sklearn:digits'"),
    (["--data", "{csv}", "--target", "specie"], "close matches: 'species'"),
    (["--data", "{csv}"], "pass --target COLUMN"),
    (["--data", "{csv}", "--target", "species", "--goal", "rmse <= 1"], "regression metric"),
    (["--data", "sklearn:diabetes", "--goal", "accuracy >= 0.9"], "classification metric"),
    (["--data", "{csv}", "--target", "species", "--set", "data.drop_columns=[colour]"], "data.drop_columns"),
    (["--data", "{csv}", "--target", "species", "--set", "data.column_types={sizes: numeric}"], "close matches: 'size'"),
    (["--data", "simulate:classification?n_features=3&n_informative=5"], "n_informative"),
    (["--data", "sqlite:///{db}", "--table", "order", "--target", "returned"], "table 'order' not found"),
])
def test_typo_leaves_no_run_anywhere(argv, word, in_process, capsys, counts, prefect_api):
    """Source, target, columns and goal metric are checked before Prefect or MLflow are touched."""
    import sqlite3

    from synthloop.cli import main

    csv = _write(in_process, "flowers", ("size,colour_code,species\n" + "\n".join(
        f"{i % 9}.5,{i % 4},{'rose' if i % 2 else 'tulip'}" for i in range(60))).encode())
    with sqlite3.connect(in_process / "shop.db") as con:
        con.execute("create table orders (amount real, returned integer)")
    argv = [a.replace("{csv}", str(csv)).replace("{db}", str(in_process / "shop.db")) for a in argv]
    before = _flow_run_count(prefect_api)
    rc = main(["run", *argv, "--threads", "1"])
    _assert_clear_error(rc, capsys.readouterr().err, counts, word)
    assert not (in_process / "mlruns").exists(), "refused before any MLflow store was touched"
    assert _flow_run_count(prefect_api) == before, "refused before any Prefect flow run was created"


def test_runs_shows_why_a_run_failed(in_process, capsys):
    """`synthloop runs` prints the failure reason under a FAILED run."""
    from synthloop.cli import main
    from synthloop.tracking import Tracker

    tracker = Tracker(None, "synthloop")
    run = tracker.get_or_create_parent("flow-run-x", "x")
    tracker.finish(run, "FAILED", "DataError: shop.csv: column 'price' holds text")
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "failed: DataError: shop.csv: column 'price' holds text" in out


def test_cp1252_file_is_read_with_a_note(in_process, capsys, counts):
    """Not an error: a Windows-1252 file (a common spreadsheet export) is read, and a note says so."""
    from synthloop.cli import main

    rows = "\n".join(f"{i % 7}.5,{'café' if i % 3 else 'bar'},{'a' if i % 2 else 'b'}" for i in range(60))
    path = _write(in_process, "cp1252", ("x1,place,y\n" + rows).encode("cp1252"))
    rc = main(["run", "--data", str(path), "--target", "y", "--max-iterations", "1", "--threads", "1",
               "--set", "tracking.registered_model=null"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "cp1252" in err
    counts["completed"] += 1
    assert tally_store(store_uri(in_process)) == 0


@pytest.mark.parametrize("argv,word", [
    (["--set", "data.nope=1"], "unknown key"),
    (["--set", "loop.max_iterations=abc"], "max_iterations"),
    (["--goal", "accuracy >= 1.5"], "between 0 and 1"),
    (["--set", "annotation.noise_rate=1.5"], "noise_rate"),
    (["--config", "missing.yaml"], "not found"),
    (["--config", "broken.yaml"], "not valid YAML"),
    (["--config", "unknown_section.yaml"], "unknown key"),
    (["--data", "no_such_file.csv", "--target", "y"], "not found"),
])
def test_bad_config_gives_one_clear_line(argv, word, in_process, capsys, counts):
    from synthloop.cli import main

    (in_process / "broken.yaml").write_text("data: [unclosed\n")
    (in_process / "unknown_section.yaml").write_text("data:\n  source: sklearn:iris\nmodels:\n  family: linear\n")
    rc = main(["run", *argv])
    _assert_clear_error(rc, capsys.readouterr().err, counts, word)
    assert not (in_process / "mlruns" / "mlflow.db").exists(), "refused before any store was touched"


def test_bad_input_in_a_real_process(prefect_api, tmp_path, counts):
    """Through the installed command: stderr holds one line and no traceback; a missing file answers fast."""
    path = _write(tmp_path, "ragged", BAD_FILES["ragged"][0])
    env = cli_env(prefect_api)
    procs = [start_cli(["run", "--data", str(path), "--target", "y", "--threads", "1"], tmp_path, env),
             start_cli(["run", "--data", str(tmp_path / "absent.csv"), "--target", "y"], tmp_path, env)]
    for proc, word in zip(procs, ["fields", "not found"]):
        out, err = proc.communicate(timeout=300)
        _assert_clear_error(proc.returncode, err, counts, word, real=True)
    _assert_nothing_registered(tmp_path)
