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
