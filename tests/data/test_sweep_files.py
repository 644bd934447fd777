"""Realistic files from a robustness sweep of `synthloop run --data FILE`: each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthloop.data import check_frame, infer_schema, load_table, prepare_features, prepare_frame
from synthloop.models import datetime_features


def _prepared(path: Path, target: str) -> tuple[pd.DataFrame, object, list[str]]:
    raw = load_table(str(path))
    check_frame(raw, target, source_name=str(path))
    schema, notes = infer_schema(raw, target)
    frame, prep_notes = prepare_frame(raw, schema)
    return frame, schema, notes + prep_notes


def _rows(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n).round(3), "y": ["a", "b", "c"] * (n // 3)})


# ------------------------------------------------------------------------------------------
# time zones: the models subtract a naive epoch, which raised on aware datetimes


def test_parquet_timestamps_with_a_time_zone_become_naive_utc(tmp_path):
    rows = _rows()
    rows["signup"] = pd.date_range("2021-03-27 22:00", periods=len(rows), freq="h", tz="America/New_York")
    path = tmp_path / "tz.parquet"
    rows.to_parquet(path)

    frame, schema, notes = _prepared(path, "y")

    assert schema.kinds["signup"] == "datetime"
    assert getattr(frame["signup"].dtype, "tz", None) is None
    expected = rows["signup"].dt.tz_convert("UTC").dt.tz_localize(None)
    assert (frame["signup"].to_numpy() == expected.to_numpy()).all()  # the same instants
    assert any("America/New_York" in n and "UTC" in n for n in notes)
    assert np.isfinite(datetime_features(frame[["signup"]])).all()  # raised TypeError before

    predicted = prepare_features(rows.drop(columns="y"), schema.kinds)  # rows as `synthloop predict` reads them
    assert getattr(predicted["signup"].dtype, "tz", None) is None
    assert (predicted["signup"].to_numpy() == frame["signup"].to_numpy()).all()


def test_csv_dates_with_utc_offsets_become_naive_utc(tmp_path):
    rows = _rows()
    rows["ts"] = ["2020-12-25T20:26:40+0100", "2020-05-16T20:52:26+0200", "2021-01-02T00:00:00Z"] * 20
    path = tmp_path / "offsets.csv"
    rows.to_csv(path, index=False)

    frame, schema, _ = _prepared(path, "y")

    assert schema.kinds["ts"] == "datetime"
    assert getattr(frame["ts"].dtype, "tz", None) is None
    assert frame["ts"].iloc[:3].tolist() == [pd.Timestamp("2020-12-25 19:26:40"), pd.Timestamp("2020-05-16 18:52:26"),
                                              pd.Timestamp("2021-01-02 00:00:00")]
    assert np.isfinite(datetime_features(frame[["ts"]])).all()


# ------------------------------------------------------------------------------------------
# missing-value markers: "?" (UCI files) was "text in a numeric column"


def test_question_mark_is_missing_in_csv(tmp_path):
    rows = _rows().astype({"x": object})
    rows.loc[[1, 7, 9], "x"] = "?"
    rows.loc[[5], "x"] = "NA"
    rows.loc[[6], "x"] = "null"
    rows["strand"] = ["+", "-", "+", "-"] * (len(rows) // 4)  # a lone "-" is a value, not a missing marker
    path = tmp_path / "markers.csv"
    rows.to_csv(path, index=False)

    frame, schema, _ = _prepared(path, "y")  # check_frame raised DataError before

    assert schema.kinds["x"] == "numeric"
    assert frame["x"].isna().sum() == 5
    assert frame["x"].notna().sum() == len(rows) - 5
    assert schema.kinds["strand"] == "categorical"
    assert frame["strand"].notna().all()


# ------------------------------------------------------------------------------------------
# numbers written for people: a price column was dropped as "free text", a formatted target made
# 800 one-row classes and a misleading stratification error


def test_currency_percent_and_thousands_are_numbers(tmp_path):
    rows = _rows()
    rows["price"] = [f"${v:,.2f}" for v in np.linspace(5, 25_000, len(rows))]
    rows["discount"] = [f"{i % 40}%" for i in range(len(rows))]
    rows["ratio"] = ["1,5", "2,25", "3,5"] * (len(rows) // 3)  # can only be decimal commas
    rows["count"] = ["1,500", "2,000", "12"] * (len(rows) // 3)  # either reading: thousands, as in the US
    path = tmp_path / "money.csv"
    rows.to_csv(path, index=False)

    frame, schema, _ = _prepared(path, "y")

    assert schema.kinds["price"] == "numeric"
    assert schema.kinds["discount"] == "numeric"
    assert frame["ratio"].iloc[:3].tolist() == [1.5, 2.25, 3.5]
    assert frame["count"].iloc[:3].tolist() == [1500.0, 2000.0, 12.0]
    assert np.allclose(frame["price"], np.linspace(5, 25_000, len(rows)).round(2))
    assert frame["discount"].iloc[:3].tolist() == [0.0, 1.0, 2.0]
    predicted = prepare_features(rows.drop(columns="y"), schema.kinds)
    assert np.allclose(predicted["price"], frame["price"])


def test_european_thousands_in_a_decimal_comma_file(tmp_path):
    amounts = ["1.234,56", "999,50", "12.345.678,00", "7,25"] * 15
    text = "menge;umsatz;datum;ziel\n" + "".join(
        f"{i},5;{amount};{10 + i % 18}.0{1 + i % 9}.2022;{'ja' if i % 2 else 'nein'}\n" for i, amount in enumerate(amounts)
    )
    path = tmp_path / "eu.csv"
    path.write_text(text, encoding="utf-8")

    frame, schema, _ = _prepared(path, "ziel")

    assert schema.kinds["menge"] == "numeric"
    assert schema.kinds["umsatz"] == "numeric"  # was dropped as ID-like text
    assert frame["umsatz"].iloc[:4].tolist() == [1234.56, 999.5, 12345678.0, 7.25]
    assert schema.kinds["datum"] == "datetime"  # dd.mm.yyyy is not a number with dot groups
    assert frame["datum"].iloc[0] == pd.Timestamp("2022-01-10")


def test_regression_target_with_thousands_separators(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.integers(50_000, 900_000, 200)
    rows = pd.DataFrame({"rooms": rng.integers(1, 8, 200), "price": [f"{v:,}" for v in values]})
    path = tmp_path / "houses.csv"
    rows.to_csv(path, index=False)

    frame, schema, notes = _prepared(path, "price")  # check_frame raised "class '298,500' (1 rows) ..." before

    assert schema.task == "regression"
    assert frame["price"].dtype == "float64"
    assert frame["price"].tolist() == values.astype(float).tolist()


# ------------------------------------------------------------------------------------------
# labels spelled in several cases: a yes/no target became six classes (accuracy 0.34, "goal met")


def test_yes_no_target_in_several_cases_is_two_classes(tmp_path):
    rows = _rows()
    rows["answer"] = ["Yes", "yes ", "YES", "No", "no", " NO"] * (len(rows) // 6)
    rows = rows.drop(columns="y")
    path = tmp_path / "survey.csv"
    rows.to_csv(path, index=False)

    frame, schema, notes = _prepared(path, "answer")

    assert len(schema.classes) == 2
    assert set(frame["answer"]) == set(schema.classes)
    assert {c.lower() for c in schema.classes} == {"yes", "no"}
    assert any("differ only in case and were read as one class" in n for n in notes)


def test_other_labels_in_several_cases_stay_apart_with_a_note(tmp_path):
    rows = _rows()
    rows["letter"] = ["a", "A", "b"] * (len(rows) // 3)
    path = tmp_path / "letters.csv"
    rows.drop(columns="y").to_csv(path, index=False)

    frame, schema, notes = _prepared(path, "letter")

    assert schema.classes == ("A", "a", "b")
    assert any("'a'/'A'" in n and "kept as separate classes" in n for n in notes)


# ------------------------------------------------------------------------------------------
# files that are not what their name says, or end early: a CSV cut off inside its last row was read without a
# word (that row's missing fields became NaN), and a Parquet file renamed .csv got "contains NUL bytes"


def test_a_file_cut_off_inside_its_last_row_loses_that_row_with_a_note(tmp_path):
    import pytest

    from synthloop.errors import DataError

    rows = _rows()
    whole = rows.to_csv(index=False)
    cut = whole[: whole.rindex("\n", 0, len(whole) - 1) + 1] + whole.splitlines()[-1][:3]  # 3 chars of the last row
    path = tmp_path / "cut.csv"
    path.write_text(cut)
    frame = load_table(str(path))
    assert len(frame) == len(rows) - 1 and frame.notna().all().all()
    note = next(n for n in frame.attrs["notes"] if "ends inside its last row" in n)
    assert f"row {len(rows)}: 1 of {rows.shape[1]} fields" in note and "dropped" in note
    complete = tmp_path / "no_line_end.csv"
    complete.write_text(whole.rstrip("\n"))  # a complete last row without its line end is a row like any other
    frame = load_table(str(complete))
    assert len(frame) == len(rows) and not frame.attrs["notes"]

    parquet = tmp_path / "table.csv"
    rows.to_parquet(parquet)
    frame = load_table(str(parquet))
    assert frame.equals(rows) and "is a Parquet file despite its name" in frame.attrs["notes"][0]
    import zipfile

    with zipfile.ZipFile(tmp_path / "book.csv", "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(DataError, match=r"book\.csv.*zip archive.*save the sheet as CSV"):
        load_table(str(tmp_path / "book.csv"))
