"""Transitional: the old top-level names `tasks`, `flows` and `deployments` as aliases of their installed names.

The folders install as `synthloop.tasks`, `synthloop.flows` and `synthloop.deployments` (see pyproject.toml), so
the wheel claims no generic top-level module. Modules still written `from tasks.x import ...` keep working, and
get the *same* module objects as `synthloop.tasks.x` (two copies of a module would hold two copies of its state,
e.g. the resume scope in tasks/cache.py):

- a top-level name is aliased only as a fallback, when no real module of that name is found, so a user's own
  `tasks.py` always wins;
- a submodule (`tasks.cache`) is aliased only when its top-level name already is ours.

Remove this module (and its install in `synthloop/__init__.py`) once no module imports the old names.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

OLD_NAMES = {"tasks": "synthloop.tasks", "flows": "synthloop.flows", "deployments": "synthloop.deployments"}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, submodules: bool):
        self.submodules = submodules

    def find_spec(self, fullname, path=None, target=None):
        top, dot, _ = fullname.partition(".")
        new = OLD_NAMES.get(top)
        if new is None or bool(dot) != self.submodules:
            return None
        if self.submodules and (sys.modules.get(top) is None or sys.modules.get(top) is not sys.modules.get(new)):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        top, _, rest = spec.name.partition(".")
        return importlib.import_module(OLD_NAMES[top] + ("." + rest if rest else ""))

    def exec_module(self, module):  # the module is the already-imported new one
        pass


def install() -> None:
    """Put the two finders in place once: submodules first (before the path finder), top-level names last."""
    if any(isinstance(f, _Alias) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Alias(submodules=True))
    sys.meta_path.append(_Alias(submodules=False))


def adopt(name: str) -> None:
    """Called by a folder's `__init__.py` when it was imported under its old top-level name (from the repository
    folder): that name becomes the installed package."""
    if name in OLD_NAMES:
        sys.modules[name] = importlib.import_module(OLD_NAMES[name])
