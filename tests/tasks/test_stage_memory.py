"""Stage results kept on disk without holding their pickle in memory, and xgboost fitted on float32 rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthloop.tasks import cache


def test_a_result_is_pickled_to_a_file_of_its_scope_and_the_record_holds_its_name(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "storage_dir", lambda: tmp_path)
    frame = pd.DataFrame({"x": np.arange(100_000.0)})
    token = cache.set_scope("abc")
    try:
        blob = cache.RESULTS.dumps({"frame": frame, "n": 3})
    finally:
        cache.reset_scope(token)
    assert len(blob) < 200, "the record holds a file name, not the pickle"
    (path,) = (tmp_path / "scope-abc").glob("*.pickle")
    assert json.loads(blob)["file"] == f"scope-abc/{path.name}"
    back = cache.RESULTS.loads(blob)
    pd.testing.assert_frame_equal(back["frame"], frame)
    assert back["n"] == 3
    cache.discard_scope("abc")
    assert not (tmp_path / "scope-abc").exists()


def test_the_serializer_is_found_by_its_type_when_a_record_is_read_back():
    from prefect.serializers import Serializer

    assert type(Serializer(type="synthloop-file-pickle")) is cache.FilePickle


def test_xgboost_fitted_on_float32_rows_is_the_model_fitted_on_float64_rows(monkeypatch):
    import xgboost as xgb

    from synthloop.models import default_spec, fit_model
    from synthloop.types import Schema

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)) * [1, 10, 1e-3, 1e5], columns=list("abcd"))
    X.iloc[::9, 2] = np.nan
    y = (X["a"] + rng.normal(size=600) > 0).astype(int).to_numpy()
    schema = Schema(target="y", task="classification", kinds={c: "numeric" for c in X.columns}, classes=(0, 1))
    spec = default_spec("xgboost", n_estimators=30, learning_rate=0.3, max_depth=3, early_stopping_rounds=None)
    seen = []
    real_fit = xgb.XGBClassifier.fit
    monkeypatch.setattr(xgb.XGBClassifier, "fit", lambda self, X, y, **kw: seen.append(X) or real_fit(self, X, y, **kw))
    fitted = fit_model(spec, schema, X, y, threads=1, seed=0)
    assert seen[0].dtype == np.float32 and seen[0].flags["C_CONTIGUOUS"]
    monkeypatch.setattr(xgb.XGBClassifier, "fit", real_fit)
    model = fitted.pipeline.named_steps["model"]
    reference = xgb.XGBClassifier(**model.get_params()).fit(X.to_numpy(dtype=np.float64), y)
    assert model.get_booster().save_raw("json") == reference.get_booster().save_raw("json")
    np.testing.assert_array_equal(fitted.pipeline.predict_proba(X), reference.predict_proba(X.to_numpy()))


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_the_columnwise_median_imputer_gives_simple_imputers_statistics_and_output():
    from sklearn.impute import SimpleImputer

    from synthloop.models import ColumnwiseMedianImputer

    rng = np.random.default_rng(2)
    X = rng.normal(size=(101, 5))
    X[rng.random(X.shape) < 0.2] = np.nan
    X[:, 3] = np.nan  # every value missing
    X[:, 4] = rng.integers(0, 3, 101)  # ties, no value missing
    X[0, 1] = np.nan  # an even count of present values in column 1 (101 - k)
    for keep_empty in (True, False):
        for data in (X, X[:100], X.astype(np.float32)):
            params = {"strategy": "median", "add_indicator": True, "keep_empty_features": keep_empty}
            ours, ref = ColumnwiseMedianImputer(**params).fit(data), SimpleImputer(**params).fit(data)
            np.testing.assert_array_equal(ours.statistics_, ref.statistics_)
            np.testing.assert_array_equal(ours.transform(data), ref.transform(data))
