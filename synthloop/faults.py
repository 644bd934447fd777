"""Fault injection for testing only: `SYNTHLOOP_FAULT=stage:kind[:n]` makes a stage fail on purpose.

Nothing here runs unless the variable is set; the tests in `tests/faults` use it to check that every
failure is survived or cleanly reported. Stages call `inject("<stage>")` as their first line.

Kinds:
    transient:N   raise ConnectionError on the first N calls of the stage in this process, then work
    error         raise RuntimeError every time (a permanent failure)
    interrupt     raise KeyboardInterrupt (what Ctrl-C does)
    hang          sleep (up to 10 minutes), so a test can send a signal while the stage is running
    kill          SIGKILL this process (nothing can clean up: the next start must)

Several faults may be given, separated by commas (`collect:transient:2,train:hang`). When
`SYNTHLOOP_FAULT_MARK` names a file, the stage appends its name there on entry, so a test knows
when to send a signal.
"""

from __future__ import annotations

import os
import signal
import time

_calls: dict[str, int] = {}


def _faults() -> dict[str, tuple[str, int]]:
    spec = os.environ.get("SYNTHLOOP_FAULT", "")
    out: dict[str, tuple[str, int]] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        stage, _, rest = item.partition(":")
        kind, _, n = rest.partition(":")
        out[stage] = (kind, int(n) if n.isdigit() else 1)
    return out


def inject(stage: str) -> None:
    """Apply the fault configured for `stage`, if any (a no-op unless SYNTHLOOP_FAULT is set)."""
    if not os.environ.get("SYNTHLOOP_FAULT") and not os.environ.get("SYNTHLOOP_FAULT_MARK"):
        return
    mark = os.environ.get("SYNTHLOOP_FAULT_MARK")
    if mark:
        with open(mark, "a", encoding="utf-8") as fh:
            fh.write(stage + "\n")
    fault = _faults().get(stage)
    if fault is None:
        return
    kind, n = fault
    _calls[stage] = _calls.get(stage, 0) + 1
    if kind == "transient":
        if _calls[stage] <= n:
            raise ConnectionError(f"injected transient fault in {stage} (attempt {_calls[stage]} of {n} failing)")
    elif kind == "error":
        raise RuntimeError(f"injected permanent fault in {stage}")
    elif kind == "interrupt":
        raise KeyboardInterrupt(f"injected interrupt in {stage}")
    elif kind == "hang":
        # Short sleeps: a signal the kernel hands to another thread only sets a flag the main thread reads between
        # bytecodes, and one time.sleep(600) would hold it for ten minutes (seen: a SIGINT'd run that never ended).
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(0.1)
    elif kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        raise ValueError(f"SYNTHLOOP_FAULT: unknown kind {kind!r} for stage {stage!r}")
