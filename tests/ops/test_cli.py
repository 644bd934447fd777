"""The command line itself: no abbreviated flags, close matches for typos, each subcommand's own usage."""

from __future__ import annotations

import pytest

from synthloop.cli import _parser, _subparsers, main


def _error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_every_parser_refuses_abbreviations():
    parser = _parser()
    subs = _subparsers(parser)
    assert {"run", "config", "predict", "serve", "runs"} <= set(subs)
    assert parser.allow_abbrev is False and all(p.allow_abbrev is False for p in subs.values())


def test_an_abbreviated_flag_is_refused_with_the_full_one(capsys):
    err = _error(capsys, ["run", "--tar", "y"])
    assert "usage: synthloop run " in err
    assert "synthloop run: error: unrecognized arguments: --tar y; did you mean --target?" in err


@pytest.mark.parametrize("argv,usage,hint", [
    (["run", "--tagret", "y"], "usage: synthloop run ", "did you mean --target?"),
    (["run", "--max-iteration=3"], "usage: synthloop run ", "did you mean --max-iterations?"),
    (["predict", "x.csv", "--proab"], "usage: synthloop predict ", "did you mean --proba?"),
    (["runs", "--limt", "3"], "usage: synthloop runs ", "did you mean --limit?"),
    (["rn"], "usage: synthloop [-h]", "did you mean 'run'?"),
])
def test_typos_get_a_close_match_and_their_subcommands_usage(capsys, argv, usage, hint):
    err = _error(capsys, argv)
    assert usage in err and hint in err, err


def test_a_missing_argument_shows_the_subcommands_usage(capsys):
    err = _error(capsys, ["predict"])
    assert "usage: synthloop predict " in err and "required: DATA" in err


@pytest.mark.parametrize("key,hint", [
    ("annotation.budgt", "did you mean annotation.budget?"),
    ("budget", "did you mean annotation.budget?"),
    ("annotations.budget", "did you mean annotation.budget?"),
    ("loop.max_iteration", "did you mean loop.max_iterations?"),
])
def test_unknown_set_keys_get_a_close_match(tmp_path, monkeypatch, capsys, key, hint):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--set", f"{key}=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synthloop: error: ") and "unknown key" in err and hint in err, err
    assert not (tmp_path / "mlruns").exists()


def test_an_unknown_key_with_no_close_match_gets_no_guess(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--set", "data.zzzzqq=3"]) == 2
    err = capsys.readouterr().err
    assert "data.zzzzqq: unknown key" in err and "did you mean" not in err


def test_completed_task_lines_leave_the_run_log_and_retries_and_failures_stay():
    """The flow run's log in the Prefect UI had one "Finished in state Completed()" per task run between the
    decisions; a run's own log keeps every other line of Prefect's task runs (retries, failures, cached states)."""
    import logging

    from synthloop.cli import _CompletedTaskFilter, _quiet_logs

    logger = logging.getLogger("prefect.task_runs")
    before = list(logger.filters)
    try:
        logger.filters[:] = [f for f in before if not isinstance(f, _CompletedTaskFilter)]  # an earlier run's
        _quiet_logs(verbose=False)
        _quiet_logs(verbose=False)  # a second run in one process adds no second filter
        added = [f for f in logger.filters if isinstance(f, _CompletedTaskFilter)]
        assert len(added) == 1

        def kept(msg, *args):
            return all(f.filter(logging.LogRecord("prefect.task_runs", logging.INFO, __file__, 1, msg, args, None))
                       for f in added)

        assert not kept("Finished in state Completed()")
        assert kept("Finished in state Cached(type=COMPLETED)")
        assert kept("Finished in state Failed('Task run encountered an exception')")
        assert kept("Task run failed with %s: %r - Retry %s/%s will start %s", "exception", "x", 1, 3, "now")
    finally:
        logger.filters[:] = before
