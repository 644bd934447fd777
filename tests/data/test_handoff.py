"""The pre-flight check's read of a file is handed to the run's own read, once, and only while the file is unchanged."""

from __future__ import annotations

import os

import pandas as pd

from synthloop.data import load_table


def test_a_checked_file_is_read_once_and_a_changed_file_again(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.5, 2.5, 3.5], "y": ["x", "y", "x"]}).to_csv(path, index=False)
    checked = load_table(str(path), keep_for_next=True)
    checked["a"] = 0.0  # what the check does to its frame stays there (copy-on-write)
    handed = load_table(str(path))
    assert handed is not checked and handed["a"].tolist() == [1.5, 2.5, 3.5] and handed.attrs["source"].endswith("t.csv")
    again = load_table(str(path))  # taken once: the next read is a read
    assert again is not handed and again.equals(handed)

    load_table(str(path), keep_for_next=True)
    pd.DataFrame({"a": [9.0], "y": ["z"]}).to_csv(path, index=False)
    os.utime(path, ns=(1, 1))  # a new modification time even on a coarse clock
    assert load_table(str(path))["a"].tolist() == [9.0], "a file changed since the check is read again"


def test_the_checks_split_is_the_collect_stages_own_taken_once_and_not_for_a_changed_file(tmp_path):
    import numpy as np

    from synthloop import preflight
    from synthloop.config import Config
    from synthloop.tasks.collect import collect_data

    path = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=300), "b": rng.integers(0, 5, 300), "y": rng.choice(["p", "q"], 300)}).to_csv(
        path, index=False)
    cfg = Config.load(None, {"data.source": str(path), "data.target": "y"})
    preflight.check_run(cfg)
    assert len(preflight._CHECKED) == 1
    handed, handed_test = collect_data.fn(cfg.data, cfg.seed)
    assert not preflight._CHECKED, "taken once"
    fresh, fresh_test = collect_data.fn(cfg.data, cfg.seed)  # no check before: the stage does the work itself
    assert handed.train.equals(fresh.train) and handed.val.equals(fresh.val)
    assert handed.lineage == fresh.lineage and handed_test.digest == fresh_test.digest
    assert handed.schema == fresh.schema and handed.notes == fresh.notes

    preflight.check_run(cfg)
    pd.DataFrame({"a": rng.normal(size=300), "b": rng.integers(0, 5, 300), "y": rng.choice(["p", "q"], 300)}).to_csv(
        path, index=False)
    os.utime(path, ns=(1, 1))
    changed, _ = collect_data.fn(cfg.data, cfg.seed)
    assert changed.lineage["train_digest"] != handed.lineage["train_digest"], "a file changed since the check is read again"
