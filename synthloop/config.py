"""One configuration object for the whole cycle.

`Config` has a section per stage plus the loop's bounds and the seed. It loads from YAML
(`Config.from_yaml`), takes dotted overrides from the command line (`Config.load(..., overrides=...)`)
and rejects unknown keys and out-of-range values with one message that names the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthloop.errors import ConfigError

HIGHER_IS_BETTER = {
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
    "roc_auc": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
}
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Where the real rows come from and how they are split.

    `initial_labelled` is how many train rows have labels at the start (a count, or a fraction
    of the train split); the rest of the train split is a pool whose labels must be bought.

    Strategies:
        existing: train on the given data (a pool only when `initial_labelled` is set).
        pretrain_finetune: pre-train on a large set (`pretrain_source`: "synthetic" — a generator fitted to
            the real train rows —, "simulate:..." or another table with the same columns), then fine-tune
            on the small real set (xgboost continues boosting; random forests add trees with warm_start).
        from_scratch: nothing is collected yet; rows are bought from a pool at `cost_per_row` (plus their
            labels at `annotation.cost_per_label`) within `annotation.budget`, `initial_labelled` first.
    `leak_check`: a feature column that alone predicts the target on train (filled only for one class, a copy of
    the target in other units) is dropped and named ("drop"), named and kept ("warn"), or not looked for ("off").
    `source` may also be `simulate:classification` or `simulate:regression` with settings as a query,
    e.g. `simulate:classification?n_rows=5000&n_features=20&class_sep=1.0&label_noise=0.05`.
    """

    source: str = "sklearn:digits"
    target: str | None = None
    task: Literal["classification", "regression"] | None = None
    table: str | None = None
    query: str | None = None
    val_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    initial_labelled: float | None = Field(None, gt=0)
    column_types: dict[str, Literal["numeric", "categorical", "boolean", "datetime"]] = {}
    drop_columns: list[str] = []
    leak_check: Literal["drop", "warn", "off"] = "drop"
    strategy: Literal["existing", "pretrain_finetune", "from_scratch"] = "existing"
    cost_per_row: float = Field(0.0, ge=0.0)
    pretrain_source: str | None = None
    pretrain_rows: int = Field(5000, ge=10, le=10_000_000)

    @field_validator("leak_check", mode="before")
    @classmethod
    def _bare_off(cls, v: Any) -> Any:
        return "off" if v is False else v  # YAML reads a bare `off` (in a file or --set) as false


class GoalConfig(_Section):
    """What "good enough" means on validation.

    `threshold` None means: clearly better than the trivial baseline (`min_gain_over_baseline`).
    """

    metric: str | None = None
    threshold: float | None = None
    min_gain_over_baseline: float = Field(0.05, ge=0.0)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str | None) -> str | None:
        if v is not None and v not in HIGHER_IS_BETTER:
            raise ValueError(f"unknown metric {v!r}; choose one of {', '.join(HIGHER_IS_BETTER)}")
        return v

    @classmethod
    def parse(cls, text: str) -> GoalConfig:
        """Parse a goal written as `metric >= value`, `metric <= value`, or a metric alone (no threshold)."""
        bare = text.strip().lower()
        if re.fullmatch(r"[a-z_0-9]+", bare):  # a metric alone: judged on it, no threshold
            if bare not in HIGHER_IS_BETTER:
                raise ConfigError(f"goal: unknown metric {bare!r}; choose one of {', '.join(HIGHER_IS_BETTER)}")
            return cls(metric=bare)
        m = re.fullmatch(r"\s*([a-z_0-9]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*", text)
        if not m:
            raise ConfigError(f"goal: cannot read {text!r}; write it as 'accuracy >= 0.9', 'rmse <= 600' or a metric alone ('roc_auc')")
        metric, op, value = m.group(1), m.group(2), float(m.group(3))
        if metric not in HIGHER_IS_BETTER:
            raise ConfigError(f"goal: unknown metric {metric!r}; choose one of {', '.join(HIGHER_IS_BETTER)}")
        if HIGHER_IS_BETTER[metric] != op.startswith(">"):
            better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
            raise ConfigError(f"goal: {better} {metric} is better, so write '{metric} {'>=' if better == 'higher' else '<='} {value}'")
        try:
            return cls(metric=metric, threshold=value)
        except ValidationError as exc:
            raise ConfigError(_one_line(exc, "goal")) from None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return cls.parse(data).model_dump()
        return data

    @model_validator(mode="after")
    def _threshold_range(self) -> GoalConfig:
        bounded = {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc"}
        if self.metric in bounded and self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold {self.threshold} for {self.metric} must lie between 0 and 1")
        if self.metric in {"rmse", "mae", "log_loss"} and self.threshold is not None and self.threshold < 0:
            raise ValueError(f"threshold {self.threshold} for {self.metric} cannot be negative")
        return self


class AnnotatorConfig(_Section):
    """One (simulated) annotator: its price and its error model (a flat noise rate or a K x K confusion matrix)."""

    name: str = Field(min_length=1)
    cost_per_label: float = Field(1.0, ge=0.0)
    noise_rate: float = Field(0.0, ge=0.0, lt=1.0)
    confusion: list[list[float]] | None = None


class AnnotationConfig(_Section):
    """Buying labels for pool rows: price, batch size, budget, who labels, and the label audit.

    Without `annotators`, one annotator named "annotator" labels at `cost_per_label` with `noise_rate`.
    Each item gets `votes_per_item` votes from the annotators in list order (cycling when there are fewer),
    combined by `aggregation`. The audit (confident learning, run in validate) flags likely-wrong train
    labels; `on_flag` re-labels them (`reannotate_votes` more votes, from `reannotate_by` when set) or drops
    them. `mode: human` writes the rows to label as a CSV and pauses the flow until it is resumed.
    """

    cost_per_label: float = Field(1.0, ge=0.0)
    batch_size: int = Field(200, ge=1)
    budget: float | None = Field(None, ge=0.0)
    noise_rate: float = Field(0.0, ge=0.0, lt=1.0)
    selection: Literal["uncertainty", "margin", "random"] = "uncertainty"
    annotators: list[AnnotatorConfig] = []
    votes_per_item: int = Field(1, ge=1, le=20)
    aggregation: Literal["majority", "dawid_skene"] = "majority"
    audit: bool = True
    audit_noise_threshold: float = Field(0.05, gt=0.0, lt=1.0)
    on_flag: Literal["reannotate", "drop"] = "reannotate"
    reannotate_votes: int = Field(2, ge=1, le=20)
    reannotate_by: str | None = None
    mode: Literal["simulated", "human"] = "simulated"
    labels_dir: str | None = None
    human_timeout_s: int = Field(7 * 24 * 3600, ge=1)
    human_poll_s: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _known_annotators(self) -> AnnotationConfig:
        names = [a.name for a in self.annotators]
        if len(set(names)) != len(names):
            raise ValueError(f"annotator names must be unique, got {names}")
        if self.reannotate_by is not None and self.reannotate_by not in names:
            raise ValueError(f"reannotate_by {self.reannotate_by!r} is not one of the annotators {names}")
        return self


class SyntheticConfig(_Section):
    """Synthetic rows fitted to the real train split; they go into train only.

    `generator: auto` (the default) chooses between `copula`, `smote` and `cart` each time synthetic rows are made,
    by 3-fold cross-validation on the real train rows (never validation): the generator whose rows, added to the
    real ones, score best on the held-out folds. The choice and its figures are recorded on the iteration's run.
    """

    generator: Literal["auto", "copula", "smote", "cart"] = "auto"
    ratio: float = Field(1.0, gt=0.0, le=20.0)
    report: bool = True


class ModelConfig(_Section):
    """The design: model family and its settings.

    `family: auto` starts with gradient boosting (xgboost) and lets the loop change it. `search_trials` is how many
    designs a design search cross-validates on train at most (it also stops when its share of the loop's time
    budget is spent); the best of them may be combined into an ensemble.
    """

    family: Literal["auto", "xgboost", "hist_gradient_boosting", "random_forest", "extra_trees", "linear"] = "auto"
    n_estimators: int = Field(200, ge=1, le=100_000)
    learning_rate: float = Field(0.1, gt=0.0, le=1.0)
    max_depth: int = Field(6, ge=1, le=64)
    early_stopping_rounds: int | None = Field(20, ge=1)
    params: dict[str, Any] = {}
    search_trials: int = Field(24, ge=2, le=500)


class LoopConfig(_Section):
    """Bounds of the go-back loop.

    Without a goal threshold the loop keeps going back while its moves pay: a move pays when it improves the best
    validation score by more than `min_improvement` (in the goal metric's units; relative for rmse and mae) and by
    more than the noise of a paired comparison on the validation rows. `time_budget_s` None sizes the budget for
    the data (`auto_time_budget`): 150 s up to 10k rows, growing with the square root of the rows beyond.
    """

    max_iterations: int = Field(6, ge=1, le=100)
    time_budget_s: float | None = Field(None, gt=0)
    min_improvement: float = Field(0.002, ge=0.0)


def auto_time_budget(rows: int) -> float:
    """The loop's default time budget in seconds for a table of `rows` rows."""
    return float(min(1800.0, 150.0 * max(1.0, rows / 10_000) ** 0.5))


class RetryConfig(_Section):
    """Retries of the stages that touch outside sources (collect, annotate)."""

    retries: int = Field(3, ge=0, le=20)
    delays_s: list[float] = [1.0, 5.0, 15.0]

    @field_validator("delays_s")
    @classmethod
    def _non_negative(cls, v: list[float]) -> list[float]:
        if any(d < 0 for d in v):
            raise ValueError("retry delays must be >= 0 seconds")
        return v


class TrackingConfig(_Section):
    """Where runs are recorded. `tracking_uri` None means MLFLOW_TRACKING_URI or ./mlruns."""

    tracking_uri: str | None = None
    experiment: str = "synthloop"
    registered_model: str | None = "synthloop-model"


class RetrainConfig(_Section):
    """Scheduled retrains: when they run, and how much better a challenger must be to become champion.

    `margin` is in the goal metric's units, on the same fresh validation rows for both models.
    """

    cron: str = "0 3 * * *"
    timezone: str = "UTC"
    margin: float = Field(0.005, ge=0.0)
    reference_rows: int = Field(2000, ge=50, le=1_000_000)
    drift_psi_alert: float = Field(0.25, gt=0.0)


class DaskConfig(_Section):
    """Where design trials run: `address` of an existing Dask scheduler (tcp://HOST:PORT), or None for a
    temporary LocalCluster when the search is big enough to pay for one; `parallel_trials: false` keeps
    them serial in-process.

    `mode: cluster` runs the whole cycle on a Dask DataFrame (`synthloop.flows.develop_cluster`): on the scheduler at
    `address`, or on a temporary LocalCluster of `workers` processes × 1 thread. `sample_rows` is what the driver
    reads (schema and preprocessing); `split_key` a column whose value decides the hash split (default: the row).
    """

    address: str | None = None
    parallel_trials: bool = True
    mode: Literal["local", "cluster"] = "local"
    workers: int = Field(2, ge=1, le=256)
    sample_rows: int = Field(20_000, ge=100, le=5_000_000)
    split_key: str | None = None

    @field_validator("address")
    @classmethod
    def _address_form(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"(tcp|tls|ucx|inproc)://[^\s:/]+:\d{1,5}", v.strip()):
            raise ValueError("write the Dask scheduler address as tcp://HOST:PORT")
        return v.strip() if v else v


class Config(_Section):
    """The whole cycle's configuration: one section per stage, the loop's bounds and the seed."""

    seed: int = 0
    threads: int | None = Field(None, ge=1, le=1024)
    data: DataConfig = DataConfig()
    goal: GoalConfig = GoalConfig()
    annotation: AnnotationConfig = AnnotationConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    model: ModelConfig = ModelConfig()
    loop: LoopConfig = LoopConfig()
    retry: RetryConfig = RetryConfig()
    tracking: TrackingConfig = TrackingConfig()
    retrain: RetrainConfig = RetrainConfig()
    dask: DaskConfig = DaskConfig()

    @classmethod
    def embedded_default(cls) -> Config:
        """The story in one run: digits, 60 labelled rows at first, a pool of labels to buy."""
        return cls(
            data=DataConfig(source="sklearn:digits", target="target", task="classification", initial_labelled=60),
            goal=GoalConfig(metric="accuracy", threshold=0.95),
            annotation=AnnotationConfig(cost_per_label=0.5, batch_size=250, budget=400.0),
        )

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
        """Build a config from an optional YAML file and dotted overrides.

        Args:
            path: A YAML file; None starts from the embedded default when no data source is
                overridden, from the plain defaults otherwise.
            overrides: Dotted keys to values, e.g. {"data.source": "x.csv", "loop.max_iterations": 3}.
        Returns:
            The validated config.
        Raises:
            ConfigError: one line naming the field and the problem.
        """
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        if path is not None:
            raw = _read_yaml(Path(path))
        elif "data.source" in overrides:
            raw = {}
        else:
            raw = cls.embedded_default().model_dump(exclude_defaults=True)
        for key, value in overrides.items():
            _set_dotted(raw, key, value)
        return cls.validate_dict(raw, origin=str(path) if path else "config")

    @classmethod
    def validate_dict(cls, raw: dict[str, Any], origin: str = "config") -> Config:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_one_line(exc, origin)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, not {type(raw).__name__}")
    return raw


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {part} is not a section")
    node[leaf] = value


def _field_paths(model: type[BaseModel] = None, prefix: str = "") -> list[str]:
    """Every dotted config key, e.g. 'annotation.budget' (sections and their fields)."""
    out = []
    for name, info in (model or Config).model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        if isinstance(info.annotation, type) and issubclass(info.annotation, _Section):
            out += _field_paths(info.annotation, f"{path}.")
    return out


def _did_you_mean(key: str) -> str:
    """'; did you mean annotation.budget?' for an unknown key close to a known one (by its full path or its last part)."""
    import difflib

    paths = _field_paths()
    close = difflib.get_close_matches(key, paths, n=1, cutoff=0.75)
    if not close:  # the right field in another section, e.g. loop.budget or just budget
        leaf = key.rsplit(".", 1)[-1]
        by_leaf = {p.rsplit(".", 1)[-1]: p for p in reversed(paths) if "." in p}
        near = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.8)
        close = [by_leaf[near[0]]] if near else []
    return f"; did you mean {close[0]}?" if close else ""


def _one_line(exc: ValidationError, origin: str) -> str:
    parts = []
    for err in exc.errors()[:3]:
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            given = err.get("input")
            nested = [f"{field}.{k}" for k in given] if isinstance(given, dict) and len(given) == 1 else []
            msg = "unknown key" + (_did_you_mean(nested[0]) if nested and _did_you_mean(nested[0])
                                   else _did_you_mean(field))
        given = err.get("input")
        shown = f" (got {given!r})" if err["type"] != "extra_forbidden" and not isinstance(given, dict) else ""
        parts.append(f"{field}: {msg}{shown}" if err["loc"] else f"{msg}{shown}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return f"{origin}: " + "; ".join(parts) + more
