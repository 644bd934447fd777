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
