"""Tests for loading, checking, typing and preparing tables (synthloop.data)."""

from __future__ import annotations

import ast
import gzip
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import synthloop.data as data_module
from synthloop.data import check_frame, infer_schema, load_table, prepare_frame, redact_url
from synthloop.errors import ConfigError, DataError


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _assert_one_line(exc: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    assert "\r" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def _mixed_frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": range(n),
            "x": rng.normal(size=n),
            "color": rng.choice(["red", "blue", None], n),
            "flag": rng.choice(["yes", "no"], n),
            "when": pd.date_range("2021-01-01", periods=n).strftime("%Y-%m-%d"),
            "y": np.array(["a", "b", "c"] * (n // 3)),
        }
    )


# ------------------------------------------------------------------------------------------
# module hygiene


def test_module_does_not_import_orchestration_or_tracking():
    modules = sorted(Path(data_module.__file__).parent.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "load.py", "check.py", "infer.py", "prepare.py"}
    imported = set()
    for node in (n for m in modules for n in ast.walk(ast.parse(m.read_text(encoding="utf-8")))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"prefect", "mlflow"}


# ------------------------------------------------------------------------------------------
# load_table: files


def test_utf8_bom_header_is_clean(tmp_path):
    path = _write(tmp_path / "bom.csv", "\ufeffage,city,y\n30,Paris,1\n41,Oslo,0\n")
    df = load_table(str(path))
    assert list(df.columns) == ["age", "city", "y"]
    assert df["age"].tolist() == [30, 41]
    assert df.attrs["source"] == str(path)
    assert df.attrs["notes"] == []


@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".tsv", "\t"), (".txt", "|"), (".csv", ";")])
def test_delimiter_is_sniffed(tmp_path, suffix, sep):
    lines = [sep.join(["a", "b", "label"])] + [sep.join([str(i), f"t{i}", str(i % 2)]) for i in range(6)]
    df = load_table(str(_write(tmp_path / f"d{suffix}", "\n".join(lines) + "\n")))
    assert list(df.columns) == ["a", "b", "label"]
    assert df.shape == (6, 3)


def test_semicolon_file_with_decimal_commas(tmp_path):
    path = _write(tmp_path / "de.csv", "preis;stadt;y\n1,5;Köln;0\n2,25;Bonn;1\n10,0;;0\n")
    df = load_table(str(path))
    assert df["preis"].dtype == np.float64
    assert df["preis"].tolist() == [1.5, 2.25, 10.0]
    assert any("decimal commas" in note for note in df.attrs["notes"])


def test_gzip_csv(tmp_path):
    path = tmp_path / "small.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("a,y\n1,0\n2,1\n3,0\n")
    assert load_table(str(path)).shape == (3, 2)


def test_cp1252_file_falls_back_with_note_that_reaches_schema_notes(tmp_path):
    path = _write(tmp_path / "win.csv", "name,n,y\ncafé,1,0\nnaïve,2,1\n€uro,3,0\n", encoding="cp1252")
    df = load_table(str(path))
    assert df["name"].tolist() == ["café", "naïve", "€uro"]
    (note,) = df.attrs["notes"]
    assert "win.csv" in note
    assert "cp1252" in note
    assert "offset 12" in note
    _, notes = infer_schema(df, "y", task="classification")
    assert note in notes


def test_bad_utf8_after_the_sniffed_head_still_falls_back(tmp_path):
    head = b"a,b\n" + b"1,x\n" * 20_000  # 80 KB, more than the sniffed head
    path = tmp_path / "late.csv"
    path.write_bytes(head + b"2,caf\xe9\n")
    df = load_table(str(path))
    assert df["b"].iloc[-1] == "café"
    assert f"offset {len(head) + 5}" in df.attrs["notes"][0]


def test_rows_with_trailing_delimiter_are_read(tmp_path):
    df = load_table(str(_write(tmp_path / "trail.csv", "a,b\n1,2,\n3,4,\n")))
    assert df.to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_wide_csv_2000_columns(tmp_path):
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(rng.normal(size=(50, 2000)).round(4), columns=[f"f{i}" for i in range(2000)])
    wide["y"] = [0, 1] * 25
    path = tmp_path / "wide.csv"
    wide.to_csv(path, index=False)
    df = load_table(str(path))
    check_frame(df, "y", source_name="wide.csv")
    schema, _ = infer_schema(df, "y")
    prepared, _ = prepare_frame(df, schema)
    assert schema.task == "classification"
    assert len(schema.kinds) == 2000
    assert prepared.shape == (50, 2001)


def test_parquet_file(tmp_path):
    frame = _mixed_frame(30)
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    df = load_table(str(path))
    assert df.shape == frame.shape
    schema, _ = infer_schema(df, "y")
    assert schema.kinds["color"] == "categorical"


# ------------------------------------------------------------------------------------------
# load_table: databases and bundled datasets


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as con:
        _mixed_frame(30).to_sql("orders", con, index=False)
    con.close()
    return f"sqlite:///{path}"


def test_sqlite_table(sqlite_url):
    df = load_table(sqlite_url, table="orders")
    assert df.shape == (30, 6)
    assert "orders" in df.attrs["source"]


def test_sqlite_query(sqlite_url):
    df = load_table(sqlite_url, query="SELECT x, y, '12:30' AS t FROM orders WHERE y = 'a'")
    assert list(df.columns) == ["x", "y", "t"]
    assert set(df["y"]) == {"a"}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"table": "nope"}, "'nope' not found; tables here: 'orders'"),
        ({}, "give a table or a query"),
        ({"table": "orders", "query": "SELECT 1"}, "not both"),
        ({"query": "SELECT missing_col FROM orders"}, "missing_col"),
    ],
)
def test_sqlite_errors(sqlite_url, kwargs, fragment):
    with pytest.raises(DataError) as exc:
        load_table(sqlite_url, **kwargs)
    _assert_one_line(exc, "shop.db", fragment)


def test_missing_sqlite_file_is_not_created(tmp_path):
    path = tmp_path / "absent.db"
    with pytest.raises(DataError) as exc:
        load_table(f"sqlite:///{path}", table="t")
    _assert_one_line(exc, "absent.db", "not found")
    assert not path.exists()


def test_database_errors_never_show_the_password():
    with pytest.raises(DataError) as exc:
        load_table("nosuchdb://alice:hunter2@db.example:5432/sales", table="t")
    message = _assert_one_line(exc, "alice:***@db.example")
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://bob:s3cret@host:5432/db", "postgresql://bob:***@host:5432/db"),
        ("postgresql://bob:p@ss@host/db", "postgresql://bob:***@host/db"),
        ("mysql://host/db?user=x&password=pw&ssl=1", "mysql://host/db?user=x&password=***&ssl=1"),
        ("sqlite:///data/x.db", "sqlite:///data/x.db"),
        ("postgresql://bob@host/db", "postgresql://bob@host/db"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_sklearn_digits():
    df = load_table("sklearn:digits")
    assert df.shape == (1797, 65)
    assert list(df.columns[:64]) == [f"pixel_{i}" for i in range(64)]
    assert df["target"].dtype == np.int64
    schema, _ = infer_schema(df, "target")
    assert schema.task == "classification"
    assert schema.classes == tuple(range(10))
    assert all(type(c) is int for c in schema.classes)


def test_sklearn_diabetes():
    df = load_table("sklearn:diabetes")
    assert df.shape == (442, 11)
    schema, _ = infer_schema(df, "target")
    assert schema.task == "regression"
    assert schema.classes is None
    prepared, _ = prepare_frame(df, schema)
    assert prepared["target"].dtype == np.float64


# ------------------------------------------------------------------------------------------
# load_table: bad files


_BAD_FILES = {
    "empty.csv": ("", "empty (0 bytes)"),
    "blank.csv": ("\n\n  \n", "empty"),
    "header_only.csv": ("a,b,y\n", "no data rows"),
    "dupes.csv": ("a,b,a,y\n1,2,3,0\n", "'a'"),
    "dupes_spaced.csv": ("a, a,y\n1,2,0\n", "'a'"),
    "ragged.csv": ("a,b,y\n1,2,0\n3,4,1\n5,6,7,0\n", "line 4 has 4 fields but the header has 3"),
    "ragged_first.csv": ("a,b,y\n1,2,0,9\n3,4,1\n", "line 2 has 4 fields"),
    "quote.csv": ('a,y\n1,"open\n2,0\n', "never closed"),
    "sheet.xlsx": ("PK", "unsupported file type"),
    "binary.csv": ("a\x00b\x00\n", "NUL bytes"),
}


@pytest.mark.parametrize("name", sorted(_BAD_FILES))
def test_bad_files_raise_one_line_data_error(tmp_path, name):
    content, fragment = _BAD_FILES[name]
    path = _write(tmp_path / name, content)
    with pytest.raises(DataError) as exc:
        load_table(str(path))
    _assert_one_line(exc, name, fragment)


def test_ragged_row_past_the_sniffed_head(tmp_path):
    rows = "".join(f"{i},{i},0\n" for i in range(8000))  # about 90 KB
    path = _write(tmp_path / "late_ragged.csv", "a,b,y\n" + rows + "1,2,3,4\n")
    with pytest.raises(DataError) as exc:
        load_table(str(path))
    _assert_one_line(exc, "late_ragged.csv", "line 8002 has 4 fields")


def test_missing_file_suggests_similar_names(tmp_path):
    _write(tmp_path / "sales.csv", "a,y\n1,0\n")
    with pytest.raises(DataError) as exc:
        load_table(str(tmp_path / "sale.csv"))
    _assert_one_line(exc, "sale.csv", "file not found", "'sales.csv'")


def test_corrupt_parquet(tmp_path):
    path = _write(tmp_path / "broken.parquet", "not parquet at all")
    with pytest.raises(DataError) as exc:
        load_table(str(path))
    _assert_one_line(exc, "broken.parquet", "Parquet")


@pytest.mark.parametrize(
    ("source", "kwargs", "fragment"),
    [
        ("sklearn:iriss", {}, "did you mean 'sklearn:iris'"),
        ("sklearn:linnerud", {}, "choose one of"),
        ("data.csv", {"table": "t"}, "only apply to database URLs"),
    ],
)
def test_bad_sources(source, kwargs, fragment):
    with pytest.raises(DataError) as exc:
        load_table(source, **kwargs)
    _assert_one_line(exc, source, fragment)


# ------------------------------------------------------------------------------------------
# check_frame


def test_check_frame_accepts_a_good_table_with_missing_targets_and_numeric_text():
    df = _mixed_frame()
    df.loc[[0, 5], "y"] = None
    df["as_text"] = [str(v) for v in range(len(df))]
    check_frame(df, "y", source_name="good.csv")


_REJECTED = {
    "target-case": (lambda d: d, "Y", None, ["target column 'Y' not found", "close matches: 'y'"]),
    "target-typo": (lambda d: d, "colour", None, ["'colour' not found", "'color'"]),
    "target-empty": (lambda d: d.assign(y=np.nan), "y", None, ["'y'", "every value is missing"]),
    "single-class": (lambda d: d.assign(y="a"), "y", None, ["'y'", "single class ('a')"]),
    "rare-class": (
        lambda d: d.assign(y=["a"] * (len(d) - 2) + ["b", "b"]),
        "y",
        None,
        ["'y'", "class 'b' (2 rows)", "cannot be stratified"],
    ),
    "infinite": (
        lambda d: d.assign(x=d["x"].where(d.index > 2, np.inf)),
        "y",
        None,
        ["column 'x'", "3 infinite"],
    ),
    "stray-text": (
        lambda d: d.assign(age=["41"] * (len(d) - 2) + ["abc", "n/a?"]),
        "y",
        None,
        ["column 'age' holds text in a numeric column (e.g. 'abc', 'n/a?')"],
    ),
    "text-regression": (lambda d: d, "y", "regression", ["'y'", "holds text", "regression needs numbers"]),
}


@pytest.mark.parametrize("case", sorted(_REJECTED))
def test_check_frame_rejects(case):
    change, target, task, fragments = _REJECTED[case]
    with pytest.raises(DataError) as exc:
        check_frame(change(_mixed_frame()), target, source_name="data.csv", task=task)
    _assert_one_line(exc, "data.csv", *fragments)


def test_single_column_table_hints_at_the_delimiter(tmp_path):
    df = load_table(str(_write(tmp_path / "spaces.txt", "a b y\n1 2 0\n3 4 1\n")))
    with pytest.raises(DataError) as exc:
        check_frame(df, "y", source_name=df.attrs["source"])
    _assert_one_line(exc, "spaces.txt", "'y' not found", "one column only")


def test_check_frame_rejects_bad_options():
    with pytest.raises(ConfigError):
        check_frame(_mixed_frame(), "y", source_name="data.csv", task="clustering")


def test_check_frame_respects_min_rows_per_class():
    df = _mixed_frame(30)  # ten rows per class
    check_frame(df, "y", source_name="d.csv", min_rows_per_class=10)
    with pytest.raises(DataError) as exc:
        check_frame(df, "y", source_name="d.csv", min_rows_per_class=11)
    _assert_one_line(exc, "d.csv", "fewer than 11 rows")


# ------------------------------------------------------------------------------------------
# infer_schema


def test_infer_schema_kinds_and_dropped_columns():
    n = 60
    df = _mixed_frame(n)
    df["customer_uuid"] = [f"u-{i:05d}" for i in range(n)]
    df["ticket"] = np.arange(1000, 1000 + n) * 7  # integers, all unique
    df["constant"] = 4
    df["nothing"] = np.nan
    df["comment"] = [f"note {i // 2}" for i in range(n)]  # 30 distinct among 60 -> kept? 50 % is not > 50 %
    df["remark"] = [f"remark {i // 1.5:.0f}" for i in range(n)]  # 40 distinct among 60
    df["amount_text"] = [f"{i * 1.25:.2f}" for i in range(n)]
    df["is_member"] = [1, 0] * (n // 2)
    schema, notes = infer_schema(df, "y")

    assert schema.task == "classification"
    assert schema.classes == ("a", "b", "c")
    assert schema.kinds == {
        "x": "numeric",
        "color": "categorical",
        "flag": "boolean",
        "when": "datetime",
        "comment": "categorical",
        "amount_text": "numeric",
        "is_member": "boolean",
    }
    assert set(schema.dropped) == {"id", "customer_uuid", "ticket", "constant", "nothing", "remark"}
    assert "ID-like" in schema.dropped["id"]
    assert "ID-like" in schema.dropped["ticket"]
    assert "constant" in schema.dropped["constant"]
    assert "missing" in schema.dropped["nothing"]
    assert "too many categories" in schema.dropped["remark"]
    for col in schema.dropped:
        assert any(note.startswith(f"dropped column {col!r}") for note in notes)
    assert any("task: classification" in note for note in notes)
    assert any("'amount_text'" in note for note in notes)


def test_small_row_counter_is_id_like_but_short_ranges_are_kept():
    counter = pd.DataFrame({"row": range(1, 13), "x": np.linspace(0, 1, 12), "y": [0, 1] * 6})
    schema, _ = infer_schema(counter, "y")
    assert "row" in schema.dropped
    tiny = pd.DataFrame({"k": [0, 1, 2, 3], "x": [0.5, 0.1, 0.3, 0.2], "y": [0, 1, 0, 1]})
    schema, _ = infer_schema(tiny, "y")
    assert schema.kinds == {"k": "numeric", "x": "numeric"}


def test_dates_are_recognised_day_first_when_needed():
    df = pd.DataFrame(
        {
            "signed": ["03/01/2021", "25/12/2020", "13/02/2021", None] * 5,
            "x": np.linspace(0, 1, 20),
            "y": [0, 1] * 10,
        }
    )
    schema, _ = infer_schema(df, "y")
    assert schema.kinds["signed"] == "datetime"
    prepared, notes = prepare_frame(df, schema)
    assert prepared["signed"].iloc[1] == pd.Timestamp("2020-12-25")
    assert prepared["signed"].iloc[0] == pd.Timestamp("2021-01-03")
    assert prepared["signed"].isna().sum() == 5
    assert notes == []


@pytest.mark.parametrize(
    "values",
    [["1-5", "6-10", "11-15"], ["12:30", "13:45", "08:00"], ["1st", "2nd", "3rd"], ["1/2", "3/4", "1/4"]],
)
def test_date_parser_lookalikes_stay_categorical(values):
    df = pd.DataFrame({"band": values * 4, "y": [0, 1] * 6})
    schema, _ = infer_schema(df, "y")
    assert schema.kinds["band"] == "categorical"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (np.linspace(0, 1, 40), "regression"),
        (np.arange(40) % 4, "classification"),
        (np.arange(40) * 3, "regression"),
        ([True, False] * 20, "classification"),
        (["cat", "dog"] * 20, "classification"),
        ([1.0, 0.0, np.nan, 1.0] * 10, "classification"),
    ],
    ids=["float", "few-ints", "many-ints", "bool", "text", "ints-with-nan"],
)
def test_task_is_guessed(target, expected):
    df = pd.DataFrame({"x": np.random.default_rng(2).normal(size=40), "t": target})
    schema, _ = infer_schema(df, "t")
    assert schema.task == expected


def test_overrides_and_drop():
    df = _mixed_frame()
    schema, notes = infer_schema(
        df, "y", task="classification", column_types={"id": "numeric", "flag": "categorical"}, drop=["when"]
    )
    assert schema.kinds["id"] == "numeric"
    assert schema.kinds["flag"] == "categorical"
    assert schema.dropped == {"when": "listed in drop"}
    assert not any(note.startswith("task:") for note in notes)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"drop": ["colr"]}, DataError, "'colr' named in drop is not in the table; close matches: 'color'"),
        ({"column_types": {"nope": "numeric"}}, DataError, "'nope' named in column_types"),
        ({"drop": ["y"]}, DataError, "cannot be dropped"),
        ({"column_types": {"x": "text"}}, ConfigError, "'text' is not a column kind"),
        ({"task": "ranking"}, ConfigError, "task must be"),
        ({"drop": ["id", "x", "color", "flag", "when"]}, DataError, "no usable feature columns"),
    ],
)
def test_infer_schema_rejects_bad_options(kwargs, error, fragment):
    df = _mixed_frame()
    df.attrs["source"] = "orders.csv"
    with pytest.raises(error) as exc:
        infer_schema(df, "y", **kwargs)
    message = _assert_one_line(exc, fragment)
    if error is DataError:
        assert "orders.csv" in message


def test_infer_schema_missing_target_names_the_source(tmp_path):
    df = load_table(str(_write(tmp_path / "t.csv", "label_a,x\n1,2\n0,3\n")))
    with pytest.raises(DataError) as exc:
        infer_schema(df, "label")
    _assert_one_line(exc, "t.csv", "'label' not found", "'label_a'")


# ------------------------------------------------------------------------------------------
# prepare_frame


def test_prepare_frame_dtypes_and_missing_values(tmp_path):
    text = (
        "id,size,colour,member,joined,score,y\n"
        "1, 10 ,red,yes,2021-03-01,1.5,a\n"
        "2,12, blue ,no,2021-03-02,,b\n"
        "3,,,yes,2021-03-05,2.5,\n"
        "4,9,red,,2021-03-09,3.5,a\n"
        "5,11,,no,,0.5,b\n"
        "6,13,blue,no,2021-04-01,4.0,b\n"
    )
    df = load_table(str(_write(tmp_path / "p.csv", text)))
    before = df.copy(deep=True)
    schema, _ = infer_schema(df, "y", column_types={"size": "numeric"})
    prepared, notes = prepare_frame(df, schema)

    pd.testing.assert_frame_equal(df, before)
    assert list(prepared.columns) == [*schema.features, "y"]
    assert prepared["size"].dtype == np.float64
    assert prepared["score"].dtype == np.float64
    assert prepared["member"].dtype == np.float64
    assert prepared["member"].tolist()[:2] == [1.0, 0.0]
    assert np.isnan(prepared["member"].iloc[2])
    assert pd.api.types.is_datetime64_any_dtype(prepared["joined"])
    assert prepared["colour"].dtype == object
    colours = prepared["colour"].tolist()
    assert colours[:2] == ["red", "blue"]
    assert isinstance(colours[3], float)
    assert np.isnan(colours[3])
    assert prepared["y"].tolist() == ["a", "b", "a", "b", "b"]
    assert len(prepared) == 5
    assert "dropped 1 of 6 rows whose target 'y' is missing" in notes


def test_prepare_frame_keeps_integer_labels_and_classes_consistent():
    df = pd.DataFrame({"x": np.linspace(0, 1, 12), "y": [0.0, 1.0, 2.0, np.nan] * 3})
    schema, _ = infer_schema(df, "y")
    prepared, notes = prepare_frame(df, schema)
    assert schema.classes == (0, 1, 2)
    assert prepared["y"].dtype == np.int64
    assert set(prepared["y"]) == set(schema.classes)
    assert any("3 of 12 rows" in note for note in notes)


def test_prepare_frame_converts_forced_kinds_with_notes():
    df = pd.DataFrame(
        {
            "n": ["1", "2", "x", "4"],
            "b": ["M", "F", "F", None],
            "c": [1.0, 2.0, np.nan, 2.5],
            "y": [1.0, 2.5, 3.0, 4.0],
        }
    )
    schema, _ = infer_schema(df, "y", column_types={"n": "numeric", "b": "boolean", "c": "categorical"})
    prepared, notes = prepare_frame(df, schema)
    assert prepared["n"].tolist()[:2] == [1.0, 2.0]
    assert np.isnan(prepared["n"].iloc[2])
    assert prepared["b"].tolist()[:3] == [1.0, 0.0, 0.0]
    assert prepared["c"].tolist()[:2] == ["1", "2"]
    assert prepared["c"].iloc[3] == "2.5"
    assert any("'n'" in note and "not numbers" in note for note in notes)
    assert any("'b'" in note for note in notes)


def test_prepare_frame_missing_schema_column():
    df = _mixed_frame()
    df.attrs["source"] = "orders.csv"
    schema, _ = infer_schema(df, "y")
    with pytest.raises(DataError) as exc:
        prepare_frame(df.drop(columns=["color"]), schema)
    _assert_one_line(exc, "orders.csv", "'color'")
