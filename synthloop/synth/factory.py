"""Generators by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synthloop.synth.cart import CartSynthesizer
from synthloop.synth.copula import GaussianCopula
from synthloop.synth.smote import SmoteSampler

GENERATORS = ("copula", "smote", "cart")


def make_generator(
    name: str, kinds: Mapping[Any, str], random_state: Any = None
) -> GaussianCopula | SmoteSampler | CartSynthesizer:
    """Build an unfitted generator by name.

    Args:
        name: "copula", "smote" or "cart" ("auto" is resolved by :func:`synthloop.synth.select_generator` first).
        kinds: Feature column name -> kind.
        random_state: Seed.

    Returns:
        The generator, with its default settings.

    Raises:
        ValueError: If the name is not a known generator.
    """
    if name == "copula":
        return GaussianCopula(kinds, random_state=random_state)
    if name == "smote":
        return SmoteSampler(kinds, random_state=random_state)
    if name == "cart":
        return CartSynthesizer(kinds, random_state=random_state)
    raise ValueError(f"Unknown generator {name!r}; known generators are {', '.join(GENERATORS)}.")
