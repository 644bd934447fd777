"""Handing memory that a stage freed back to the operating system.

glibc keeps freed blocks of its heap for reuse, so a stage's temporaries (the CSV parser's chunks, the text of
a label column, a copy per fold) keep counting in the process's resident size for the rest of the run, beside
the large arrays that later stages map anew. `release_freed_memory` returns those free pages after a stage.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to hand back this way
        return None


def release_freed_memory() -> None:
    """Collect the young unreachable objects, then return the heap's free pages to the OS (glibc's `malloc_trim`).

    A stage's temporaries are freed by reference counting, or sit in the young generations when they were in a
    cycle: a full collection walks the libraries' half a million objects too (0.5 s here) and finds nothing more.
    """
    gc.collect(1)
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
