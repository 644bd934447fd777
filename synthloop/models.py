"""Model families, their preprocessing, fitting with loss curves, and metrics.

Every model is a scikit-learn `Pipeline(preprocess, estimator)` that takes the raw feature frame,
so the logged MLflow model accepts the user's columns as they are. Classification labels are
encoded as 0..K-1 (xgboost needs it); the logged model (`synthloop.modelstore`) maps them back to the labels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from synthloop.types import Schema

FAMILIES = ("xgboost", "hist_gradient_boosting", "random_forest", "extra_trees", "linear")
FINE_TUNABLE = ("xgboost", "random_forest")
NATIVE_CATEGORICAL = ("xgboost", "hist_gradient_boosting")
# Design settings that are not estimator arguments: how the target and the categorical columns are fed.
DESIGN_KEYS = ("target_transform", "native_categorical")


@dataclass(frozen=True)
class ModelSpec:
    """A design: a model family and its hyperparameters (family-specific names)."""

    family: str
    params: dict[str, Any] = field(default_factory=dict)

    def with_params(self, **changes: Any) -> ModelSpec:
        return replace(self, params={**self.params, **changes})

    def describe(self) -> str:
        if self.family == "ensemble":
            from synthloop.ensemble import describe_members

            return f"ensemble({describe_members(self)})"
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.family}({shown})"


def default_spec(family: str, *, n_estimators: int = 200, learning_rate: float = 0.1, max_depth: int = 6,
                 early_stopping_rounds: int | None = 20, extra: dict[str, Any] | None = None) -> ModelSpec:
    """The starting hyperparameters of a family."""
    if family == "xgboost":
        params = {"n_estimators": n_estimators, "learning_rate": learning_rate, "max_depth": max_depth,
                  "min_child_weight": 1.0, "reg_lambda": 1.0, "subsample": 1.0,
                  "early_stopping_rounds": early_stopping_rounds}
    elif family == "hist_gradient_boosting":
        params = {"max_iter": n_estimators, "learning_rate": learning_rate, "max_depth": None,
                  "l2_regularization": 0.0, "min_samples_leaf": 20}
    elif family == "random_forest":
        params = {"n_estimators": min(n_estimators, 300), "min_samples_leaf": 1, "max_features": "sqrt"}
    elif family == "extra_trees":
        params = {"n_estimators": min(n_estimators, 300), "min_samples_leaf": 1, "max_features": 0.5}
    elif family == "linear":
        params = {"C": 1.0, "alpha": 1.0}
    else:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    return ModelSpec(family, {**params, **(extra or {})})


def datetime_features(frame: pd.DataFrame) -> np.ndarray:
    """Turn datetime columns into numbers a model can split on (days since epoch, year, month, weekday)."""
    out = []
    for col in frame.columns:
        s = pd.to_datetime(frame[col], errors="coerce")
        days = (s - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
        out += [days.to_numpy(float), s.dt.year.to_numpy(float), s.dt.month.to_numpy(float),
                s.dt.day_of_week.to_numpy(float)]
    return np.column_stack(out) if out else np.empty((len(frame), 0))


def _as_object(frame: pd.DataFrame) -> np.ndarray:
    return frame.astype(object).where(frame.notna(), "__missing__").to_numpy()


class ColumnwiseMedianImputer(SimpleImputer):
    """`SimpleImputer` whose median strategy takes the medians of float columns one column at a time.

    The statistics are the same numbers (the median of each column's observed values, as `SimpleImputer` takes over all
    columns at once), but the fit holds one column's sorted copy, not a sorted, masked copy of every row
    (4-5 times the rows' own size at 500k rows).
    """

    def _dense_fit(self, X, strategy, missing_values, fill_value):
        if strategy != "median" or X.dtype.kind != "f" or not (isinstance(missing_values, float)
                                                               and np.isnan(missing_values)):
            return super()._dense_fit(X, strategy, missing_values, fill_value)
        missing = np.isnan(X)
        self._fit_indicator(missing)
        median = np.empty(X.shape[1])
        for j in range(X.shape[1]):
            column = X[:, j]
            observed = column[~missing[:, j]] if missing[:, j].any() else column
            # np.median of the observed values is numpy.ma.median's number, without its masked machinery
            # (4 ms a column against 0.1 ms at a few hundred rows)
            median[j] = float(np.median(observed)) if observed.size else (0 if self.keep_empty_features else np.nan)
        return median


class TrainRangeClipper(BaseEstimator):
    """Clips each numeric column to what train held, so a linear model cannot extrapolate far past its rows.

    A column with more than `MIN_DISTINCT` values is clipped to its `q` and `1 - q` quantiles on train (winsorized:
    a house five times the usual size no longer gets five times the slope's price); a column with few values
    (indicators, counts) to its train minimum and maximum, so a rare value is never folded into a common one.
    The quantiles come from at most `MAX_ROWS` seeded rows.

    Regression clips at `REGRESSION_Q` (on ames, a 5,642 sq ft house was priced at 1.0M by a linear member; with
    the clip validation RMSE went from 46.9k to 37.2k). Classification clips at train's minimum and maximum only:
    a logistic model's probabilities saturate instead of running away, and on hmda the extreme debt-to-income
    ratios winsorizing removed were what predicted a denial (seed 2: test accuracy 0.9013 -> 0.8908)."""

    MIN_DISTINCT = 20
    REGRESSION_Q = 0.005
    MAX_ROWS = 100_000

    def __init__(self, q: float = 0.005):
        self.q = q

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        if len(X) > self.MAX_ROWS:
            X = X[np.random.default_rng(0).choice(len(X), self.MAX_ROWS, replace=False)]
        self.lower_ = np.full(X.shape[1], -np.inf)
        self.upper_ = np.full(X.shape[1], np.inf)
        for j in range(X.shape[1]):
            column = X[:, j][np.isfinite(X[:, j])]
            if not column.size:
                continue
            q = self.q if np.unique(column).size > self.MIN_DISTINCT else 0.0
            self.lower_[j], self.upper_[j] = np.quantile(column, [q, 1.0 - q])
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=float), self.lower_, self.upper_)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features, dtype=object)


def lean_imputers(pre: ColumnTransformer) -> ColumnTransformer:
    """`pre` with the median imputer of its numeric part (a linear preprocessor's) taking medians column-wise."""
    for name, step, _ in pre.transformers:
        if name == "num" and isinstance(step, Pipeline) and "simpleimputer" in step.named_steps:
            imputer = step.named_steps["simpleimputer"]
            pre.set_params(num__simpleimputer=ColumnwiseMedianImputer(**imputer.get_params()))
    return pre


def build_preprocessor(schema: Schema, family: str, *, native_categorical: bool = False) -> ColumnTransformer:
    """Column-wise preprocessing suited to a family: trees take NaN and ordinal codes; linear models take imputed
    numbers clipped to train's range (`TrainRangeClipper`), scaled, and one-hot categories. With
    `native_categorical` a category never seen in training becomes NaN (missing) instead of the code -1, so the
    family's own categorical splits can read it.

    The output columns are numeric and boolean columns, then categorical, then four per datetime column
    (`categorical_mask` gives which are categorical)."""
    numeric = schema.columns_of("numeric") + schema.columns_of("boolean")
    categorical = schema.columns_of("categorical")
    dates = schema.columns_of("datetime")
    as_object = FunctionTransformer(_as_object, feature_names_out="one-to-one")
    if family == "linear":
        clip_q = TrainRangeClipper.REGRESSION_Q if schema.task == "regression" else 0.0
        num = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                            TrainRangeClipper(q=clip_q), StandardScaler())
        cat = make_pipeline(as_object, OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                                     max_categories=30, sparse_output=False))
        date = make_pipeline(FunctionTransformer(datetime_features),
                             SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
    else:
        num = "passthrough"
        cat = make_pipeline(as_object, OrdinalEncoder(handle_unknown="use_encoded_value",
                                                      unknown_value=np.nan if native_categorical else -1,
                                                      min_frequency=5, max_categories=250))
        date = FunctionTransformer(datetime_features)
    parts = [(name, step, cols) for name, step, cols in
             (("num", num, numeric), ("cat", cat, categorical), ("date", date, dates)) if cols]
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False)


def categorical_mask(schema: Schema) -> list[bool]:
    """Which output columns of a tree family's preprocessor hold category codes."""
    n_num = len(schema.columns_of("numeric")) + len(schema.columns_of("boolean"))
    return ([False] * n_num + [True] * len(schema.columns_of("categorical"))
            + [False] * 4 * len(schema.columns_of("datetime")))


def build_estimator(spec: ModelSpec, task: str, *, threads: int, seed: int, n_classes: int | None = None,
                    categorical: list[bool] | None = None):
    """The unfitted estimator of a spec, with its thread count set on purpose.

    `categorical` (the preprocessor's `categorical_mask`) switches on the family's own categorical splits when
    the spec asks for them (`native_categorical`: xgboost and HistGradientBoosting)."""
    p = {k: v for k, v in spec.params.items() if k not in DESIGN_KEYS}
    native = bool(spec.params.get("native_categorical")) and categorical is not None and any(categorical)
    if spec.family == "xgboost":
        import xgboost as xgb

        cls = xgb.XGBClassifier if task == "classification" else xgb.XGBRegressor
        metric = "rmse" if task == "regression" else ("logloss" if n_classes == 2 else "mlogloss")
        if native:
            p.update(enable_categorical=True, feature_types=["c" if c else "q" for c in categorical],
                     max_cat_to_onehot=8)
        return cls(tree_method="hist", n_jobs=threads, random_state=seed, eval_metric=metric, **p)
    if spec.family == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
        p = {"early_stopping": True, "validation_fraction": 0.15, "n_iter_no_change": 20, **p}
        return cls(random_state=seed, scoring="loss", categorical_features=list(categorical) if native else None, **p)
    if spec.family == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestClassifier if task == "classification" else RandomForestRegressor
        return cls(n_jobs=threads, random_state=seed, **p)
    if spec.family == "extra_trees":
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        cls = ExtraTreesClassifier if task == "classification" else ExtraTreesRegressor
        return cls(n_jobs=threads, random_state=seed, **p)
    if spec.family == "linear":
        from sklearn.linear_model import LogisticRegression, Ridge

        if task == "classification":
            return LogisticRegression(C=p.get("C", 1.0), max_iter=2000)
        return Ridge(alpha=p.get("alpha", 1.0))
    raise ValueError(f"unknown model family {spec.family!r}")


@dataclass
class Fitted:
    """A fitted pipeline and what its training recorded."""

    pipeline: Pipeline
    curves: dict[str, list[float]]
    rounds: int | None
    best_round: int | None
    fit_seconds: float


HOLDOUT_STOPPING_MIN_ROWS = 1000
HOLDOUT_STOPPING_SHARE = 0.1


CURVE_ROWS = 10_000  # rows a recorded loss curve (train, or validation beside a holdout) is evaluated on at most


def _curve_positions(n: int, seed: int) -> np.ndarray:
    """Sorted seeded positions of at most CURVE_ROWS of `n` rows: the rows a recorded loss curve is taken on."""
    if n <= CURVE_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, CURVE_ROWS, replace=False))


def _stopping_holdout(y: np.ndarray, task: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions to fit on and the seeded (stratified) tenth of the training rows that early stopping watches."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    strata = y if task == "classification" and np.bincount(np.asarray(y, dtype=int)).min() >= 2 else None
    try:
        return train_test_split(rows, test_size=HOLDOUT_STOPPING_SHARE, random_state=seed, stratify=strata)
    except ValueError:  # a class too rare to stratify
        return train_test_split(rows, test_size=HOLDOUT_STOPPING_SHARE, random_state=seed)


# Below this many cells (rows × features) a fit uses one thread. Two threads save a tenth of a second on an idle
# machine (xgboost, 5,000 × 20: 0.26 s against 0.41 s) and cost more than that beside one busy process
# (0.75 s against 0.41 s): a fit this small mostly waits for the other thread.
ONE_THREAD_CELLS = 100_000


def fit_model(spec: ModelSpec, schema: Schema, X: pd.DataFrame, y: np.ndarray, *, X_val: pd.DataFrame | None = None,
              y_val: np.ndarray | None = None, threads: int = 1, seed: int = 0,
              init_model: Any = None, holdout_stopping: bool = False) -> Fitted:
    """Fit a spec on a frame, recording training and validation loss per round where the family has rounds.

    Args:
        spec: The design.
        schema: Column kinds of X.
        X, y: Training features and encoded target.
        X_val, y_val: Validation rows for the loss curve, and for xgboost's early stopping unless
            `holdout_stopping` gives it a holdout of the training rows.
        threads: Threads each fit may use.
        seed: Random seed.
        init_model: A fitted pipeline of the same family to fine-tune (pre-train / fine-tune): xgboost continues
            boosting from its booster, a random forest adds trees to it (warm_start); other families ignore it.
        holdout_stopping: xgboost stops early on a seeded tenth of the training rows (from
            `HOLDOUT_STOPPING_MIN_ROWS` rows on), never on validation: a model early-stopped on validation scores
            optimistically there, which would tilt the loop's comparisons on validation towards it.
    Returns:
        The fitted pipeline with its curves.
    """
    from synthloop.parallel import limit_threads

    if len(X) * max(1, X.shape[1]) < ONE_THREAD_CELLS:
        threads = 1
    with limit_threads(threads):  # HistGradientBoosting's OpenMP takes every core unless capped
        return _fit_model(spec, schema, X, y, X_val=X_val, y_val=y_val, threads=threads, seed=seed,
                          init_model=init_model, holdout_stopping=holdout_stopping)


def _fit_model(spec: ModelSpec, schema: Schema, X: pd.DataFrame, y: np.ndarray, *, X_val: pd.DataFrame | None,
               y_val: np.ndarray | None, threads: int, seed: int, init_model: Any, holdout_stopping: bool) -> Fitted:
    start = time.perf_counter()
    if spec.family == "ensemble":
        from synthloop.ensemble import fit_ensemble

        return fit_ensemble(spec, schema, X, y, X_val=X_val, y_val=y_val, threads=threads, seed=seed,
                            holdout_stopping=holdout_stopping)
    n_classes = len(schema.classes) if schema.classes is not None else None
    log_target = spec.params.get("target_transform") == "log1p" and schema.task == "regression"
    if log_target:  # fitted on log(1 + y); predictions are mapped back (see `Log1pTarget`)
        y = np.log1p(np.asarray(y, dtype=float))
        y_val = np.log1p(np.asarray(y_val, dtype=float)) if y_val is not None else None
    booster = None
    if init_model is not None and spec.family in FINE_TUNABLE:
        # Fine-tuning keeps the pre-trained preprocessing, so codes and columns mean the same thing.
        pre = init_model.named_steps["preprocess"]
        Xt = pre.transform(X)
        previous = init_model.named_steps["model"]
        est = build_estimator(spec, schema.task, threads=threads, seed=seed, n_classes=n_classes)
        if spec.family == "xgboost":
            booster = previous.get_booster()
        else:
            import copy

            # warm_start keeps the pre-trained trees; fit adds the new ones, grown on the real rows.
            est = copy.deepcopy(previous).set_params(warm_start=True, n_jobs=threads,
                                                     n_estimators=previous.n_estimators + spec.params["n_estimators"])
    else:
        native = bool(spec.params.get("native_categorical")) and spec.family in NATIVE_CATEGORICAL
        pre = build_preprocessor(schema, spec.family, native_categorical=native)
        Xt = pre.fit_transform(X)
        est = build_estimator(spec, schema.task, threads=threads, seed=seed, n_classes=n_classes,
                              categorical=categorical_mask(schema) if native else None)
    curves: dict[str, list[float]] = {}
    rounds = best = None
    if spec.family == "xgboost":
        # xgboost stores every value as float32: given float32 rows it fits the same trees without its own copy
        Xt = np.ascontiguousarray(Xt, dtype=np.float32)
        stop = None
        if holdout_stopping and spec.params.get("early_stopping_rounds") and len(y) >= HOLDOUT_STOPPING_MIN_ROWS:
            fit_rows, stop_rows = _stopping_holdout(y, schema.task, seed)
            stop = (Xt[stop_rows], np.asarray(y)[stop_rows])
            Xt, y = Xt[fit_rows], np.asarray(y)[fit_rows]
        elif X_val is None or not spec.params.get("early_stopping_rounds"):
            est.set_params(early_stopping_rounds=None)
        # xgboost stops early on the last evaluation set: the training rows' holdout when there is one, else the
        # rows given as X_val; validation given beside a holdout is only recorded (the loss curve). A recorded
        # curve is taken on at most CURVE_ROWS seeded rows: every round evaluates every set, and the full train
        # and validation rows took 15 of a 1M-row fit's 52 s.
        if len(y) <= CURVE_ROWS:
            train_curve = (Xt, y)
        else:
            keep = _curve_positions(len(y), seed)
            train_curve = (Xt[keep], np.asarray(y)[keep])
        val_curve = None
        if X_val is not None:
            if stop is not None and len(X_val) > CURVE_ROWS:  # without a holdout, xgboost stops on all of them
                keep = _curve_positions(len(X_val), seed + 1)
                val_curve = (pre.transform(X_val.iloc[keep]), np.asarray(y_val)[keep])
            else:
                val_curve = (pre.transform(X_val), y_val)
        evals = [train_curve] + ([val_curve] if val_curve is not None else []) + ([stop] if stop else [])
        est.fit(Xt, y, eval_set=evals, verbose=False, xgb_model=booster)
        res = est.evals_result()
        metric = next(iter(res["validation_0"]))
        curves["train_loss"] = [float(v) for v in res["validation_0"][metric]]
        if X_val is not None:
            curves["val_loss"] = [float(v) for v in res["validation_1"][metric]]
        rounds = len(curves["train_loss"])
        stopped = X_val is not None or stop is not None
        best = int(getattr(est, "best_iteration", rounds - 1) or 0) if stopped else rounds - 1
    else:
        if spec.family == "hist_gradient_boosting" and len(y) * 0.15 < max(30, 3 * (n_classes or 1)):
            # Too few rows for its internal validation split: no early stopping, and so at most scikit-learn's
            # default 100 rounds (a search's 1,000 took 1.5 s per fit on 80 rows and only fitted noise).
            est.set_params(early_stopping=False, max_iter=min(int(est.get_params()["max_iter"]), 100))
        est.fit(Xt, y)
        if spec.family == "hist_gradient_boosting":
            curves["train_loss"] = [float(-v) for v in est.train_score_[1:]]
            if len(est.validation_score_):
                curves["val_loss"] = [float(-v) for v in est.validation_score_[1:]]
            rounds = int(est.n_iter_)
            vl = curves.get("val_loss") or curves["train_loss"]
            best = int(np.argmin(vl)) if vl else 0
    if log_target:
        est = Log1pTarget(est)
    return Fitted(Pipeline([("preprocess", pre), ("model", est)]), curves, rounds, best,
                  time.perf_counter() - start)


class Log1pTarget(BaseEstimator):
    """A regressor fitted on log(1 + y): predicts exp(prediction) - 1, on the target's own scale.

    Skewed positive targets (prices, counts, wages) are often fitted better on the log scale; the design
    search keeps the transform only when cross-validation on train says it helps. Saved by `synthloop.modelstore`
    as the inner estimator's own files plus the transform's name.
    """

    transform = "log1p"

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def predict(self, X) -> np.ndarray:
        return np.expm1(np.asarray(self.estimator.predict(X), dtype=float))

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:  # feature_importances_, n_features_in_ ... of the inner model
        if name == "estimator":
            raise AttributeError(name)
        return getattr(self.estimator, name)


def predict(pipeline: Pipeline, X: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions and (for classification) class probabilities."""
    if task == "classification":
        proba = pipeline.predict_proba(X)
        return proba.argmax(axis=1), proba
    return pipeline.predict(X).astype(float), None


def compute_metrics(task: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None = None,
                    n_classes: int | None = None) -> dict[str, float]:
    """Validation or test metrics: accuracy, balanced accuracy, macro-F1, log loss, ROC AUC; or RMSE, MAE, R²."""
    from sklearn import metrics as m

    if task == "regression":
        return {"rmse": float(np.sqrt(m.mean_squared_error(y_true, y_pred))),
                "mae": float(m.mean_absolute_error(y_true, y_pred)),
                "r2": float(m.r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan")}
    out = {"accuracy": float(m.accuracy_score(y_true, y_pred)),
           "balanced_accuracy": float(m.balanced_accuracy_score(y_true, y_pred)),
           "f1_macro": float(m.f1_score(y_true, y_pred, average="macro", zero_division=0))}
    if proba is not None:
        labels = np.arange(n_classes or proba.shape[1])
        p = np.clip(proba, 1e-15, 1)
        out["log_loss"] = float(m.log_loss(y_true, p / p.sum(axis=1, keepdims=True), labels=labels))
        present = np.unique(y_true)
        if len(present) > 1:
            if proba.shape[1] == 2:
                out["roc_auc"] = float(m.roc_auc_score(y_true, proba[:, 1]))
            elif len(present) == proba.shape[1]:
                out["roc_auc"] = float(m.roc_auc_score(y_true, p / p.sum(axis=1, keepdims=True),
                                                       multi_class="ovr", labels=labels))
    return out


def per_class_recall(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    from sklearn.metrics import recall_score

    return recall_score(y_true, y_pred, labels=np.arange(n_classes), average=None, zero_division=0)


def baseline_metrics(task: str, y_train: np.ndarray, y_val: np.ndarray, n_classes: int | None) -> dict[str, float]:
    """Scores of a trivial model (scikit-learn's Dummy: class prior / the mean) on validation."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    X0, Xv = np.zeros((len(y_train), 1)), np.zeros((len(y_val), 1))
    if task == "classification":
        dummy = DummyClassifier(strategy="prior").fit(X0, y_train)
        proba = np.zeros((len(y_val), n_classes))
        proba[:, dummy.classes_.astype(int)] = dummy.predict_proba(Xv)
        return compute_metrics(task, y_val, proba.argmax(axis=1), proba, n_classes)
    dummy = DummyRegressor(strategy="mean").fit(X0, y_train)
    return compute_metrics(task, y_val, dummy.predict(Xv))


def feature_importance(pipeline: Pipeline) -> pd.Series | None:
    """Importances by preprocessed feature name, where the estimator exposes them."""
    if not hasattr(pipeline, "named_steps"):  # an ensemble: the importances of its heaviest member
        pipeline = pipeline.members[int(np.argmax(pipeline.weights))]
    est = pipeline.named_steps["model"]
    est = getattr(est, "estimator", est) if isinstance(est, Log1pTarget) else est
    values = getattr(est, "feature_importances_", None)
    if values is None and hasattr(est, "coef_"):
        values = np.abs(np.atleast_2d(est.coef_)).mean(axis=0)
    if values is None:
        return None
    try:
        names = pipeline.named_steps["preprocess"].get_feature_names_out()
    except Exception:  # a transformer without names: number the features instead
        names = [f"f{i}" for i in range(len(values))]
    if len(names) != len(values):
        names = [f"f{i}" for i in range(len(values))]
    return pd.Series(values, index=names).sort_values(ascending=False)
