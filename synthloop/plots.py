"""Figures logged as MLflow artifacts: loss curves, the loop's path, confusion matrix, residuals, importance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _figure(width: float = 6.0, height: float = 4.0):
    import warnings

    import matplotlib

    # Column names in scripts the bundled font lacks (CJK, emoji) show as boxes; one warning per glyph is noise.
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def loss_curves(curves: dict[str, list[float]], title: str, best_round: int | None = None):
    fig, ax = _figure()
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name.replace("_", " "))
    if best_round is not None:
        ax.axvline(best_round + 1, color="grey", linestyle="--", linewidth=1, label="best round")
    ax.set_xlabel("round")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.subplots_adjust(left=0.12, right=0.97, top=0.92, bottom=0.12)  # fixed labels: no layout search
    return fig


def loop_path(iterations: Sequence[dict[str, Any]], metric: str, threshold: float | None, baseline: float | None):
    """Validation score per iteration, each point labelled with the decision taken after it."""
    fig, ax = _figure(7.0, 4.2)
    xs = [it["iteration"] for it in iterations]
    ys = [it["val_metrics"].get(metric, np.nan) for it in iterations]
    ax.plot(xs, ys, marker="o", color="tab:blue", label=f"validation {metric}")
    for x, y, it in zip(xs, ys, iterations):
        ax.annotate(it["decision"], (x, y), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    if threshold is not None:
        ax.axhline(threshold, color="tab:green", linestyle="--", linewidth=1, label="goal")
    if baseline is not None and np.isfinite(baseline):
        ax.axhline(baseline, color="tab:red", linestyle=":", linewidth=1, label="trivial baseline")
    ax.set_xticks(xs)
    ax.set_xlabel("iteration")
    ax.set_ylabel(metric)
    ax.set_title("The loop: validation score and the decision after each iteration")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def learning_curve(curve: dict[str, Any], metric: str):
    """Validation score against train rows: still rising at the right end means more data should help."""
    fig, ax = _figure(5.5, 3.8)
    from synthloop.config import HIGHER_IS_BETTER

    sign = 1.0 if HIGHER_IS_BETTER.get(metric, True) else -1.0  # the diagnosis stores scores as higher-is-better
    rows, scores = curve["rows"], curve["scores"]
    ax.plot(rows, [sign * s for s in scores], marker="o")
    ax.set_xlabel("train rows")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"Learning curve: {'still rising' if curve.get('rising') else 'flat'} (gain {curve['gain']:+.4f})")
    fig.tight_layout()
    return fig


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[Any]):
    from sklearn.metrics import confusion_matrix

    k = len(classes)
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(k))
    size = min(10.0, 3.0 + 0.4 * k)
    fig, ax = _figure(size, size)
    ax.imshow(cm, cmap="Blues")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
        ax.set_xticks(range(k), [str(c) for c in classes], rotation=45, ha="right")
        ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix on validation")
    fig.tight_layout()
    return fig


def residuals(y_true: np.ndarray, y_pred: np.ndarray):
    fig, ax = _figure()
    ax.scatter(y_pred, y_true - y_pred, s=8, alpha=0.5)
    ax.axhline(0, color="grey", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (true − predicted)")
    ax.set_title("Residuals on validation")
    fig.tight_layout()
    return fig


def importance(values, top: int = 20):
    shown = values.head(top)[::-1]
    fig, ax = _figure(6.5, 0.3 * len(shown) + 1.2)
    ax.barh([str(i) for i in shown.index], shown.to_numpy())
    ax.set_xlabel("importance")
    ax.set_title(f"Feature importance (top {len(shown)})")
    fig.tight_layout()
    return fig
