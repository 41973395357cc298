"""Errors of the on-chain pillar."""

from __future__ import annotations

from lifeboat.errors import InputError, LifeboatError


class ChainError(LifeboatError):
    """A chain refused or failed a call: a revert (its reason is in the message), no connection."""


class OrderError(InputError):
    """An order, claim or proof file that cannot be used as written."""


class ModuleRefusal(ChainError):
    """The recovery module refused a message; ``code`` is the off-chain refusal code
    (``lifeboat.recovery.refusals``), e.g. ``replayed_nonce``, so outcomes compare one to one."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnverifiableKey(ChainError):
    """A key the recovery module cannot check on-chain (only Ethereum keys can act there)."""
