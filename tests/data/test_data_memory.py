"""What keeps a big table's run within a few times the table: reads, splits and conversions that do not copy
what they need not, and give the same frames as before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import synthloop.data.load as load_module
from synthloop.data import infer_schema, load_table, prepare_frame
from synthloop.data._common import _trimmed_text
from synthloop.splits import split_frame


def _messy_csv(path, n=3000):
    rng = np.random.default_rng(0)
    ints = rng.integers(0, 100, n).astype(str)
    floats_late = ints.copy()
    floats_late[-5:] = "1.5"  # integers in the first chunks, a float in the last
    text_late = rng.normal(size=n).round(3).astype(str)
    text_late[n - 3] = "oops"  # numbers, then one text value: text in one read
    na_one_chunk = rng.normal(size=n).round(2).astype(str)
    na_one_chunk[:500] = ""  # every value of the first chunk missing
    bools = np.where(rng.random(n) < 0.5, "True", "False")
    bools[n // 2] = ""  # booleans with one missing value
    words = rng.choice([" yes", "no ", "Yes", ""], n)
    y = rng.choice(["a", "b"], n)
    frame = pd.DataFrame({"ints": ints, "floats_late": floats_late, "text_late": text_late, "na_one_chunk": na_one_chunk,
                          "bools": bools, "words": words, "y": y})
    frame.to_csv(path, index=False)
    return path


def test_a_csv_read_in_chunks_is_the_frame_read_in_one_piece(tmp_path, monkeypatch):
    path = _messy_csv(tmp_path / "messy.csv")
    whole = load_table(str(path))
    monkeypatch.setattr(load_module, "_WHOLE_READ_BYTES", 0)
    monkeypatch.setattr(load_module, "_CHUNK_BYTES", 8_000)  # about 20 chunks
    calls = []
    real = pd.read_csv
    monkeypatch.setattr(load_module.pd, "read_csv", lambda *a, **k: calls.append(k.get("chunksize")) or real(*a, **k))
    chunked = load_table(str(path))
    assert calls[0] and calls[0] < 3000, "the file was read in chunks"
    pd.testing.assert_frame_equal(chunked, whole)
    assert chunked.attrs == whole.attrs


def test_trimmed_text_is_the_same_values_with_one_string_object_per_value():
    values = [" yes", "no ", "yes", "", "  ", None, "no", "é "] * 500
    s = pd.Series(values, dtype="str", name="c")
    out = _trimmed_text(s)
    text = s.str.strip()
    before = text.where(text != "").astype(object).where(text.notna() & (text != ""), np.nan)
    pd.testing.assert_series_equal(out, before)
    # one object per distinct value as written (' yes' and 'yes' are two), not a new object per row
    assert len({id(v) for v in out if isinstance(v, str)}) == 5


def test_prepared_numeric_columns_share_the_loaded_values_until_written():
    raw = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) * 2, "y": ["p", "q"] * 25})
    schema, _ = infer_schema(raw, "y")
    out, _ = prepare_frame(raw, schema)
    assert np.shares_memory(out["a"].to_numpy(), raw["a"].to_numpy())
    out.loc[0, "a"] = 5.0  # copy-on-write: the loaded table keeps its value
    assert raw.loc[0, "a"] == 0.0 and out.loc[0, "a"] == 5.0


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_splits_are_the_draws_of_splitting_the_frame_itself(task):
    from sklearn.model_selection import train_test_split

    from synthloop.splits import _strata

    rng = np.random.default_rng(1)
    n = 1000
    frame = pd.DataFrame({"x": rng.normal(size=n)}, index=rng.permutation(n) + 10)
    frame["y"] = rng.choice(["a", "b", "c"], n) if task == "classification" else rng.normal(size=n)
    schema = infer_schema(frame, "y", task=task)[0]
    train, val, sealed = split_frame(frame, schema, val_fraction=0.2, test_fraction=0.2, seed=3)
    rest, test = train_test_split(frame, test_size=200, random_state=3, stratify=_strata(frame["y"], task))
    train0, val0 = train_test_split(rest, test_size=200, random_state=4, stratify=_strata(rest["y"], task))
    pd.testing.assert_frame_equal(train, train0)
    pd.testing.assert_frame_equal(val, val0)
    pd.testing.assert_frame_equal(sealed.open(), test)
