"""A vault's configuration: its guardians, its recovery policies, its security and lock periods.

Plain frozen values, checked by :func:`check_config` against the rules of docs/recovery.md. The
owner signs a configuration when creating a vault and when proposing a change, so its JSON form
(:func:`config_to_json` / :func:`config_from_json`) uses exactly the field names of the EIP-712
``VaultConfig`` type in :mod:`lifeboat.recovery.messages`.

Times are whole seconds. Guardians are identified by their public key; a policy lists its
guardians by key, so two policies may share guardians or not (family 2-of-3 after 3 days, a lawyer
1-of-1 after 30 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lifeboat.recovery.keys import PublicKey
from lifeboat.recovery.refusals import InvalidConfig, MalformedKey, MalformedMessage

MAX_GUARDIANS = 64
MAX_POLICIES = 16
MAX_LABEL = 64
MAX_WEIGHT = 1_000_000
#: Periods and windows stay below 2**53 so JSON numbers carry them exactly in every language.
MAX_PERIOD = 2**53 - 1


@dataclass(frozen=True)
class Guardian:
    """A guardian: their key, a weight for weighted thresholds, a label for people."""

    key: PublicKey
    weight: int = 1
    label: str = ""


@dataclass(frozen=True)
class Policy:
    """One way to recover: who (``guardians``), how many (``threshold``, by count or by weight),
    how long to wait once approved (``recovery_period``), how long a request may wait for approval
    and then for execution (``expiry_window``), and how many of the policy's guardians can veto
    (``veto_guardians``; 0 means only the owner can)."""

    name: str
    guardians: tuple[PublicKey, ...]
    threshold: int
    by_weight: bool = False
    recovery_period: int = 3 * 86400
    expiry_window: int = 7 * 86400
    veto_guardians: int = 0


@dataclass(frozen=True)
class VaultConfig:
    """Everything the owner controls: guardians, policies, and the two periods that guard changes.

    ``security_period`` is how long an owner-proposed change waits before it takes effect;
    ``lock_period`` is how long a guardian lock freezes owner-initiated changes.
    """

    guardians: tuple[Guardian, ...]
    policies: tuple[Policy, ...]
    security_period: int = 2 * 86400
    lock_period: int = 5 * 86400

    def guardian(self, key: PublicKey) -> Guardian | None:
        return next((g for g in self.guardians if g.key == key), None)

    def policy(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)

    def weight(self, policy: Policy, keys: tuple[PublicKey, ...]) -> int:
        """The count or the weight (as the policy says) of ``keys`` among the policy's guardians."""
        members = [k for k in keys if k in policy.guardians]
        if not policy.by_weight:
            return len(members)
        return sum(g.weight for g in self.guardians if g.key in members)


def _check_text(value: str, what: str, *, allow_empty: bool) -> None:
    if not allow_empty and not value:
        raise InvalidConfig(f"{what} must not be empty")
    if len(value) > MAX_LABEL:
        raise InvalidConfig(f"{what} is longer than {MAX_LABEL} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in value):
        raise InvalidConfig(f"{what} contains a control character")


def _check_period(value: int, what: str, minimum: int) -> None:
    if not minimum <= value <= MAX_PERIOD:
        raise InvalidConfig(f"{what} must be between {minimum} and {MAX_PERIOD} seconds, not {value}")


def check_config(config: VaultConfig, owner: PublicKey) -> None:
    """Raise :class:`InvalidConfig` naming the first rule ``config`` breaks for this owner.

    Rules: 1 to 64 guardians, distinct keys, none the owner; weights 1 to 10**6; labels and policy
    names at most 64 characters with no control characters; 1 to 16 policies with distinct non-empty
    names; each policy's guardians distinct, non-empty and all guardians of the vault; threshold at
    least 1 and at most the policy's guardian count (or total weight); veto_guardians between 0 and
    the policy's guardian count; expiry_window and lock_period at least 1 second; every period at
    most 2**53 - 1.
    """
    if not 1 <= len(config.guardians) <= MAX_GUARDIANS:
        raise InvalidConfig(f"a vault has 1 to {MAX_GUARDIANS} guardians, not {len(config.guardians)}")
    keys = [g.key for g in config.guardians]
    if len(set(keys)) != len(keys):
        raise InvalidConfig("a guardian key appears twice")
    if owner in keys:
        raise InvalidConfig("the owner cannot be their own guardian")
    for guardian in config.guardians:
        if not 1 <= guardian.weight <= MAX_WEIGHT:
            raise InvalidConfig(f"guardian {guardian.key.text}: weight must be 1 to {MAX_WEIGHT}")
        _check_text(guardian.label, f"guardian {guardian.key.text}'s label", allow_empty=True)
    if not 1 <= len(config.policies) <= MAX_POLICIES:
        raise InvalidConfig(f"a vault has 1 to {MAX_POLICIES} policies, not {len(config.policies)}")
    names = [p.name for p in config.policies]
    if len(set(names)) != len(names):
        raise InvalidConfig("two policies have the same name")
    for policy in config.policies:
        _check_text(policy.name, "a policy name", allow_empty=False)
        where = f"policy {policy.name!r}"
        if not policy.guardians:
            raise InvalidConfig(f"{where} has no guardians")
        if len(set(policy.guardians)) != len(policy.guardians):
            raise InvalidConfig(f"{where} lists a guardian twice")
        for key in policy.guardians:
            if key not in keys:
                raise InvalidConfig(f"{where} names {key.text}, who is not a guardian of the vault")
        most = config.weight(policy, policy.guardians)
        if not 1 <= policy.threshold <= most:
            unit = "total weight" if policy.by_weight else "guardian count"
            raise InvalidConfig(f"{where}: threshold must be 1 to its {unit} {most}, not {policy.threshold}")
        if not 0 <= policy.veto_guardians <= len(policy.guardians):
            raise InvalidConfig(f"{where}: veto_guardians must be 0 to {len(policy.guardians)}")
        _check_period(policy.recovery_period, f"{where}: recovery_period", 0)
        _check_period(policy.expiry_window, f"{where}: expiry_window", 1)
    _check_period(config.security_period, "security_period", 0)
    _check_period(config.lock_period, "lock_period", 1)


# --- JSON, with the EIP-712 field names ------------------------------------------------------


def config_to_json(config: VaultConfig) -> dict[str, Any]:
    """The configuration as JSON values, field names as in the EIP-712 ``VaultConfig`` type."""
    return {
        "guardians": [{"key": g.key.text, "weight": g.weight, "label": g.label} for g in config.guardians],
        "policies": [
            {
                "name": p.name,
                "guardians": [k.text for k in p.guardians],
                "threshold": p.threshold,
                "byWeight": p.by_weight,
                "recoveryPeriod": p.recovery_period,
                "expiryWindow": p.expiry_window,
                "vetoGuardians": p.veto_guardians,
            }
            for p in config.policies
        ],
        "securityPeriod": config.security_period,
        "lockPeriod": config.lock_period,
    }


def _object(value: object, fields: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedMessage(f"{what} must be a JSON object")
    if set(value) != fields:
        missing, extra = sorted(fields - set(value)), sorted(set(value) - fields)
        raise MalformedMessage(f"{what}: missing fields {missing}, unknown fields {[e[:40] for e in extra]}")
    return value


def json_int(value: object, what: str, maximum: int = MAX_PERIOD) -> int:
    """A JSON integer in 0..maximum (booleans are not integers here)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise MalformedMessage(f"{what} must be an integer from 0 to {maximum}")
    return value


def json_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise MalformedMessage(f"{what} must be a string")
    if len(value) > 4 * MAX_LABEL + 16:
        raise MalformedMessage(f"{what} is too long")
    return value


def json_key(value: object, what: str) -> PublicKey:
    """A public key in canonical text; a non-canonical spelling is refused (it would change the digest)."""
    text = json_str(value, what)
    try:
        key = PublicKey.parse(text)
    except MalformedKey as error:
        raise MalformedMessage(f"{what}: {error}") from None
    if key.text != text:
        raise MalformedMessage(f"{what} must be written canonically: {key.text}")
    return key


def config_from_json(value: object) -> VaultConfig:
    """Parse :func:`config_to_json` output; :class:`MalformedMessage` on any shape or type error.

    Only the shape is checked here; :func:`check_config` checks the rules.
    """
    body = _object(value, {"guardians", "policies", "securityPeriod", "lockPeriod"}, "config")
    guardians_json, policies_json = body["guardians"], body["policies"]
    if not isinstance(guardians_json, list) or len(guardians_json) > MAX_GUARDIANS:
        raise MalformedMessage(f"config.guardians must be a list of at most {MAX_GUARDIANS}")
    if not isinstance(policies_json, list) or len(policies_json) > MAX_POLICIES:
        raise MalformedMessage(f"config.policies must be a list of at most {MAX_POLICIES}")
    guardians = []
    for item in guardians_json:
        g = _object(item, {"key", "weight", "label"}, "a guardian")
        guardians.append(
            Guardian(
                json_key(g["key"], "guardian key"),
                json_int(g["weight"], "guardian weight", MAX_WEIGHT),
                json_str(g["label"], "guardian label"),
            )
        )
    policies = []
    fields = {"name", "guardians", "threshold", "byWeight", "recoveryPeriod", "expiryWindow", "vetoGuardians"}
    for item in policies_json:
        p = _object(item, fields, "a policy")
        members = p["guardians"]
        if not isinstance(members, list) or len(members) > MAX_GUARDIANS:
            raise MalformedMessage(f"a policy's guardians must be a list of at most {MAX_GUARDIANS}")
        if not isinstance(p["byWeight"], bool):
            raise MalformedMessage("a policy's byWeight must be true or false")
        policies.append(
            Policy(
                name=json_str(p["name"], "policy name"),
                guardians=tuple(json_key(k, "policy guardian") for k in members),
                threshold=json_int(p["threshold"], "policy threshold", MAX_WEIGHT * MAX_GUARDIANS),
                by_weight=p["byWeight"],
                recovery_period=json_int(p["recoveryPeriod"], "recoveryPeriod"),
                expiry_window=json_int(p["expiryWindow"], "expiryWindow"),
                veto_guardians=json_int(p["vetoGuardians"], "vetoGuardians", MAX_GUARDIANS),
            )
        )
    return VaultConfig(
        guardians=tuple(guardians),
        policies=tuple(policies),
        security_period=json_int(body["securityPeriod"], "securityPeriod"),
        lock_period=json_int(body["lockPeriod"], "lockPeriod"),
    )
