"""Errors of the on-chain pillar."""

from __future__ import annotations

from lifeboat.errors import InputError, LifeboatError


class ChainError(LifeboatError):
    """A chain refused or failed a call: a revert (its reason is in the message), no connection."""


class OrderError(InputError):
    """An order, claim or proof file that cannot be used as written."""
