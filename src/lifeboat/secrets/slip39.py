"""SLIP-39 share sets: split, inspect and recover, with errors that name the failing share.

The share encoding, the RS1024 checksum, the Feistel passphrase cipher and the interpolation all
come from Trezor's ``shamir-mnemonic`` (the SLIP-39 reference). This module adds what a holder
needs around it:

* :class:`Scheme` — groups and thresholds, parsed from ``2of3``-style text or explicit groups;
* :func:`split` — a master secret to a :class:`ShareSet` of mnemonics;
* :func:`decode` / :class:`ShareInfo` — a share's public metadata, never its value;
* :class:`Recovery` — incremental recovery, one share at a time, that says which share failed
  and why, and how many more shares each group needs.

A share is named in messages by its position ("share 3") or a caller-given label (a file name),
never by its words.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import shamir_mnemonic
from shamir_mnemonic.shamir import EncryptedMasterSecret, ShareGroup, recover_ems, split_ems
from shamir_mnemonic.share import Share
from shamir_mnemonic.wordlist import WORD_INDEX_MAP

from lifeboat.errors import MnemonicError, ShareError, UsageError

MIN_SECRET_BYTES = 16
MAX_SECRET_BYTES = 64  # 512 bits: a BIP-39 seed; 59-word shares
MAX_GROUPS = 16
MAX_MEMBERS = 16
MAX_ITERATION_EXPONENT = 15
DEFAULT_ITERATION_EXPONENT = 1
# 59 words carry a 512-bit secret; nothing longer is a share a user would type.
MAX_SHARE_WORDS = 100
MAX_SHARE_CHARS = 1200


@dataclass(frozen=True)
class GroupSpec:
    """One group: ``threshold`` of its ``count`` member shares recover the group's part."""

    threshold: int
    count: int

    def __str__(self) -> str:
        return f"{self.threshold}of{self.count}"


@dataclass(frozen=True)
class Scheme:
    """How a master secret is shared: ``group_threshold`` of the ``groups`` are needed."""

    group_threshold: int
    groups: tuple[GroupSpec, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.groups) <= MAX_GROUPS:
            raise UsageError(f"a share set has 1 to {MAX_GROUPS} groups, not {len(self.groups)}")
        if not 1 <= self.group_threshold <= len(self.groups):
            raise UsageError(
                f"the group threshold must be between 1 and the number of groups "
                f"({len(self.groups)}), not {self.group_threshold}"
            )
        for number, group in enumerate(self.groups, start=1):
            if not 1 <= group.count <= MAX_MEMBERS:
                raise UsageError(f"group {number} must have 1 to {MAX_MEMBERS} shares, not {group.count}")
            if not 1 <= group.threshold <= group.count:
                raise UsageError(
                    f"group {number}: threshold {group.threshold} must be between 1 and its "
                    f"{group.count} shares"
                )
            if group.threshold == 1 and group.count > 1:
                raise UsageError(
                    f"group {number}: 1-of-{group.count} is not allowed by SLIP-39; use a 1of1 group "
                    "and make copies of its single share instead"
                )

    @classmethod
    def parse(cls, text: str) -> Scheme:
        """``2of3`` (one group), ``single`` (1of1), or ``2:2of3,3of5`` (group threshold, groups)."""
        text = text.strip().lower()
        if text == "single":
            return cls(1, (GroupSpec(1, 1),))
        threshold_text, sep, groups_text = text.partition(":")
        if not sep:
            if "," in text:
                # Several groups and no group threshold: guessing 1 would let any one group recover.
                raise UsageError(
                    f"scheme {text!r} has several groups but no group threshold; write it as e.g. "
                    "'2:2of3,3of5' — the number before ':' is how many groups are needed"
                )
            threshold_text, groups_text = "1", text
        try:
            groups = tuple(_parse_group(part) for part in groups_text.split(","))
            group_threshold = int(threshold_text)
        except ValueError as exc:
            raise UsageError(
                f"cannot read scheme {text!r}: write T-of-N as '2of3', several groups as "
                "'2:2of3,3of5' (2 of the groups needed), or 'single'"
            ) from exc
        return cls(group_threshold, groups)

    def __str__(self) -> str:
        if len(self.groups) == 1:
            return str(self.groups[0])
        return f"{self.group_threshold}:" + ",".join(str(g) for g in self.groups)

    @property
    def share_count(self) -> int:
        return sum(g.count for g in self.groups)


def _parse_group(text: str) -> GroupSpec:
    threshold, sep, count = text.strip().partition("of")
    if not sep:
        raise ValueError(text)
    return GroupSpec(int(threshold), int(count))


@dataclass(frozen=True)
class ShareInfo:
    """A share's public metadata: everything in it except the share value."""

    identifier: int
    extendable: bool
    iteration_exponent: int
    group_index: int  # 1-based
    group_threshold: int
    group_count: int
    member_index: int  # 1-based
    member_threshold: int
    secret_bytes: int
    word_count: int

    @classmethod
    def of(cls, share: Share) -> ShareInfo:
        return cls(
            identifier=share.identifier,
            extendable=share.extendable,
            iteration_exponent=share.iteration_exponent,
            group_index=share.group_index + 1,
            group_threshold=share.group_threshold,
            group_count=share.group_count,
            member_index=share.index + 1,
            member_threshold=share.member_threshold,
            secret_bytes=len(share.value),
            word_count=len(share.words()),
        )

    def position(self) -> str:
        return f"group {self.group_index} of {self.group_count}, member {self.member_index}"


@dataclass(frozen=True)
class ShareSet:
    """The mnemonics of one split, by group (outer list) and member (inner list)."""

    identifier: int
    extendable: bool
    iteration_exponent: int
    scheme: Scheme
    groups: tuple[tuple[str, ...], ...]

    def shares(self) -> list[str]:
        return [m for group in self.groups for m in group]


def normalize(mnemonic: str) -> str:
    """Lower-case the words and join them with single spaces."""
    return " ".join(mnemonic.lower().split())


def decode(mnemonic: str, label: str = "share") -> Share:
    """Decode one share, raising :class:`MnemonicError` with the exact reason (never the words)."""
    if len(mnemonic) > MAX_SHARE_CHARS:
        raise MnemonicError(f"{label}: {len(mnemonic)} characters is far longer than any SLIP-39 share")
    words = normalize(mnemonic).split()
    if not words:
        raise MnemonicError(f"{label}: empty")
    if len(words) > MAX_SHARE_WORDS:
        raise MnemonicError(f"{label}: {len(words)} words is longer than any SLIP-39 share")
    for position, word in enumerate(words, start=1):
        if word not in WORD_INDEX_MAP:
            raise MnemonicError(f"{label}: word {position} is not in the SLIP-39 word list")
    try:
        return Share.from_mnemonic(" ".join(words))
    except shamir_mnemonic.MnemonicError as exc:
        reason = str(exc)
        if "checksum" in reason:
            text = "invalid checksum: a word is wrong, missing or out of order"
        elif "padding" in reason:
            text = "invalid padding: the share value is malformed"
        elif "length" in reason:
            text = (
                f"invalid length ({len(words)} words): a share has 20 words for a 128-bit secret, "
                "33 for 256 bits, 59 for 512 bits; a word is missing or extra"
            )
        elif "Group threshold" in reason:
            text = "invalid metadata: its group threshold is greater than its group count"
        else:
            text = "not a valid SLIP-39 share"
        raise MnemonicError(f"{label}: {text}") from None


def inspect(mnemonic: str, label: str = "share") -> ShareInfo:
    """The public metadata of a share, after checking its checksum."""
    return ShareInfo.of(decode(mnemonic, label))


def split(
    master_secret: bytes,
    scheme: Scheme,
    *,
    passphrase: str = "",
    extendable: bool = True,
    iteration_exponent: int = DEFAULT_ITERATION_EXPONENT,
) -> ShareSet:
    """Split ``master_secret`` into a fresh share set with a random identifier."""
    if not MIN_SECRET_BYTES <= len(master_secret) <= MAX_SECRET_BYTES or len(master_secret) % 2:
        raise UsageError(
            f"a master secret is an even number of bytes from {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}; "
            f"got {len(master_secret)}"
        )
    if not 0 <= iteration_exponent <= MAX_ITERATION_EXPONENT:
        raise UsageError(f"the iteration exponent is 0 to {MAX_ITERATION_EXPONENT}, not {iteration_exponent}")
    identifier = int.from_bytes(_random.token_bytes(2), "big") & 0x7FFF
    ems = EncryptedMasterSecret.from_master_secret(
        master_secret, passphrase_bytes(passphrase), identifier, extendable, iteration_exponent
    )
    groups = split_ems(scheme.group_threshold, [(g.threshold, g.count) for g in scheme.groups], ems)
    return ShareSet(
        identifier=identifier,
        extendable=extendable,
        iteration_exponent=iteration_exponent,
        scheme=scheme,
        groups=tuple(tuple(share.mnemonic() for share in group) for group in groups),
    )


def passphrase_bytes(passphrase: str) -> bytes:
    """SLIP-39 passphrases are printable ASCII (code points 32 to 126)."""
    if not all(32 <= ord(c) <= 126 for c in passphrase):
        raise UsageError("a SLIP-39 passphrase may only contain printable ASCII characters")
    return passphrase.encode("ascii")


@dataclass(frozen=True)
class GroupStatus:
    """Progress of one group during recovery."""

    group_index: int  # 1-based
    entered: int
    threshold: int | None  # None until a share of the group is entered

    @property
    def complete(self) -> bool:
        return self.threshold is not None and self.entered >= self.threshold

    @property
    def missing(self) -> int | None:
        return None if self.threshold is None else max(0, self.threshold - self.entered)


@dataclass
class Recovery:
    """Incremental SLIP-39 recovery: add shares one at a time, then recover."""

    _groups: dict[int, ShareGroup] = field(default_factory=dict)
    _labels: dict[tuple[int, int], str] = field(default_factory=dict)
    _first: Share | None = None
    _first_label: str = ""

    def add(self, mnemonic: str, label: str = "share") -> ShareInfo:
        """Check ``mnemonic`` against the shares so far and add it; say exactly what is wrong."""
        share = decode(mnemonic, label)
        first = self._first
        if first is not None:
            self._check_matches(share, label, first)
        group = self._groups.get(share.group_index)
        if group is not None:
            key = (share.group_index, share.index)
            if key in self._labels:
                earlier = self._labels[key]
                if share in group:
                    raise ShareError(f"{label}: duplicate of {earlier} (already entered)")
                raise ShareError(
                    f"{label}: duplicate member {share.index + 1} of group {share.group_index + 1}, "
                    f"but different from {earlier}; one of them is corrupt or from another set"
                )
            threshold = group.member_threshold()
            if share.member_threshold != threshold:
                raise ShareError(
                    f"{label}: threshold mismatch: says group {share.group_index + 1} needs "
                    f"{share.member_threshold} shares, earlier shares of that group say {threshold}"
                )
        else:
            group = ShareGroup()
            self._groups[share.group_index] = group
        group.add(share)
        self._labels[(share.group_index, share.index)] = label
        if first is None:
            self._first, self._first_label = share, label
        return ShareInfo.of(share)

    def _check_matches(self, share: Share, label: str, first: Share) -> None:
        if share.identifier != first.identifier:
            raise ShareError(
                f"{label}: belongs to a different share set (identifier {share.identifier}, "
                f"{self._first_label} has {first.identifier})"
            )
        for name, mine, theirs in (
            ("extendable flag", share.extendable, first.extendable),
            ("iteration exponent", share.iteration_exponent, first.iteration_exponent),
            ("group threshold", share.group_threshold, first.group_threshold),
            ("group count", share.group_count, first.group_count),
            ("secret length", len(share.value), len(first.value)),
        ):
            if mine != theirs:
                raise ShareError(
                    f"{label}: {name} {mine} does not match {theirs} of {self._first_label}; "
                    "it is from a different share set or corrupt"
                )

    @property
    def started(self) -> bool:
        return self._first is not None

    @property
    def group_threshold(self) -> int | None:
        return None if self._first is None else self._first.group_threshold

    @property
    def group_count(self) -> int | None:
        return None if self._first is None else self._first.group_count

    @property
    def identifier(self) -> int | None:
        return None if self._first is None else self._first.identifier

    @property
    def extendable(self) -> bool | None:
        return None if self._first is None else self._first.extendable

    def status(self) -> list[GroupStatus]:
        """Per-group progress, for every group of the set (empty before the first share)."""
        if self._first is None:
            return []
        result = []
        for index in range(self._first.group_count):
            group = self._groups.get(index)
            if group is None:
                result.append(GroupStatus(index + 1, 0, None))
            else:
                result.append(GroupStatus(index + 1, len(group), group.member_threshold()))
        return result

    def groups_complete(self) -> int:
        return sum(1 for g in self.status() if g.complete)

    def is_complete(self) -> bool:
        threshold = self.group_threshold
        return threshold is not None and self.groups_complete() >= threshold

    def missing(self) -> str:
        """What is still needed, in words: ``1 more group: group 2 needs 2 more shares``."""
        threshold = self.group_threshold
        if threshold is None:
            return "no share entered yet"
        if self.is_complete():
            return "nothing: enough shares to recover"
        need_groups = threshold - self.groups_complete()
        parts = []
        for g in self.status():
            if g.complete:
                continue
            if g.threshold is None:
                parts.append(f"group {g.group_index} has no share yet")
            else:
                parts.append(f"group {g.group_index} needs {g.missing} more")
        noun = "group" if need_groups == 1 else "groups"
        return f"{need_groups} more {noun} complete ({'; '.join(parts)})"

    def encrypted_master_secret(self) -> EncryptedMasterSecret:
        """Combine the entered shares to the passphrase-encrypted master secret."""
        if not self.is_complete():
            raise ShareError(f"not enough shares: need {self.missing()}")
        threshold = self.group_threshold
        assert threshold is not None
        chosen: dict[int, ShareGroup] = {}
        for index, group in sorted(self._groups.items()):
            if group.is_complete() and len(chosen) < threshold:
                chosen[index] = group.get_minimal_group()
        try:
            return recover_ems(chosen)
        except shamir_mnemonic.MnemonicError as exc:
            if "digest" in str(exc):
                raise ShareError(
                    "the shares are consistent but do not combine (digest mismatch): one of them "
                    "is corrupt or forged"
                ) from None
            raise ShareError(f"cannot combine the shares: {exc}") from None

    def recover(self, passphrase: str = "") -> bytes:
        """The master secret. A wrong passphrase gives a different secret, not an error."""
        return bytes(self.encrypted_master_secret().decrypt(passphrase_bytes(passphrase)))


def combine(mnemonics: Iterable[str], passphrase: str = "", labels: Sequence[str] | None = None) -> bytes:
    """Recover the master secret from ``mnemonics`` (more than a threshold is fine)."""
    recovery = Recovery()
    for number, mnemonic in enumerate(mnemonics, start=1):
        label = labels[number - 1] if labels is not None else f"share {number}"
        recovery.add(mnemonic, label)
    if not recovery.started:
        raise ShareError("no shares given")
    return recovery.recover(passphrase)
