"""Small typed values that flow from one stage to the next.

`Schema` describes a table; `Collected` → `Annotated` → `Trained` → `ValidationReport` → `Decision`
are the stage outputs. The test split never appears in any of them: it lives in
:class:`synthloop.splits.SealedTest`, which only the final stage receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Task = Literal["classification", "regression"]
ColumnKind = Literal["numeric", "categorical", "boolean", "datetime"]


@dataclass(frozen=True)
class Schema:
    """Column kinds of a table and the learning task.

    Attributes:
        target: Name of the label column.
        task: "classification" or "regression".
        kinds: Feature column name -> kind, in table order (the target is not in it).
        dropped: Column name -> why it was dropped (ID-like, constant, all missing ...).
        classes: Class labels in sorted order for classification, else None.
    """

    target: str
    task: Task
    kinds: dict[str, ColumnKind]
    dropped: dict[str, str] = field(default_factory=dict)
    classes: tuple[Any, ...] | None = None

    @property
    def features(self) -> list[str]:
        return list(self.kinds)

    def columns_of(self, kind: ColumnKind) -> list[str]:
        return [c for c, k in self.kinds.items() if k == kind]


@dataclass(frozen=True)
class Collected:
    """Real rows after collect: train (labelled), validation, the label pool, and their lineage.

    The test split is not here: it travels separately as a `SealedTest` to the final stage only.
    """

    schema: Schema
    train: Any  # pandas.DataFrame, features + target, real rows with labels
    val: Any  # pandas.DataFrame, real rows only
    pool: Any  # synthloop.splits.LabelPool, train rows whose labels are not bought yet
    lineage: dict[str, Any]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingSet:
    """What a model is fitted on: real labelled rows plus any synthetic rows, each row marked by origin."""

    X: Any  # pandas.DataFrame of features
    y: Any  # numpy array, encoded target
    origin: Any  # numpy array of strings: "real", "real:bought", "synthetic:copula" ...

    @property
    def n_real(self) -> int:
        import numpy as np

        return int(np.char.startswith(self.origin.astype(str), "real").sum())

    @property
    def n_synthetic(self) -> int:
        return len(self.origin) - self.n_real


@dataclass(frozen=True)
class Trained:
    """A fitted model with its design and what training recorded."""

    spec: Any  # synthloop.models.ModelSpec
    pipeline: Any  # sklearn Pipeline
    curves: dict[str, list[float]]
    rounds: int | None
    best_round: int | None
    fit_seconds: float
    n_real: int
    n_synthetic: int


@dataclass(frozen=True)
class ValidationReport:
    """Validation evidence: metrics, the goal check, the baseline, and the diagnosis.

    Attributes:
        metrics: Validation metrics of the model.
        train_metrics: The same metrics on the real train rows (for the train–validation gap).
        baseline: Validation metrics of the trivial model.
        score: The goal metric's value on validation.
        passed: Whether the goal is met (threshold met and clearly better than the baseline).
        shortfall: Why it is not met, in words ("" when passed).
        diagnosis: Named findings with their evidence (learning-curve gain, gap, ...).
        row_losses: Per validation row, the loss behind the goal metric (`synthloop.judge.row_losses`): what a
            paired comparison of two models on the same rows needs.
        val_pred: The model's predictions (class codes or values) on the validation rows, for the plots drawn of
            them later (no second prediction).
    """

    metrics: dict[str, float]
    train_metrics: dict[str, float]
    baseline: dict[str, float]
    score: float
    passed: bool
    shortfall: str
    diagnosis: dict[str, Any]
    row_losses: Any = None
    val_pred: Any = None


@dataclass(frozen=True)
class Decision:
    """One action on one stage, with its reason and the alternatives passed over."""

    action: str
    stage: Literal["collect", "annotate", "train", "test"]
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    alternatives: tuple[str, ...] = ()

    @property
    def stops(self) -> bool:
        return self.stage == "test"
