"""The go-back loop's state and bookkeeping: what it carries between iterations, what each iteration adds to the
history, which moves are still open, and when the loop ends.

The flow (`flows/develop.py`) wires stages around these; nothing here imports Prefect. The policy
(`synthloop.policy`) never sees this state: it gets the validation report, the history of `Step`s and the
`Options` computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synthloop.config import Config
from synthloop.judge import SCORE_TIE, gain_noise, needed_gain, oriented
from synthloop.policy import Options, Step
from synthloop.types import Decision


@dataclass
class LoopState:
    """What the loop carries from one iteration to the next (flow-local; never handed to the policy)."""

    labelled: pd.DataFrame
    target: str
    origin: np.ndarray
    pool: Any
    spec: Any
    synthetic: tuple[pd.DataFrame, pd.Series] | None = None
    synthetic_report: dict[str, float] | None = None
    synthetic_choice: tuple[str, dict[str, float]] | None = None  # the generator used and the evidence of its choice
    pretrained: Any = None
    pretrained_family: str | None = None
    val: pd.DataFrame | None = None
    tried_families: set[str] = field(default_factory=set)
    moves: dict[str, int] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    book: Any = None  # synthloop.labelling.LabelBook: votes, and the truth in simulations (never read by decisions)
    flagged: pd.Index | None = None  # train rows the last label audit flagged
    label_dir: Any = None
    deadline: float | None = None  # time.monotonic() at which the loop's time budget is spent
    history: list[Step] = field(default_factory=list)
    audit: tuple[str, dict] | None = None  # (digest of the real labelled rows, the label audit made on them)

    def labels_digest(self) -> str:
        """A digest of the real labelled rows' ids and labels: the label audit's inputs besides the features."""
        import hashlib

        h = hashlib.sha256(pd.util.hash_pandas_object(self.labelled[self.target], index=True).to_numpy().tobytes())
        return h.hexdigest()[:16]

    def previous_audit(self) -> dict | None:
        """The last label audit, if the labelled rows are still those it audited."""
        if self.audit is not None and self.audit[0] == self.labels_digest():
            return self.audit[1]
        return None

    def training_set(self, schema):
        """The real labelled rows, then any synthetic rows, each marked by origin."""
        from synthloop.splits import encode_target
        from synthloop.types import TrainingSet

        X = self.labelled[schema.features]
        y = encode_target(self.labelled[schema.target], schema)
        origin = self.origin
        if self.synthetic is not None:
            X_syn, y_syn = self.synthetic
            X = pd.concat([X, X_syn], ignore_index=True)
            y = np.concatenate([y, encode_target(y_syn, schema)])
            origin = np.concatenate([origin, np.array(["synthetic"], dtype=object).repeat(len(X_syn))])
        else:
            X = X.reset_index(drop=True)
        return TrainingSet(X, y, origin)

    def record(self, it: int, action_in: str, trained, report, metric: str, min_improvement: float,
               y_val: np.ndarray) -> Step:
        """Add an iteration to the history, with the gain that would have counted as real (the loop's minimum
        improvement, or the paired noise on validation against the best model so far), and keep the best: any gain
        counts, except for an iteration that added synthetic rows, which must gain that much."""
        score = oriented(metric, report.score)
        needed = 0.0
        if self.best is not None:
            ref = self.best["report"]
            needed = max(needed_gain(metric, min_improvement, self.best["score"]),
                         gain_noise(metric, report.row_losses, ref.row_losses, ref.score, y_val))
        step = Step(it, action_in, score, needed)
        self.history.append(step)
        audit = report.diagnosis.get("label_audit") or {}
        self.flagged = self.labelled.index[np.asarray(audit.get("flagged", []), dtype=int)]
        if audit:
            self.audit = (self.labels_digest(), audit)
        # Synthetic rows the best recipe did not have are kept only for a gain beyond the noise (`needed`): they
        # change what the model is taught, and a validation gain within the noise is as likely luck as help.
        new_rows = self.synthetic is not None and self.best is not None and self.synthetic is not self.best["synthetic"]
        if self.best is None or score > self.best["score"] + (needed if new_rows else SCORE_TIE):
            self.best = {"score": score, "iteration": it, "trained": trained, "report": report,
                         "spec": self.spec, "synthetic": self.synthetic, "labels": self.labels_digest()}
        return step

    def same_recipe_as_best(self) -> bool:
        """Whether the next iteration would train exactly the best iteration's recipe: the same design on the same
        labelled rows and labels and the same synthetic rows (a design search that kept the current design).
        Training is seeded, so it would give the same model and the same validation scores."""
        return (self.best is not None and self.spec == self.best["spec"] and self.synthetic is self.best["synthetic"]
                and self.labels_digest() == self.best["labels"])

    def build_on_best(self) -> None:
        """The next action starts from the best recipe so far: one that did not improve validation is undone
        (bought labels stay: they are real and paid for)."""
        self.spec, self.synthetic = self.best["spec"], self.best["synthetic"]

    def count(self, action: str) -> None:
        self.moves[action] = self.moves.get(action, 0) + 1

    def options(self, cfg: Config, ledger) -> Options:
        """What the loop can still do, from the budgets and this state."""
        from synthloop.models import FAMILIES

        affordable = 0
        if len(self.pool) and (self.pool.has_truth or cfg.annotation.mode == "human"):
            affordable = min(len(self.pool), ledger.affordable(row_price(cfg)))
        blocked = {}
        if len(self.pool) and not affordable:
            blocked["collect_labels"] = f"label budget spent ({ledger.spent:g} of {cfg.annotation.budget:g})"
        elif not len(self.pool):
            blocked["collect_labels"] = "no unlabelled rows left to buy"
        flagged = self._flagged_affordable(cfg, ledger, blocked)
        return Options(labels_affordable=affordable, synthetic_available=self.synthetic is None,
                       flagged_labels=flagged,
                       designs_untried=tuple(f for f in FAMILIES if f not in self.tried_families),
                       can_train_longer=self.moves.get("train_longer", 0) < 2,
                       can_regularize=self.moves.get("regularize", 0) < 2, blocked=blocked)

    def _flagged_affordable(self, cfg: Config, ledger, blocked: dict[str, str]) -> int:
        """How many flagged rows the configured action can handle now (0, with the reason in `blocked`, if none)."""
        from synthloop.labelling import item_cost

        n = 0 if self.flagged is None else len(self.flagged)
        if not n or cfg.annotation.on_flag == "drop":
            return n
        if cfg.annotation.mode == "simulated" and not self.book.has_truth:
            blocked["reannotate"] = ("no simulated annotator can re-label rows whose truth is unknown; set "
                                     "annotation.mode: human or annotation.on_flag: drop")
            return 0
        n = min(n, ledger.affordable(item_cost(cfg.annotation, relabel=True)))
        if not n:
            blocked["reannotate"] = f"label budget spent ({ledger.spent:g} of {cfg.annotation.budget:g})"
        return n


def bound(decision: Decision, report, it: int, max_iterations: int, elapsed: float, budget: float,
          next_cost: float = 0.0) -> tuple[Decision, str | None]:
    """The policy's decision within the loop's bounds, and what ended the loop (None while it goes on):
    goal_met, no_move_left, max_iterations or time_budget. The time budget counts as spent when the next
    iteration, expected to cost about `next_cost` seconds (what the last one did), would overrun it."""
    lead = f"{report.shortfall}; " if report.shortfall else ""
    if decision.stops:
        return decision, decision.evidence.get("stopped_by", "goal_met")
    if it >= max_iterations:
        return Decision("stop", "test", f"{lead}max_iterations ({it}) reached (next would have been "
                        f"{decision.action})", decision.evidence, decision.alternatives), "max_iterations"
    if elapsed + next_cost > budget:
        spent = (f"time budget {budget:.0f}s spent" if elapsed >= budget else
                 f"time budget {budget:.0f}s: {elapsed:.0f}s spent, and the next iteration (about {next_cost:.0f}s, as "
                 f"the last) would overrun it")
        return Decision("stop", "test", f"{lead}{spent} (next would have been {decision.action})", decision.evidence,
                        decision.alternatives), "time_budget"
    return decision, None


def row_price(cfg: Config) -> float:
    """What one more labelled row costs: its label, plus the row itself when collecting from scratch."""
    from synthloop.labelling import item_cost

    row = cfg.data.cost_per_row if cfg.data.strategy == "from_scratch" else 0.0
    return row + item_cost(cfg.annotation)


def labels_bought(ledger) -> int:
    return int(sum(e.n_labels for e in ledger.entries if e.kind != "synthetic"))
