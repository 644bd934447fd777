"""Synthetic tabular data: three generators, a simulator, a quality report and the choice between generators.

- :class:`GaussianCopula` (``copula``) fits empirical marginals joined by a shrunk Gaussian copula, one per class
  for classification, so synthetic labels are exact by construction. Fast; carries linear (rank) dependence only.
- :class:`SmoteSampler` (``smote``) interpolates between a row and one of its nearest same-class neighbours.
- :class:`CartSynthesizer` (``cart``) draws the columns one after another, each from the leaf of a decision tree
  fitted on the columns before it (sequential CART, as R's synthpop does), so non-linear relations carry over.
- :func:`select_generator` picks one of them by cross-validated utility on the real train rows.
- :func:`simulate` draws a labelled table from scikit-learn's generators.
- :func:`quality_report` scores synthetic rows for fidelity, utility and privacy.

Every generator keeps each categorical's levels and each discrete column's support, the observed class shares
(unless asked to rebalance) and missing-value rates, and passes its rows through :func:`guard_rows`, which redraws
or drops rows that copy a real train row or sit closer to one than a distance floor.

Pure domain code: no orchestration and no tracking. One module per concern: ``_codec`` (columns to arrays and
back), ``copula``, ``smote``, ``cart``, ``privacy`` (exact copies and the distance floor), ``report``, ``select``,
``simulator``.
"""

from synthloop.synth._codec import KINDS, TaskName
from synthloop.synth.cart import CartSynthesizer
from synthloop.synth.copula import GaussianCopula
from synthloop.synth.factory import GENERATORS, make_generator
from synthloop.synth.privacy import DCR_FLOOR, guard_rows
from synthloop.synth.report import quality_report
from synthloop.synth.select import select_generator
from synthloop.synth.simulator import simulate
from synthloop.synth.smote import SmoteSampler

__all__ = [
    "DCR_FLOOR",
    "GENERATORS",
    "KINDS",
    "CartSynthesizer",
    "GaussianCopula",
    "SmoteSampler",
    "TaskName",
    "guard_rows",
    "make_generator",
    "quality_report",
    "select_generator",
    "simulate",
]
