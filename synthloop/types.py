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
