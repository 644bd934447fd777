"""Errors a user can act on.

Every error raised for bad input or bad configuration derives from :class:`SynthloopError`.
The CLI prints its message as one line and exits with status 2; nothing else about it
(no traceback) reaches the terminal.
"""

from __future__ import annotations


class SynthloopError(Exception):
    """An error caused by the user's input, config or environment, with a message that says what to fix."""

    exit_code = 2


class ConfigError(SynthloopError):
    """A configuration value is missing, unknown or out of range."""


class DataError(SynthloopError):
    """A data source cannot be used: the message names the file, column and problem."""


class BudgetError(SynthloopError):
    """A spend would exceed the configured budget."""


class SealedTestError(SynthloopError):
    """The sealed test split was opened a second time."""
