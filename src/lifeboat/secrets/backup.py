"""Key-backup workflows over the home: create a share set, drill it, reshare it, confirm a reshare.

This is the imperative shell around the pure pieces (:mod:`slip39`, :mod:`envelope`,
:mod:`fingerprint`): it reads share files and envelopes, writes share files 0600 and
atomically, and records public facts in the :class:`~lifeboat.home.Home`. The CLI is a thin
layer over these functions; library users call them directly.
"""

from __future__ import annotations

import contextlib
import re
import secrets as _random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyrage

from lifeboat.errors import (
    FingerprintMismatch,
    HomeError,
    InputError,
    LifeboatError,
    ShareError,
    StorageError,
    UsageError,
)
from lifeboat.fs import SECRET_MODE, read_bounded, write_atomic
from lifeboat.home import (
    ACTIVE,
    PENDING,
    RETIRED,
    Drill,
    Guardian,
    Holder,
    Home,
    HomeState,
    ShareSetRecord,
    new_set_id,
    now,
)
from lifeboat.secrets import bip39, envelope, slip39
from lifeboat.secrets.fingerprint import fingerprint, format_fingerprint, matches, parse_fingerprint

# A share file holds a few shares and comments; a megabyte is already hostile.
MAX_SHARE_FILE_BYTES = 1024 * 1024

# What a master secret is, so recovery can give it back in the form it was given.
KIND_RANDOM = "random"
KIND_HEX = "hex"
KIND_BIP39_SEED = "bip39-seed"
KIND_BIP39_ENTROPY = "bip39-entropy"
KIND_SEALED_FILE_KEY = "sealed-file-key"
KIND_REPOSITORY_KEY = "repository-key"


@dataclass(frozen=True)
class MasterSecret:
    """A secret to share, and what it is."""

    value: bytes
    kind: str
    bip39_language: str | None = None

    def __repr__(self) -> str:  # never show the value, even in a traceback
        return f"MasterSecret(kind={self.kind!r}, {len(self.value)} bytes)"


def random_secret(bits: int = 256) -> MasterSecret:
    if bits not in (128, 256):
        raise UsageError(f"a generated master secret is 128 or 256 bits, not {bits}")
    return MasterSecret(_random.token_bytes(bits // 8), KIND_RANDOM)


def hex_secret(text: str) -> MasterSecret:
    try:
        value = bytes.fromhex(text.strip())
    except ValueError:
        raise InputError("the master secret is not valid hex") from None
    if len(value) > slip39.MAX_SECRET_BYTES:
        raise InputError(
            f"the master secret is {len(value)} bytes; Lifeboat splits secrets of up to 64 bytes"
        )
    if len(value) < slip39.MIN_SECRET_BYTES or len(value) % 2:
        raise InputError(
            f"a SLIP-39 master secret is an even number of bytes, at least 16; this one has {len(value)}"
        )
    return MasterSecret(value, KIND_HEX)


def bip39_secret(
    phrase: str, mode: str, *, bip39_passphrase: str = "", language: str | None = None
) -> MasterSecret:
    """The master secret for a BIP-39 phrase: its 64-byte seed, or its entropy.

    ``seed``: shares carry the BIP-39 seed (59 words each); any SLIP-39 wallet that accepts a
    512-bit master secret restores the same BIP-32 wallet, but the BIP-39 words cannot be
    recovered from them. ``entropy``: shares carry the phrase's entropy (20 or 33 words);
    Lifeboat recovers the original BIP-39 words, but a SLIP-39 wallet would derive a
    different wallet from them.
    """
    parsed = bip39.parse(phrase, language)
    if mode == "seed":
        return MasterSecret(bip39.to_seed(parsed, bip39_passphrase), KIND_BIP39_SEED, parsed.language)
    if mode == "entropy":
        if bip39_passphrase:
            raise UsageError(
                "a BIP-39 passphrase is not part of the entropy; in entropy mode keep it separately "
                "(or split the seed instead)"
            )
        entropy = bip39.entropy_of(parsed)
        if len(entropy) % 2:
            raise UsageError("SLIP-39 needs an even-length secret; split the seed of a 15- or 21-word phrase")
        return MasterSecret(entropy, KIND_BIP39_ENTROPY, parsed.language)
    raise UsageError("choose how to split a BIP-39 phrase: --split seed or --split entropy")


# -- share sources: share files, stdin, envelopes -------------------------------------------


@dataclass(frozen=True)
class LoadedShare:
    """A share as read, with the fingerprint its file or envelope states for its set, if any."""

    label: str
    mnemonic: str
    envelope: envelope.EnvelopeContent | None = None
    fingerprint: str | None = None

    def __repr__(self) -> str:
        return f"LoadedShare({self.label!r})"


# The first line of a share file Lifeboat writes; it states the set's fingerprint.
SHARE_FILE_TITLE = "# Lifeboat SLIP-39 share. Set {set_id}, fingerprint {fingerprint}"
_TITLE = re.compile(
    r"#\s*Lifeboat SLIP-39 share\. Set \S+, fingerprint (?P<fingerprint>[0-9a-f]{4}(?:-[0-9a-f]{4}){7})"
)


def parse_share_text(text: str, label: str) -> list[LoadedShare]:
    """Shares in a text: one mnemonic per line, ``#`` comments and blank lines ignored.

    A share after a Lifeboat title line (:data:`SHARE_FILE_TITLE`) carries the fingerprint it states.
    """
    found: list[tuple[int, str, str | None]] = []
    stated: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            title = _TITLE.fullmatch(line)
            stated = title["fingerprint"] if title else stated
        elif line:
            found.append((number, line, stated))
    if len(found) == 1:
        return [LoadedShare(label, found[0][1], fingerprint=found[0][2])]
    return [LoadedShare(f"{label}:{n}", line, fingerprint=fp) for n, line, fp in found]


def stated_fingerprint(shares: Sequence[LoadedShare]) -> str | None:
    """The one fingerprint the shares' files and envelopes state, or None if none states one."""
    stated: dict[str, str] = {}
    for loaded in shares:
        if loaded.fingerprint is not None:
            stated.setdefault(loaded.fingerprint, loaded.label)
    if len(stated) > 1:
        (a, a_label), (b, b_label) = list(stated.items())[:2]
        raise ShareError(
            f"{a_label} states fingerprint {a} but {b_label} states {b}: the shares are not all of one "
            "Lifeboat set"
        )
    return next(iter(stated), None)


def load_shares(paths: Sequence[str], identities: Sequence[pyrage.x25519.Identity] = ()) -> list[LoadedShare]:
    """Read shares from files (``-`` is standard input); age envelopes are opened."""
    loaded: list[LoadedShare] = []
    for name in paths:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_SHARE_FILE_BYTES + 1)
            if len(data) > MAX_SHARE_FILE_BYTES:
                raise InputError("standard input is larger than any set of shares")
            label = "stdin"
        else:
            data = read_bounded(Path(name), MAX_SHARE_FILE_BYTES, what="share file")
            label = name
        if envelope.is_envelope(data) or envelope.is_plaintext(data):
            content = (
                envelope.open_envelope(data, list(identities), label)
                if envelope.is_envelope(data)
                else envelope.EnvelopeContent.from_plaintext(data, label)  # saved from 'age -d'
            )
            loaded.append(LoadedShare(label, content.share, content, content.fingerprint))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{label}: neither a share file (text) nor an age envelope") from None
        found = parse_share_text(text, label)
        if not found:
            raise InputError(f"{label}: holds no share")
        loaded.extend(found)
    return loaded


# -- guardians ------------------------------------------------------------------------------


def add_guardian(home: Home, name: str, recipient: str, contact: str | None = None) -> Guardian:
    """Register a guardian in ``home`` by name and age X25519 recipient (``age1...``).

    Shares are sealed to guardians by name (:func:`create_share_set`); a name is 1-64 letters,
    digits, ``-``, ``_`` or ``.``, and is refused when the home already knows it.
    """
    if not name or not all(c.isalnum() or c in "-_." for c in name) or len(name) > 64:
        raise InputError("a guardian name is 1-64 letters, digits, '-', '_' or '.'")
    envelope.parse_recipient(recipient)
    guardian = Guardian(name, recipient.strip(), now(), contact)
    with home.update() as state:
        if name in state.guardians:
            raise HomeError(f"a guardian named {name!r} already exists")
        state.guardians[name] = guardian
    return guardian


# -- creating a share set -------------------------------------------------------------------


@dataclass
class CreatedSet:
    record: ShareSetRecord
    share_set: slip39.ShareSet
    files: list[Path] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"CreatedSet({self.record.id!r}, {len(self.files)} files)"


def share_file_text(record: ShareSetRecord, info: slip39.ShareInfo, mnemonic: str) -> str:
    group_threshold, group_count = record.group_threshold, len(record.groups)
    member_threshold, member_count = record.groups[info.group_index - 1]
    return (
        SHARE_FILE_TITLE.format(set_id=record.id, fingerprint=record.fingerprint) + "\n"
        f"# Group {info.group_index} of {group_count} ({group_threshold} groups needed); "
        f"share {info.member_index} of {member_count} ({member_threshold} needed from this group)\n"
        f"{mnemonic}\n"
    )


def _share_path(out_dir: Path, record: ShareSetRecord, info: slip39.ShareInfo, guardian: str | None) -> Path:
    stem = f"{record.id}-g{info.group_index}-m{info.member_index}"
    return out_dir / (f"{stem}-{guardian}.age" if guardian else f"{stem}.txt")


def create_share_set(
    home: Home,
    secret: MasterSecret,
    scheme: slip39.Scheme,
    *,
    passphrase: str = "",
    extendable: bool = True,
    iteration_exponent: int = slip39.DEFAULT_ITERATION_EXPONENT,
    label: str | None = None,
    out_dir: Path | None = None,
    guardians: Sequence[str] = (),
    plaintext_rest: bool = False,
    status: str = ACTIVE,
    replaces: str | None = None,
    sealed_file: str | None = None,
) -> CreatedSet:
    """Split ``secret``, write share files / guardian envelopes, and record the set.

    Shares are assigned to ``guardians`` in order (group 1 member 1, group 1 member 2, ...);
    each is sealed to its guardian as an age envelope in ``out_dir``. Without guardians every
    share goes to ``out_dir`` as a 0600 text file; with fewer guardians than shares the rest go
    there as text files only when ``plaintext_rest`` says so. Without ``out_dir`` nothing is
    written (the caller shows the shares). Either everything is written and recorded, or nothing is.
    """
    recipients = check_destinations(home.load(), scheme, guardians, out_dir, plaintext_rest=plaintext_rest)

    share_set = slip39.split(
        secret.value,
        scheme,
        passphrase=passphrase,
        extendable=extendable,
        iteration_exponent=iteration_exponent,
    )
    record = ShareSetRecord(
        id=new_set_id(),
        created=now(),
        label=label,
        identifier=share_set.identifier,
        extendable=extendable,
        iteration_exponent=iteration_exponent,
        scheme=str(scheme),
        group_threshold=scheme.group_threshold,
        groups=[(g.threshold, g.count) for g in scheme.groups],
        secret_kind=secret.kind,
        secret_bytes=len(secret.value),
        fingerprint=format_fingerprint(fingerprint(secret.value)),
        passphrase=bool(passphrase),
        status=status,
        bip39_language=secret.bip39_language,
        replaces=replaces,
        sealed_file=sealed_file,
    )
    created = CreatedSet(record, share_set)
    planned: list[tuple[Path, bytes]] = []
    for number, mnemonic in enumerate(share_set.shares()):
        info = slip39.inspect(mnemonic)
        guardian = guardians[number] if number < len(guardians) else None
        holder = Holder(info.group_index, info.member_index, guardian)
        if out_dir is not None:
            path = _share_path(out_dir, record, info, guardian)
            if guardian is not None:
                content = envelope.EnvelopeContent.for_share(
                    mnemonic,
                    share_set=record.id,
                    fingerprint=record.fingerprint,
                    guardian=guardian,
                    label=label,
                )
                planned.append((path, envelope.seal(content, recipients[number])))
                holder.envelope = str(path)
            else:
                planned.append((path, share_file_text(record, info, mnemonic).encode()))
        record.holders.append(holder)
    write_all(planned, out_dir)
    created.files = [p for p, _ in planned]
    try:
        with home.update() as fresh:
            fresh.share_sets[record.id] = record
            if replaces is not None:
                fresh.share_sets[replaces].replaced_by = record.id
    except BaseException:
        remove_quietly(created.files)
        raise
    return created


def check_destinations(
    state: HomeState,
    scheme: slip39.Scheme,
    guardians: Sequence[str],
    out_dir: Path | None,
    *,
    plaintext_rest: bool = False,
) -> list[pyrage.x25519.Recipient]:
    """Check, before anything is written, where a new set's shares will go; return the recipients.

    Sealing some shares to guardians and silently writing the others in clear would defeat the
    sealing: fewer guardians than shares is refused unless ``plaintext_rest`` asks for it.
    """
    if len(guardians) > scheme.share_count:
        raise UsageError(
            f"{len(guardians)} guardians named but the scheme makes only {scheme.share_count} shares"
        )
    repeated = sorted({g for g in guardians if list(guardians).count(g) > 1})
    if repeated:
        raise UsageError(
            f"guardian {', '.join(repeated)} is named more than once; one person holding several shares "
            "weakens the threshold"
        )
    recipients = [envelope.parse_recipient(state.guardian(g).recipient) for g in guardians]
    if guardians and len(guardians) < scheme.share_count and not plaintext_rest:
        rest = scheme.share_count - len(guardians)
        raise UsageError(
            f"{len(guardians)} guardians named for {scheme.share_count} shares: the other {rest} would be "
            "written unsealed, as plaintext files; name a guardian (-g) for every share, or pass "
            "--plaintext-rest to write the rest as plaintext files"
        )
    if guardians and out_dir is None:
        raise UsageError("sealing shares to guardians needs --shares-dir DIR for the envelopes")
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise StorageError(f"{out_dir} exists and is not a directory")
        if not out_dir.exists() and not out_dir.absolute().parent.is_dir():
            raise StorageError(f"cannot create {out_dir}: its parent directory does not exist")
    return recipients


def write_all(planned: Sequence[tuple[Path, bytes]], out_dir: Path | None = None) -> None:
    """Write every file (0600, atomic) or none: on a failure the ones written are removed.

    ``out_dir`` is created (0700) if missing, and removed again if the writing fails.
    """
    for path, _ in planned:
        if path.exists():
            raise StorageError(f"{path} already exists; choose another --shares-dir")
    created_dir = False
    if out_dir is not None and not out_dir.exists():
        try:
            out_dir.mkdir(mode=0o700)
        except OSError as exc:
            raise StorageError(f"cannot create {out_dir}: {exc.strerror}") from None
        created_dir = True
    written: list[Path] = []
    try:
        for path, data in planned:
            write_atomic(path, data, mode=SECRET_MODE)
            written.append(path)
    except BaseException:
        remove_quietly(written)
        if created_dir and out_dir is not None:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise


def remove_quietly(paths: Sequence[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


# -- drills ---------------------------------------------------------------------------------


@dataclass
class ShareCheck:
    label: str
    valid: bool
    reason: str | None = None
    group_index: int | None = None
    member_index: int | None = None


@dataclass
class DrillReport:
    set_id: str | None
    ok: bool
    summary: str
    shares: list[ShareCheck]
    groups: list[slip39.GroupStatus]
    group_threshold: int | None
    fingerprint_ok: bool | None
    missing: str

    @property
    def valid_shares(self) -> int:
        return sum(1 for s in self.shares if s.valid)

    @property
    def groups_satisfied(self) -> int:
        return sum(1 for g in self.groups if g.complete)


def _resolve_set(state: HomeState, set_id: str | None, identifier: int | None) -> ShareSetRecord | None:
    if set_id is not None:
        return state.share_set(set_id)
    if identifier is None:
        return None
    candidates = [s for s in state.sets_with_identifier(identifier) if s.status != RETIRED]
    if not candidates:
        candidates = state.sets_with_identifier(identifier)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise HomeError(
            f"these shares (SLIP-39 identifier {identifier}) belong to no share set recorded in this home; "
            "check --home"
        )
    raise HomeError(f"several recorded share sets have SLIP-39 identifier {identifier}; name one with --set")


def _reference(
    state: HomeState, set_id: str | None, identifier: int | None, stated: str | None, *, required: bool
) -> tuple[ShareSetRecord | None, str | None]:
    """The recorded set of the shares, and the fingerprint to check what they recover against.

    That is the record's fingerprint; without a record (and without ``--set``), the one the
    shares ``stated``. When neither exists and a reference is ``required``, the home's reason
    (no such set, several) is raised.
    """
    try:
        target = _resolve_set(state, set_id, identifier)
    except HomeError:
        if set_id is not None or (required and stated is None):
            raise
        return None, stated
    return target, target.fingerprint if target is not None else stated


def check_shares(shares: Sequence[LoadedShare]) -> tuple[slip39.Recovery, list[ShareCheck]]:
    """Add every share it can to a recovery; report each share's validity and position."""
    recovery = slip39.Recovery()
    checks = []
    for loaded in shares:
        try:
            info = recovery.add(loaded.mnemonic, loaded.label)
        except LifeboatError as exc:
            checks.append(ShareCheck(loaded.label, False, str(exc).removeprefix(f"{loaded.label}: ")))
        else:
            checks.append(ShareCheck(loaded.label, True, None, info.group_index, info.member_index))
    return recovery, checks


def drill(
    home: Home,
    shares: Sequence[LoadedShare],
    *,
    passphrase: str = "",
    set_id: str | None = None,
    record: bool = True,
    expected_fingerprint: str | None = None,
) -> DrillReport:
    """Prove that ``shares`` still reconstruct the recorded secret, without revealing it.

    Without a record of the set in the home, the fingerprint the share files or envelopes state
    is the reference; the drill is then not recorded. An ``expected_fingerprint`` is the reference
    instead of either (a drill of a real setup names the one it expects).
    """
    recovery, checks = check_shares(shares)
    stated = stated_fingerprint([s for s, c in zip(shares, checks, strict=True) if c.valid])
    target, expected = _reference(
        home.load(), set_id, recovery.identifier, stated, required=expected_fingerprint is None
    )
    reference = "recorded" if target is not None else "stated"
    if expected_fingerprint is not None:
        expected = format_fingerprint(parse_fingerprint(expected_fingerprint))
        reference = "expected"
    if target is not None and recovery.identifier is not None and recovery.identifier != target.identifier:
        raise ShareError(
            f"the shares have SLIP-39 identifier {recovery.identifier}, "
            f"set {target.id} has {target.identifier}"
        )
    fingerprint_ok: bool | None = None
    if not recovery.started:
        summary = "no valid share"
    elif not recovery.is_complete():
        summary = f"cannot reconstruct yet: need {recovery.missing()}"
    else:
        try:
            secret = recovery.recover(passphrase)
        except ShareError as exc:
            summary = str(exc)
        else:
            if expected is None:
                raise HomeError("no share set to compare with; name one with --set")
            fingerprint_ok = matches(secret, parse_fingerprint(expected))
            del secret
            if not fingerprint_ok:
                summary = (
                    f"the shares combine, but not to the {reference} fingerprint: "
                    "wrong passphrase, or shares of another secret"
                )
            elif target is not None:
                summary = f"shares reconstruct set {target.id} (fingerprint {target.fingerprint})"
            else:
                summary = (
                    f"shares reconstruct fingerprint {expected}, as their files state "
                    "(this home has no record of the set)"
                )
    ok = bool(fingerprint_ok) and all(c.valid for c in checks)
    if fingerprint_ok and not ok:
        summary += f"; {sum(not c.valid for c in checks)} share(s) invalid"
    report = DrillReport(
        set_id=target.id if target else None,
        ok=ok,
        summary=summary,
        shares=checks,
        groups=recovery.status(),
        group_threshold=recovery.group_threshold,
        fingerprint_ok=fingerprint_ok,
        missing=recovery.missing(),
    )
    if record and target is not None:
        with home.update() as fresh:
            fresh.share_sets[target.id].drills.append(
                Drill(now(), ok, summary, report.valid_shares, report.groups_satisfied)
            )
    return report


# -- recovery, resharing --------------------------------------------------------------------


# How a recovered secret was checked (``Recovered.checked``).
CHECKED_HOME = "home"  # against the fingerprint recorded for its set in the home
CHECKED_SHARES = "share files"  # against the fingerprint its share files / envelopes state
UNCHECKED_WARNING = (
    "the passphrase cannot be checked: these shares state no fingerprint and this home has no "
    "record of their set; a wrong passphrase gives a different secret without any error"
)


@dataclass(frozen=True)
class Recovered:
    """A recovered master secret, the recorded set it belongs to, and what it was checked against."""

    secret: bytes
    record: ShareSetRecord | None
    checked: str | None  # CHECKED_HOME, CHECKED_SHARES, or None: nothing to check it against

    def __repr__(self) -> str:  # never show the value, even in a traceback
        return f"Recovered({len(self.secret)} bytes, checked={self.checked!r})"


def recover_verified(
    home: Home, shares: Sequence[LoadedShare], *, passphrase: str = "", set_id: str | None = None
) -> Recovered:
    """Recover the master secret and check it, in constant time, against a fingerprint.

    The reference is the fingerprint recorded for the set in the home; without a record, the one
    the share files or envelopes state. SLIP-39 itself cannot tell a wrong passphrase: it just
    gives another secret. Foreign shares (e.g. from a Trezor) state nothing; then ``checked`` is
    None and the caller must say that the passphrase could not be checked.
    """
    recovery = slip39.Recovery()
    for loaded in shares:
        recovery.add(loaded.mnemonic, loaded.label)
    if not recovery.started:
        raise ShareError("no shares given")
    secret = recovery.recover(passphrase)
    stated = stated_fingerprint(shares)
    target, expected = _reference(home.load(), set_id, recovery.identifier, stated, required=False)
    if target is not None:
        checked, against = CHECKED_HOME, f"the fingerprint recorded for set {target.id}"
    else:
        checked, against = CHECKED_SHARES, "the fingerprint their share files state"
    if expected is None:
        return Recovered(secret, None, None)
    if not matches(secret, parse_fingerprint(expected)):
        given = "" if passphrase else " (none was given: -p asks for it)"
        raise FingerprintMismatch(
            f"the shares combine, but not to {against} ({expected}): the passphrase is wrong{given} "
            "(SLIP-39 cannot tell), or a share is of another secret"
        )
    return Recovered(secret, target, checked)


def reshare(
    home: Home,
    shares: Sequence[LoadedShare],
    scheme: slip39.Scheme,
    *,
    passphrase: str = "",
    set_id: str | None = None,
    extendable: bool = True,
    label: str | None = None,
    out_dir: Path | None = None,
    guardians: Sequence[str] = (),
    plaintext_rest: bool = False,
) -> CreatedSet:
    """A new, *pending* share set for the same master secret (same passphrase, same fingerprint)."""
    recovered = recover_verified(home, shares, passphrase=passphrase, set_id=set_id)
    old = recovered.record
    if old is None:
        raise HomeError(
            "these shares belong to no share set recorded in this home; resharing needs its record"
        )
    if old.status != ACTIVE:
        raise UsageError(f"set {old.id} is {old.status}; only an active set can be reshared")
    if old.replaced_by is not None and home.load().share_sets[old.replaced_by].status == PENDING:
        raise UsageError(
            f"set {old.id} already has a pending reshare {old.replaced_by}; confirm it with "
            "'lifeboat shares confirm' first"
        )
    return create_share_set(
        home,
        MasterSecret(recovered.secret, old.secret_kind, old.bip39_language),
        scheme,
        passphrase=passphrase,
        extendable=extendable,
        iteration_exponent=old.iteration_exponent,
        label=label if label is not None else old.label,
        out_dir=out_dir,
        guardians=guardians,
        plaintext_rest=plaintext_rest,
        status=PENDING,
        replaces=old.id,
        sealed_file=old.sealed_file,
    )


def confirm(home: Home, set_id: str, shares: Sequence[LoadedShare], *, passphrase: str = "") -> DrillReport:
    """Verify a pending set from a threshold of its own shares; then retire the set it replaces."""
    state = home.load()
    pending = state.share_set(set_id)
    if pending.status != PENDING:
        raise UsageError(f"set {pending.id} is {pending.status}, not pending; nothing to confirm")
    report = drill(home, shares, passphrase=passphrase, set_id=pending.id)
    if not report.ok:
        return report
    with home.update() as fresh:
        fresh.share_sets[pending.id].status = ACTIVE
        if pending.replaces is not None:
            fresh.share_sets[pending.replaces].status = RETIRED
    report.summary += f"; set {pending.id} is now active" + (
        f" and {pending.replaces} retired" if pending.replaces else ""
    )
    return report


def cancel(home: Home, set_id: str) -> ShareSetRecord:
    """Abandon a pending reshare (e.g. its new shares were lost before confirmation).

    The pending set is retired and the set it would have replaced stays active and can be
    reshared again. Its shares, wherever they are, should be destroyed.
    """
    with home.update() as state:
        pending = state.share_set(set_id)
        if pending.status != PENDING:
            raise UsageError(
                f"set {pending.id} is {pending.status}, not pending; only a pending reshare can be cancelled"
            )
        pending.status = RETIRED
        if pending.replaces is not None and pending.replaces in state.share_sets:
            state.share_sets[pending.replaces].replaced_by = None
        return pending
