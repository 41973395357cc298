"""Why the recovery core refuses something: one :class:`RecoveryError` subclass per reason.

Each class carries a stable ``code`` (a short snake_case word) so the service can map a refusal
to an RFC 9457 problem type and the CLI to a message, without parsing English. Messages never
contain key secrets; they may name public keys, vault and request ids.
"""

from __future__ import annotations

from typing import ClassVar

from lifeboat.errors import RecoveryError


class Refusal(RecoveryError):
    """Base of the recovery core's refusals; ``code`` names the reason for machines."""

    code: ClassVar[str] = "refused"


# --- keys and messages ------------------------------------------------------------------------


class MalformedKey(Refusal):
    """A public or private key text that does not parse, or a key that is not a valid point."""

    code = "malformed_key"


class MalformedMessage(Refusal):
    """A signed message whose fields are missing, of the wrong type, out of range or not canonical."""

    code = "malformed_message"


class UnknownVersion(Refusal):
    """A message (or a serialized vault state) of a format version this code does not know."""

    code = "unknown_version"


class BadSignature(Refusal):
    """The signature does not verify under the signer's key for this exact message."""

    code = "bad_signature"


class WrongService(Refusal):
    """The message was signed for another service instance (another EIP-712 domain)."""

    code = "wrong_service"


class WrongVault(Refusal):
    """The message names another vault than the one it was sent to."""

    code = "wrong_vault"


class Expired(Refusal):
    """The message's expiry has passed."""

    code = "expired"


class NotYetValid(Refusal):
    """The message's not-before time is still in the future."""

    code = "not_yet_valid"


class LifetimeTooLong(Refusal):
    """The message stays valid longer than the service accepts (its nonce could not be pruned)."""

    code = "lifetime_too_long"


# --- the policy -------------------------------------------------------------------------------


class ReplayedNonce(Refusal):
    """The signer already used this nonce on this vault."""

    code = "replayed_nonce"


class NotAuthorized(Refusal):
    """The signer may not take this action: not the owner, not a guardian, not in the policy."""

    code = "not_authorized"


class InvalidConfig(Refusal):
    """A vault configuration (guardians, policies, periods) that breaks a rule."""

    code = "invalid_config"


class VaultExists(Refusal):
    """A vault creation for a vault that already has a state."""

    code = "vault_exists"


class UnknownVault(Refusal):
    """An action for a vault that has no state."""

    code = "unknown_vault"


class UnknownRequest(Refusal):
    """An action naming a request the vault does not have."""

    code = "unknown_request"


class DuplicateRequest(Refusal):
    """A request id that the vault has already used."""

    code = "duplicate_request"


class UnknownPolicy(Refusal):
    """A request naming a policy the vault does not have."""

    code = "unknown_policy"


class RequestMismatch(Refusal):
    """An approval whose new owner key or policy differs from the request it names."""

    code = "request_mismatch"


class RequestClosed(Refusal):
    """The request already has its outcome (executed, cancelled or expired)."""

    code = "request_closed"


class DuplicateApproval(Refusal):
    """The guardian already approved (or vetoed) this request."""

    code = "duplicate_approval"


class TooEarly(Refusal):
    """Execution before the request is executable (threshold not met, or the period not over)."""

    code = "too_early"


class VaultLocked(Refusal):
    """An owner-initiated change while a guardian lock holds."""

    code = "vault_locked"


class NoPendingChange(Refusal):
    """Cancelling a configuration change when none is pending."""

    code = "no_pending_change"


class EscrowRefused(Refusal):
    """An escrow upload or release the request's state does not allow."""

    code = "escrow_refused"


class EscrowNotReleased(EscrowRefused):
    """The request is still open: its escrowed shares are released only after execution."""

    code = "escrow_not_released"


class EscrowDestroyed(RequestClosed):
    """The request was cancelled or expired: its escrowed shares were destroyed."""

    code = "escrow_destroyed"


class TooManyRequests(Refusal):
    """A new request while the vault already has the most open requests it allows."""

    code = "too_many_requests"


class NotLocked(Refusal):
    """An unlock when no guardian lock holds."""

    code = "not_locked"


class EscrowUnreadable(Refusal):
    """An escrowed share that does not decrypt with the given identity or holds no share."""

    code = "escrow_unreadable"
