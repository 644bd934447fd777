"""The pre-check of a run: a large file is checked from its header only; a small one as the collect stage will."""

from __future__ import annotations

import pandas as pd
import pytest

from synthloop import preflight
from synthloop.config import Config
from synthloop.errors import ConfigError, DataError


def _frame(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame({"size": [i % 9 + 0.5 for i in range(n)], "colour": ["red", "blue", "green"] * (n // 3),
                         "species": ["rose", "tulip"] * (n // 2)})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_large_file_is_checked_from_its_header(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"flowers{suffix}"
    _frame().to_csv(path, index=False) if suffix == ".csv" else _frame().to_parquet(path)
    monkeypatch.setattr(preflight, "FULL_READ_BYTES", 10)
    found = preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "species"}))
    assert found == {"target": "species", "task": None, "columns": ["size", "colour", "species"], "full": False}
    with pytest.raises(DataError, match="target column 'specie' not found; close matches: 'species'"):
        preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "specie"}))
    with pytest.raises(DataError, match="'color' named in data.drop_columns"):
        preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "species",
                                               "data.drop_columns": ["color"]}))
    with pytest.raises(ConfigError, match="rmse is a regression metric"):  # a given task is checked against the goal
        preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "species",
                                               "data.task": "classification", "goal.metric": "rmse"}))


def test_a_small_file_is_checked_whole(tmp_path):
    path = tmp_path / "flowers.csv"
    _frame().to_csv(path, index=False)
    found = preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "species"}))
    assert found["full"] and found["task"] == "classification"
    _frame(6).to_csv(path, index=False)  # 3 rows per class cannot be split three ways
    with pytest.raises(DataError, match="flowers.csv"):
        preflight.check_run(Config.load(None, {"data.source": str(path), "data.target": "species"}))


def test_a_simulator_is_tried_on_few_rows_and_named_as_written():
    source = "simulate:classification?n_rows=1000000&n_features=3&n_informative=5"
    with pytest.raises(DataError) as exc:
        preflight.check_run(Config.load(None, {"data.source": source}))
    assert str(exc.value).startswith(source + ": ") and "n_informative" in str(exc.value)
    ok = preflight.check_run(Config.load(None, {"data.source": "simulate:regression?n_rows=1000000"}))
    assert ok["task"] == "regression" and ok["full"]


def _placements(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Students and whether they were placed; 'salary' is known only for those who were (a leak), 'grade' helps."""
    import numpy as np

    rng = np.random.default_rng(seed)
    grade = rng.normal(60, 10, n)
    placed = np.where(grade + rng.normal(0, 8, n) > 62, "Placed", "Not Placed")
    salary = np.where(placed == "Placed", rng.normal(300_000, 50_000, n).round(-3), np.nan)
    return pd.DataFrame({"grade": grade, "track": rng.choice(["sci", "arts", "com"], n), "salary": salary,
                         "status": placed})


@pytest.mark.parametrize("mode", ["drop", "warn", "off"])
def test_a_column_that_alone_predicts_the_target_is_dropped_and_named(mode):
    cfg = Config.load(None, {"data.leak_check": mode}).data
    schema, notes, rows, train, val, sealed = preflight.checked_split(_placements(), cfg, "status", 0, "placements.csv")
    said = [n for n in notes if "'salary'" in n]
    assert rows == 600 and len(train) + len(val) + sealed.n_rows == 600
    if mode == "drop":
        assert "salary" not in schema.kinds and "target leak" in schema.dropped["salary"]
        assert "salary" not in train.columns and "salary" not in val.columns
        assert len(said) == 1 and "alone predicts 'status'" in said[0] and "data.leak_check=warn" in said[0]
        assert {"grade", "track"} <= set(schema.kinds)  # the helpful columns stay
    else:
        assert "salary" in schema.kinds and "salary" in train.columns
        assert len(said) == (1 if mode == "warn" else 0)
        if said:
            assert said[0].startswith("warning:") and "kept" in said[0]
    # the same rows land in each split whether or not the column was dropped
    kept = preflight.checked_split(_placements(), Config.load(None, {"data.leak_check": "off"}).data, "status", 0, "p")
    assert list(train.index) == list(kept[3].index) and list(val.index) == list(kept[4].index)


def test_a_copy_of_a_regression_target_is_a_leak_and_a_strong_feature_is_not():
    import numpy as np

    from synthloop import data
    from synthloop.data.leak import find_leaks

    rng = np.random.default_rng(3)
    x = rng.normal(size=2000)
    price = np.exp(1 + 0.8 * x + rng.normal(0, 0.3, 2000))  # x predicts it well, not perfectly
    frame = pd.DataFrame({"x": x, "noise": rng.normal(size=2000), "price_cents": price * 100 + rng.random(2000),
                          "when": pd.date_range("2020-01-01", periods=2000, freq="h"), "price": price})
    schema, _ = data.infer_schema(frame, "price")
    found = find_leaks(frame, schema, 0)
    assert list(found) == ["price_cents"]
    assert found["price_cents"]["rank_correlation"] > 0.999
    assert find_leaks(frame.head(30), schema, 0) == {}  # too few rows to call anything a leak


def test_a_value_that_one_class_always_takes_is_a_leak_and_a_cause_shared_outside_it_is_not():
    import numpy as np

    from synthloop import data
    from synthloop.data.leak import describe, find_leaks

    rng = np.random.default_rng(5)
    n = 1300
    income = rng.lognormal(1, 0.5, n)
    card = np.where(income + rng.normal(0, 1.5, n) > 2.0, "yes", "no")  # income helps, far from perfectly
    # monthly spending on the card: none where it was refused, and none for 2 % of those who got it
    spent = np.where((card == "yes") & (rng.random(n) > 0.02), rng.gamma(2, 100, n).round(2), 0.0)
    # every refused applicant is an adult, as are most of the others: a real cause, common outside the class
    adult = np.where(card == "no", "yes", np.where(rng.random(n) < 0.7, "yes", "no"))
    frame = pd.DataFrame({"income": income, "adult": adult, "expenditure": spent, "card": card})
    schema, _ = data.infer_schema(frame, "card")
    found = find_leaks(frame, schema, 0)
    assert list(found) == ["expenditure"]
    evidence = found["expenditure"]
    assert evidence["metric"] == 2.0 and evidence["class_name"] == "no" and evidence["value"] == 0.0
    assert evidence["score"] < 0.995  # the accuracy rule alone would not have named it
    assert 0.0 < evidence["elsewhere"] < 0.05 and evidence["share"] == 1.0
    said = describe("expenditure", evidence, "card")
    assert "'expenditure' is 0 on 100.0% of the train rows where 'card' is 'no'" in said and "target leak" in said
    # the spending as a share of income: a narrow band near 0 for every refused applicant (a fee), up to 0.9 for
    # the others: the band gives the class away too
    frame["share"] = np.where(spent > 0, spent / (income * 1000), 0.0) + rng.uniform(1e-4, 2e-3, n)
    found = find_leaks(frame, data.infer_schema(frame, "card")[0], 0)
    assert list(found) == ["expenditure", "share"] and found["share"]["metric"] == 3.0
    assert found["share"]["high"] <= 2e-3 and found["share"]["width"] < 0.01
    assert "'share' lies within" in describe("share", found["share"], "card")
    frame = frame.drop(columns="share")
    # a class whose value is missing, and missing for a few of the others too
    frame["expenditure"] = np.where(spent > 0, spent, np.nan)
    found = find_leaks(frame, schema, 0)
    assert list(found) == ["expenditure"] and "is missing on" in describe("expenditure", found["expenditure"], "card")
    # more of the others at that value than the rule allows: a strong feature, not a leak
    frame["expenditure"] = np.where((card == "yes") & (rng.random(n) > 0.2), spent, 0.0)
    assert find_leaks(frame, schema, 0) == {}
    # every XL pizza is the one pizza sold in XL, which sells more often in other sizes: a cause, not a leak
    m = 3000
    size = rng.choice(["S", "M", "L", "XL"], m, p=[0.3, 0.34, 0.34, 0.02])
    name = np.where(size == "XL", "greek", np.where(rng.random(m) < 0.04, "greek", rng.choice(["hawaii", "veg"], m)))
    pizzas = pd.DataFrame({"name": name, "diameter": rng.normal(30, 5, m), "size": size})
    schema, _ = data.infer_schema(pizzas, "size")
    assert find_leaks(pizzas, schema, 0) == {}
    pizzas.loc[pizzas["size"] != "XL", "name"] = "veg"  # now only XL pizzas are greek: the name gives XL away
    assert list(find_leaks(pizzas, schema, 0)) == ["name"]


def test_a_column_set_by_a_regression_target_of_zero_is_a_leak():
    import numpy as np

    from synthloop import data
    from synthloop.data.leak import describe, find_leaks

    rng = np.random.default_rng(8)
    n = 1500
    kids = rng.integers(0, 4, n)
    works = rng.random(n) > 0.25 + 0.1 * kids  # fewer hours with more children, far from a perfect predictor
    hours = np.where(works, rng.normal(1500, 400, n).clip(100), 0.0)
    frame = pd.DataFrame({"kids": kids, "age": rng.integers(20, 60, n), "in_labour_force": np.where(works, "yes", "no"),
                          "hourly_wage": np.where(works, rng.lognormal(2.5, 0.4, n), 0.0), "hours": hours})
    schema, _ = data.infer_schema(frame, "hours")
    found = find_leaks(frame, schema, 0)
    assert set(found) == {"in_labour_force", "hourly_wage"}
    assert all(e["metric"] == 2.0 for e in found.values())
    said = describe("hourly_wage", found["hourly_wage"], "hours")
    assert "'hourly_wage' is 0 on 100.0% of the train rows where 'hours' is 0" in said
    # a target that is rarely 0: no class of its own, nothing named
    frame["hours"] = np.where(works | (rng.random(n) < 0.97), rng.normal(1500, 400, n).clip(100), 0.0)
    assert find_leaks(frame, data.infer_schema(frame, "hours")[0], 0) == {}
