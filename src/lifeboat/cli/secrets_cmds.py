"""CLI commands of the ``secrets`` pillar: mnemonic, shares, guardians, seal, unseal."""

from __future__ import annotations

import hmac
import secrets
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lifeboat.cli import inputs
from lifeboat.cli.options import PlaintextRest, RevealShares
from lifeboat.cli.output import emit, info, settings, stderr, stdout
from lifeboat.errors import (
    HomeError,
    InputError,
    LifeboatError,
    SealedFileError,
    ShareError,
    StorageError,
    UsageError,
)
from lifeboat.fs import SECRET_MODE, check_writable, publish, write_atomic

if TYPE_CHECKING:
    from rich.progress import Progress

    from lifeboat.home import Home, ShareSetRecord
    from lifeboat.secrets import backup, slip39

#: ``lifeboat.secrets.bip39.DEFAULT_LANGUAGE``, written out so that building the commands does not
#: load the word lists (tests/test_cli_startup.py checks that the two agree).
BIP39_DEFAULT_LANGUAGE = "english"

mnemonic_app = typer.Typer(help="BIP-39 mnemonics: generate, check, derive the seed.", no_args_is_help=True)
shares_app = typer.Typer(
    help="SLIP-39 share sets: create, recover, inspect, seal to guardians, cards, drills, reshare.",
    no_args_is_help=True,
)
guardians_app = typer.Typer(
    help="Guardians: people who each keep one share, known by an age key.", no_args_is_help=True
)

# Reusable option types --------------------------------------------------------------------

Reveal = Annotated[bool, typer.Option("--reveal", help="Print the secret on standard output.")]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the secret to this file (0600, atomic).", metavar="FILE"),
]
Overwrite = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]
PassFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Read the passphrase from this file (else $LIFEBOAT_PASSPHRASE).",
        metavar="FILE",
    ),
]
AskPass = Annotated[bool, typer.Option("--ask-passphrase", "-p", help="Prompt for a passphrase.")]
Identity = Annotated[
    list[Path] | None,
    typer.Option(
        "--identity", "-i", help="age identity file to open envelopes (repeatable).", metavar="KEYFILE"
    ),
]
ShareFiles = Annotated[
    list[str] | None,
    typer.Argument(help="Share files or age envelopes ('-' for standard input).", metavar="SHARE..."),
]
SetOpt = Annotated[
    str | None, typer.Option("--set", help="The share set's id (default: found from the shares).")
]
SharesDir = Annotated[
    Path | None,
    typer.Option("--shares-dir", help="Write shares (0600) and guardian envelopes here.", metavar="DIR"),
]
GuardianOpt = Annotated[
    list[str] | None,
    typer.Option("--guardian", "-g", help="Seal the next share to this guardian (repeatable, in order)."),
]
SchemeArg = Annotated[
    str,
    typer.Argument(help="'2of3' (one group), '2:2of3,3of5' (2 of these groups needed) or 'single'."),
]
LabelOpt = Annotated[
    str | None, typer.Option("--label", help="A name for the set, e.g. 'Treasury admin key'.")
]


def _home() -> Home:
    from lifeboat.home import Home

    return Home(settings.home)


def _write_secret(path: Path, data: bytes, overwrite: bool) -> None:
    write_atomic(path, data, mode=SECRET_MODE, overwrite=overwrite)
    info(f"wrote {path} (mode 0600)")


def _need_destination(reveal: bool, *targets: object) -> None:
    if not reveal and not any(t is not None and t != [] for t in targets):
        raise UsageError(
            "the result is secret: pass --reveal to print it, or a file or directory to write it to"
        )


def _secret_output(reveal: bool, output: Path | None, force: bool) -> None:
    """Check where a secret goes before any work (or any prompt for a share or passphrase)."""
    _need_destination(reveal, output)
    if output is not None:
        check_writable(output, overwrite=force)


# mnemonic ---------------------------------------------------------------------------------


@mnemonic_app.command("generate")
def mnemonic_generate(
    words: Annotated[int, typer.Option("--words", "-w", help="12, 15, 18, 21 or 24.")] = 24,
    language: Annotated[
        str, typer.Option("--language", "-l", help="BIP-39 word list.")
    ] = BIP39_DEFAULT_LANGUAGE,
    reveal: Reveal = False,
    output: Output = None,
    force: Overwrite = False,
) -> None:
    """Generate a new BIP-39 phrase from the system's CSPRNG."""
    from lifeboat.secrets import bip39

    _secret_output(reveal, output, force)
    phrase = bip39.generate(words, language)
    if output is not None:
        _write_secret(output, (phrase.phrase + "\n").encode(), force)
    data: dict[str, Any] = {"words": len(phrase.words), "language": phrase.language}
    if reveal:
        data["phrase"] = phrase.phrase
    emit(data, lambda: print(phrase.phrase) if reveal else None)


@mnemonic_app.command("check")
def mnemonic_check(
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the phrase from this file ('-': stdin).")
    ] = None,
    language: Annotated[str | None, typer.Option("--language", "-l", help="Expected word list.")] = None,
) -> None:
    """Validate a BIP-39 phrase and say exactly what is wrong with it (and which lists it is valid in)."""
    from lifeboat.secrets import bip39

    phrase = bip39.parse(inputs.phrase(file, "BIP-39 phrase"), language)
    data = {
        "valid": True,
        "words": len(phrase.words),
        "language": phrase.language,
        "languages": list(phrase.languages),
    }
    emit(data, lambda: stdout.print(f"valid: {len(phrase.words)} words, {' and '.join(phrase.languages)}"))


@mnemonic_app.command("seed")
def mnemonic_seed(
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the phrase from this file ('-': stdin).")
    ] = None,
    language: Annotated[str | None, typer.Option("--language", "-l")] = None,
    passphrase_file: PassFile = None,
    ask_passphrase: AskPass = False,
    reveal: Reveal = False,
    output: Output = None,
    force: Overwrite = False,
) -> None:
    """Derive the 64-byte BIP-39 seed (and BIP-32 master key) of a phrase."""
    from lifeboat.secrets import bip39
    from lifeboat.secrets.fingerprint import fingerprint, format_fingerprint

    _secret_output(reveal, output, force)
    phrase = bip39.parse(inputs.phrase(file, "BIP-39 phrase"), language)
    seed = bip39.to_seed(phrase, inputs.passphrase(passphrase_file, ask_passphrase, confirm=True))
    if output is not None:
        _write_secret(output, (seed.hex() + "\n").encode(), force)
    data: dict[str, Any] = {"fingerprint": format_fingerprint(fingerprint(seed))}
    if reveal:
        data["seed"] = seed.hex()
        data["xprv"] = bip39.master_xprv(seed)

    def human() -> None:
        if reveal:
            print(f"seed: {seed.hex()}\nxprv: {data['xprv']}")
        stdout.print(f"fingerprint: {data['fingerprint']}")

    emit(data, human)


# shares -----------------------------------------------------------------------------------


def _secret_source(
    secret_hex_file: Path | None, from_bip39: Path | None, split: str | None, bits: int, bip39_passphrase: str
) -> backup.MasterSecret:
    from lifeboat.secrets import backup

    if secret_hex_file is not None and from_bip39 is not None:
        raise UsageError("give either --secret-hex-file or --from-bip39, not both")
    if from_bip39 is not None:
        if split is None:
            raise UsageError(
                "choose how to split a BIP-39 phrase: --split seed (59-word shares, same wallet on any SLIP-39 "
                "device) or --split entropy (20/33-word shares, recovers the original BIP-39 words)"
            )
        return backup.bip39_secret(
            inputs.phrase(from_bip39, "BIP-39 phrase"), split, bip39_passphrase=bip39_passphrase
        )
    if split is not None:
        raise UsageError("--split applies only with --from-bip39")
    if secret_hex_file is not None:
        return backup.hex_secret(inputs.phrase(secret_hex_file, "master secret (hex)"))
    return backup.random_secret(bits)


def _set_summary(record: ShareSetRecord) -> dict[str, Any]:
    data = asdict(record)
    data["drills"] = len(record.drills)
    data["last_drill"] = asdict(record.drills[-1]) if record.drills else None
    return data


def _print_created(created: backup.CreatedSet, reveal: bool) -> None:
    record = created.record
    stdout.print(
        f"share set [bold]{record.id}[/bold] ({record.status}): {record.scheme}, "
        f"SLIP-39 identifier {record.identifier}, fingerprint {record.fingerprint}",
        markup=True,
    )
    for path in created.files:
        stdout.print(f"  {path}")
    if reveal:
        for number, group in enumerate(created.share_set.groups, start=1):
            threshold, count = record.groups[number - 1]
            stdout.print(f"Group {number} of {len(record.groups)}: {threshold} of {count} shares needed")
            for mnemonic in group:
                print(mnemonic)


def _created_json(created: backup.CreatedSet, reveal: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "share_set": _set_summary(created.record),
        "files": [str(p) for p in created.files],
    }
    if reveal:
        data["shares"] = [list(g) for g in created.share_set.groups]
    return data


@shares_app.command("create")
def shares_create(
    scheme: SchemeArg = "2of3",
    secret_hex_file: Annotated[
        Path | None, typer.Option(help="Split this master secret (hex text; '-': stdin).", metavar="FILE")
    ] = None,
    from_bip39: Annotated[
        Path | None, typer.Option(help="Split this BIP-39 phrase (file; '-': stdin).", metavar="FILE")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="With --from-bip39: 'seed' (Trezor-compatible wallet) or 'entropy'.")
    ] = None,
    bip39_passphrase_file: Annotated[
        Path | None, typer.Option(help="With --split seed: the BIP-39 passphrase.", metavar="FILE")
    ] = None,
    bits: Annotated[int, typer.Option(help="Size of a generated master secret: 128 or 256.")] = 256,
    passphrase_file: PassFile = None,
    ask_passphrase: AskPass = False,
    extendable: Annotated[
        bool, typer.Option(help="SLIP-39 extendable flag (resharing stays compatible).")
    ] = True,
    iteration_exponent: Annotated[int, typer.Option(help="SLIP-39 PBKDF2 iteration exponent (0-15).")] = 1,
    label: LabelOpt = None,
    shares_dir: SharesDir = None,
    guardian: GuardianOpt = None,
    plaintext_rest: PlaintextRest = False,
    reveal: RevealShares = False,
) -> None:
    """Split a master secret (generated, hex, or a BIP-39 phrase) into SLIP-39 shares."""
    from lifeboat.secrets import backup, slip39

    _need_destination(reveal, shares_dir)
    parsed = slip39.Scheme.parse(scheme)
    backup.check_destinations(
        _home().load(), parsed, guardian or [], shares_dir, plaintext_rest=plaintext_rest
    )
    bip39_pass = ""
    if bip39_passphrase_file is not None:
        bip39_pass = inputs.passphrase(bip39_passphrase_file, False)
    secret = _secret_source(secret_hex_file, from_bip39, split, bits, bip39_pass)
    passphrase = inputs.passphrase(passphrase_file, ask_passphrase, confirm=True)
    created = backup.create_share_set(
        _home(),
        secret,
        parsed,
        passphrase=passphrase,
        extendable=extendable,
        iteration_exponent=iteration_exponent,
        label=label,
        out_dir=shares_dir,
        guardians=guardian or [],
        plaintext_rest=plaintext_rest,
    )
    emit(_created_json(created, reveal), lambda: _print_created(created, reveal))


def _print_status(recovery: slip39.Recovery) -> None:
    if recovery.group_count and recovery.group_count > 1:
        stderr.print(f"{recovery.groups_complete()} of {recovery.group_threshold} groups complete")
    for g in recovery.status():
        if g.threshold is None:
            stderr.print(f"  [red]✗[/red] group {g.group_index}: no share yet", markup=True)
        else:
            mark = "[green]✓[/green]" if g.complete else "[yellow]●[/yellow]"
            stderr.print(f"  {mark} group {g.group_index}: {g.entered} of {g.threshold} shares", markup=True)


def _interactive_shares() -> list[backup.LoadedShare]:
    """Ask for shares one at a time, like a hardware wallet, until the set is complete."""
    from lifeboat.secrets import backup, slip39

    recovery = slip39.Recovery()
    loaded: list[backup.LoadedShare] = []
    while not recovery.is_complete():
        number = len(loaded) + 1
        try:
            text = typer.prompt(f"Share {number}", hide_input=False, prompt_suffix=": ", err=True)
        except (typer.Abort, EOFError):
            raise ShareError(
                f"recovery abandoned after {len(loaded)} share(s); nothing was written"
            ) from None
        label = f"share {number}"
        try:
            recovery.add(text, label)
        except LifeboatError as exc:
            stderr.print(f"[red]✗[/red] {escape(str(exc))}; try again", markup=True)
            continue
        loaded.append(backup.LoadedShare(label, text))
        _print_status(recovery)
    return loaded


def _gather(files: list[str] | None, identity: list[Path] | None) -> list[backup.LoadedShare]:
    from lifeboat.secrets import backup

    if files:
        return backup.load_shares(files, inputs.identities(identity))
    if sys.stdin.isatty() and not settings.json:
        return _interactive_shares()
    return backup.load_shares(["-"], inputs.identities(identity))


def _needs_passphrase(set_id: str | None, shares: list[backup.LoadedShare]) -> bool:
    """Whether the home records a passphrase for the set these shares belong to."""
    from lifeboat.secrets import slip39

    state = _home().load()
    if set_id is not None:
        return state.share_set(set_id).passphrase
    for loaded in shares:
        try:
            identifier = slip39.inspect(loaded.mnemonic).identifier
        except LifeboatError:
            continue
        return any(s.passphrase for s in state.sets_with_identifier(identifier))
    return False


@shares_app.command("recover")
def shares_recover(
    files: ShareFiles = None,
    identity: Identity = None,
    set_id: SetOpt = None,
    passphrase_file: PassFile = None,
    ask_passphrase: AskPass = False,
    as_: Annotated[
        str, typer.Option("--as", help="Output form: auto, hex, or bip39 (entropy sets).")
    ] = "auto",
    language: Annotated[
        str | None, typer.Option("--language", "-l", help="BIP-39 list for --as bip39.")
    ] = None,
    reveal: Reveal = False,
    output: Output = None,
    force: Overwrite = False,
) -> None:
    """Recover the master secret from shares: interactively, from files, or from stdin."""
    from lifeboat.secrets import backup, bip39
    from lifeboat.secrets.fingerprint import fingerprint, format_fingerprint

    _secret_output(reveal, output, force)
    if as_ not in ("auto", "hex", "bip39"):
        raise UsageError("--as takes auto, hex or bip39")
    if language is not None:
        bip39.wordlist(language)  # an unknown list is refused now, not after the shares are entered
    shares = _gather(files, identity)
    passphrase = inputs.passphrase(passphrase_file, ask_passphrase, needed=_needs_passphrase(set_id, shares))
    recovered = backup.recover_verified(_home(), shares, passphrase=passphrase, set_id=set_id)
    secret, record = recovered.secret, recovered.record
    if recovered.checked is None:  # loud in both modes: stderr is not the JSON document
        stderr.print(f"[bold red]warning[/bold red]: {escape(backup.UNCHECKED_WARNING)}", markup=True)
    form = as_
    if form == "auto":
        form = "bip39" if record is not None and record.secret_kind == backup.KIND_BIP39_ENTROPY else "hex"
    if form == "bip39":
        lang = language or (record.bip39_language if record else None) or BIP39_DEFAULT_LANGUAGE
        text = bip39.from_entropy(secret, lang).phrase
    else:
        text = secret.hex()
    if output is not None:
        _write_secret(output, (text + "\n").encode(), force)
    fp = format_fingerprint(fingerprint(secret))
    data: dict[str, Any] = {
        "share_set": record.id if record else None,
        "fingerprint": fp,
        "verified": recovered.checked is not None,
        "checked_against": recovered.checked,
        "form": form,
    }
    if recovered.checked is None:
        data["warning"] = backup.UNCHECKED_WARNING
    if reveal:
        data["secret"] = text

    def human() -> None:
        if record is not None:
            verdict = f"matches set {record.id}"
        elif recovered.checked is not None:
            verdict = "matches the fingerprint in the share files; this home has no record of the set"
        else:
            verdict = "NOT CHECKED: nothing to check it against"
        stderr.print(f"[green]recovered[/green]: fingerprint {fp} ({escape(verdict)})", markup=True)
        if reveal:
            print(text)

    emit(data, human)


@shares_app.command("inspect")
def shares_inspect(files: ShareFiles = None, identity: Identity = None) -> None:
    """Show each share's metadata (set, group, member, thresholds); never its secret value."""
    from lifeboat.secrets import backup, slip39

    shares = backup.load_shares(files or ["-"], inputs.identities(identity))
    state = _home().load()
    rows = []
    for loaded in shares:
        share_info = slip39.inspect(loaded.mnemonic, loaded.label)
        known = [s.id for s in state.sets_with_identifier(share_info.identifier)]
        row = {"label": loaded.label, **asdict(share_info), "share_sets": known}
        if loaded.envelope is not None:
            row["guardian"] = loaded.envelope.guardian
        rows.append(row)

    def human() -> None:
        table = Table("share", "set", "identifier", "group", "member", "secret", "extendable")
        for r in rows:
            table.add_row(
                str(r["label"]),
                ",".join(r["share_sets"]) or "(not in home)",
                str(r["identifier"]),
                f"{r['group_index']} of {r['group_count']} ({r['group_threshold']} needed)",
                f"{r['member_index']} ({r['member_threshold']} needed)",
                f"{r['secret_bytes'] * 8} bits",
                "yes" if r["extendable"] else "no",
            )
        stdout.print(table)

    emit({"shares": rows}, human)


def _record_for(candidates: list[ShareSetRecord]) -> ShareSetRecord | None:
    """The one recorded set with a share's SLIP-39 identifier, or None if none or ambiguous."""
    return candidates[0] if len(candidates) == 1 else None


@shares_app.command("seal")
def shares_seal(
    share_file: Annotated[Path, typer.Argument(help="A file holding one share.", metavar="SHARE")],
    to: Annotated[str, typer.Option("--to", help="Guardian name (see 'guardians list').")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Envelope path.", metavar="FILE")
    ] = None,
    force: Overwrite = False,
) -> None:
    """Seal one share to a guardian as an armored age file (opens with 'age -d -i KEY')."""
    from lifeboat.home import Holder
    from lifeboat.secrets import backup, envelope, slip39

    home = _home()
    state = home.load()
    who = state.guardian(to)
    [loaded] = _single(backup.load_shares([str(share_file)]))
    share_info = slip39.inspect(loaded.mnemonic, loaded.label)
    record = _record_for(state.sets_with_identifier(share_info.identifier))
    content = envelope.EnvelopeContent.for_share(
        loaded.mnemonic,
        share_set=record.id if record else None,
        fingerprint=record.fingerprint if record else None,
        guardian=who.name,
        label=record.label if record else None,
    )
    target = output or share_file.with_name(f"{share_file.stem}-{who.name}.age")
    write_atomic(target, envelope.seal(content, envelope.parse_recipient(who.recipient)), overwrite=force)
    if record is not None:
        with home.update() as fresh:
            rec = fresh.share_sets[record.id]
            holder = rec.holder(share_info.group_index, share_info.member_index)
            if holder is None:
                holder = Holder(share_info.group_index, share_info.member_index)
                rec.holders.append(holder)
            holder.guardian, holder.envelope = who.name, str(target)
    data = {"envelope": str(target), "guardian": who.name, "share_set": record.id if record else None}
    emit(data, lambda: stdout.print(f"sealed {share_info.position()} to {who.name}: {target}"))


def _single(shares: list[backup.LoadedShare]) -> list[backup.LoadedShare]:
    if len(shares) != 1:
        raise InputError(f"expected exactly one share, found {len(shares)}")
    return shares


@shares_app.command("open")
def shares_open(
    envelope_file: Annotated[Path, typer.Argument(help="A guardian envelope (.age).", metavar="ENVELOPE")],
    identity: Identity = None,
    reveal: Reveal = False,
    output: Output = None,
    force: Overwrite = False,
) -> None:
    """Open a guardian envelope with the guardian's age identity; show its metadata."""
    from lifeboat.secrets import backup

    if not identity:
        raise UsageError("give the guardian's age identity with -i KEYFILE")
    if output is not None:
        check_writable(output, overwrite=force)
    [loaded] = _single(backup.load_shares([str(envelope_file)], inputs.identities(identity)))
    content = loaded.envelope
    if content is None:
        raise InputError(f"{envelope_file} is not an envelope (it is a plain share file)")
    if output is not None:
        _write_secret(output, (content.share + "\n").encode(), force)
    data = asdict(content)
    if not reveal:
        data.pop("share")

    def human() -> None:
        stdout.print(
            f"share of set {content.share_set or '(unknown)'} (fingerprint {content.fingerprint or '?'}), "
            f"group {content.group_index} of {content.group_count}, member {content.member_index}; "
            f"guardian {content.guardian or '?'}"
        )
        if reveal:
            print(content.share)

    emit(data, human)


@shares_app.command("cards")
def shares_cards(
    files: ShareFiles = None,
    identity: Identity = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="PDF path (0600).", metavar="FILE")] = Path(
        "share-cards.pdf"
    ),
    paper: Annotated[str, typer.Option(help="A4 or letter.")] = "A4",
    force: Overwrite = False,
) -> None:
    """Print share cards: a PDF page per share with words, QR code, thresholds and instructions."""
    from lifeboat.secrets import backup, slip39
    from lifeboat.secrets.cards import ShareCard, write_cards

    shares = backup.load_shares(files or ["-"], inputs.identities(identity))
    state = _home().load()
    cards = []
    for loaded in shares:
        share_info = slip39.inspect(loaded.mnemonic, loaded.label)
        record = _record_for(state.sets_with_identifier(share_info.identifier))
        holder = record.holder(share_info.group_index, share_info.member_index) if record else None
        guardian = holder.guardian if holder else (loaded.envelope.guardian if loaded.envelope else None)
        cards.append(
            ShareCard(
                mnemonic=slip39.normalize(loaded.mnemonic),
                share_set_id=record.id if record else "(not recorded)",
                fingerprint=record.fingerprint if record else "(unknown)",
                identifier=share_info.identifier,
                group_index=share_info.group_index,
                group_count=share_info.group_count,
                group_threshold=share_info.group_threshold,
                member_index=share_info.member_index,
                member_threshold=share_info.member_threshold,
                member_count=record.groups[share_info.group_index - 1][1] if record else None,
                label=record.label if record else None,
                guardian=guardian,
                created=record.created[:10] if record else None,
            )
        )
    write_cards(cards, output, paper=paper, overwrite=force)
    emit(
        {"cards": str(output), "pages": len(cards)},
        lambda: stdout.print(f"wrote {len(cards)} card{'' if len(cards) == 1 else 's'} to {output}"),
    )


def _print_drill(report: backup.DrillReport) -> None:
    for check in report.shares:
        if check.valid:
            stdout.print(
                f"  [green]✓[/green] {escape(check.label)}: group {check.group_index}, "
                f"member {check.member_index}",
                markup=True,
            )
        else:
            stdout.print(f"  [red]✗[/red] {escape(check.label)}: {escape(check.reason or '')}", markup=True)
    for g in report.groups:
        need = "unknown" if g.threshold is None else str(g.threshold)
        mark = "[green]✓[/green]" if g.complete else "[red]✗[/red]"
        stdout.print(f"  {mark} group {g.group_index}: {g.entered} entered, {need} needed", markup=True)
    verdict = "[green]PASS[/green]" if report.ok else "[red]FAIL[/red]"
    stdout.print(f"{verdict} {escape(report.summary)}", markup=True)


def _drill_json(report: backup.DrillReport) -> dict[str, Any]:
    return {
        "share_set": report.set_id,
        "ok": report.ok,
        "summary": report.summary,
        "fingerprint_ok": report.fingerprint_ok,
        "missing": report.missing,
        "group_threshold": report.group_threshold,
        "shares": [asdict(c) for c in report.shares],
        "groups": [
            {
                "group_index": g.group_index,
                "entered": g.entered,
                "threshold": g.threshold,
                "complete": g.complete,
            }
            for g in report.groups
        ],
    }


@shares_app.command("drill")
def shares_drill(
    files: ShareFiles = None,
    identity: Identity = None,
    set_id: SetOpt = None,
    passphrase_file: PassFile = None,
    ask_passphrase: AskPass = False,
) -> None:
    """Prove the shares still reconstruct the recorded fingerprint, without revealing the secret."""
    from lifeboat.secrets import backup

    shares = _gather(files, identity)
    passphrase = inputs.passphrase(passphrase_file, ask_passphrase, needed=_needs_passphrase(set_id, shares))
    report = backup.drill(_home(), shares, passphrase=passphrase, set_id=set_id)
    emit(_drill_json(report), lambda: _print_drill(report))
    if not report.ok:
        raise typer.Exit(1)


@shares_app.command("reshare")
def shares_reshare(
    files: ShareFiles = None,
    scheme: Annotated[
        str, typer.Option("--scheme", help="The new scheme, e.g. 3of5 or 2:2of3,3of5.")
    ] = "2of3",
    identity: Identity = None,
    set_id: SetOpt = None,
    passphrase_file: PassFile = None,
    ask_passphrase: AskPass = False,
    extendable: Annotated[bool, typer.Option(help="SLIP-39 extendable flag of the new set.")] = True,
    label: LabelOpt = None,
    shares_dir: SharesDir = None,
    guardian: GuardianOpt = None,
    plaintext_rest: PlaintextRest = False,
    reveal: RevealShares = False,
) -> None:
    """From a threshold of the old shares, make a new (pending) set for the same secret."""
    from lifeboat.secrets import backup, slip39

    _need_destination(reveal, shares_dir)
    new_scheme = slip39.Scheme.parse(scheme)
    backup.check_destinations(
        _home().load(), new_scheme, guardian or [], shares_dir, plaintext_rest=plaintext_rest
    )
    shares = _gather(files, identity)
    passphrase = inputs.passphrase(passphrase_file, ask_passphrase, needed=_needs_passphrase(set_id, shares))
    created = backup.reshare(
        _home(),
        shares,
        new_scheme,
        passphrase=passphrase,
        set_id=set_id,
        extendable=extendable,
        label=label,
        out_dir=shares_dir,
        guardians=guardian or [],
        plaintext_rest=plaintext_rest,
    )

    def human() -> None:
        _print_created(created, reveal)
        stdout.print(
            f"set {created.record.id} is pending: confirm it with 'lifeboat shares confirm {created.record.id} "
            f"SHARE...' (a threshold of the new shares); {created.record.replaces} stays active until then"
        )

    emit(_created_json(created, reveal), human)


@shares_app.command("confirm")
def shares_confirm(
    set_id: Annotated[str, typer.Argument(help="The pending share set.")],
    files: ShareFiles = None,
    identity: Identity = None,
    passphrase_file: PassFile = None,
    ask_passphrase: AskPass = False,
) -> None:
    """Verify a pending reshared set from its own shares; then retire the old set."""
    from lifeboat.secrets import backup

    shares = _gather(files, identity)
    passphrase = inputs.passphrase(passphrase_file, ask_passphrase, needed=_needs_passphrase(set_id, shares))
    report = backup.confirm(_home(), set_id, shares, passphrase=passphrase)
    emit(_drill_json(report), lambda: _print_drill(report))
    if not report.ok:
        raise typer.Exit(1)


@shares_app.command("cancel")
def shares_cancel(set_id: Annotated[str, typer.Argument(help="The pending share set.")]) -> None:
    """Abandon a pending reshare; the set it would have replaced stays active."""
    from lifeboat.secrets import backup

    record = backup.cancel(_home(), set_id)
    emit(
        {"share_set": record.id, "status": record.status, "replaces": record.replaces},
        lambda: stdout.print(
            f"cancelled {record.id}; {record.replaces} stays active. Destroy the shares of {record.id}."
        ),
    )


@shares_app.command("list")
def shares_list(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include retired sets.")] = False,
) -> None:
    """List the share sets recorded in the home."""
    from lifeboat.home import ACTIVE, PENDING

    records = [r for r in _home().load().share_sets.values() if all_ or r.status in (ACTIVE, PENDING)]
    records.sort(key=lambda r: r.created)

    def human() -> None:
        if not records:
            stdout.print("no share sets yet; create one with 'lifeboat shares create'")
            return
        table = Table()
        table.add_column("set", no_wrap=True)
        for heading in ("status", "label", "scheme", "kind"):
            table.add_column(heading)
        table.add_column("fingerprint", overflow="fold")
        table.add_column("last drill")
        for r in records:
            last = r.drills[-1] if r.drills else None
            table.add_row(
                r.id,
                r.status,
                r.label or "",
                r.scheme,
                r.secret_kind,
                r.fingerprint,
                f"{'ok' if last.ok else 'FAILED'} {last.at}" if last else "never",
            )
        stdout.print(table)

    emit({"share_sets": [_set_summary(r) for r in records]}, human)


@shares_app.command("show")
def shares_show(
    set_id: Annotated[str, typer.Argument(help="Share set id (a unique prefix is enough).")],
) -> None:
    """Show one share set: scheme, holders, drills."""
    record = _home().load().share_set(set_id)

    def human() -> None:
        stdout.print(f"[bold]{record.id}[/bold] {record.status}  {escape(record.label or '')}", markup=True)
        stdout.print(
            f"  scheme {record.scheme}, SLIP-39 identifier {record.identifier}, {record.secret_kind}"
        )
        stdout.print(f"  fingerprint {record.fingerprint}, passphrase {'yes' if record.passphrase else 'no'}")
        if record.replaces:
            stdout.print(f"  replaces {record.replaces}")
        if record.replaced_by:
            stdout.print(f"  replaced by {record.replaced_by}")
        for h in record.holders:
            where = h.envelope or "(kept by the owner)"
            stdout.print(f"  group {h.group_index} member {h.member_index}: {h.guardian or '-'} {where}")
        for d in record.drills:
            stdout.print(f"  drill {d.at}: {'ok' if d.ok else 'FAILED'} {d.summary}")

    emit(asdict(record), human)


# guardians --------------------------------------------------------------------------------


@guardians_app.command("add")
def guardians_add(
    name: Annotated[str, typer.Argument(help="A short name, e.g. alice.")],
    recipient: Annotated[str, typer.Argument(help="The guardian's age X25519 recipient (age1...).")],
    contact: Annotated[str | None, typer.Option(help="How to reach them (free text).")] = None,
) -> None:
    """Register a guardian by their age public key."""
    from lifeboat.secrets import backup

    added = backup.add_guardian(_home(), name, recipient, contact)
    emit({"guardian": name, "recipient": added.recipient}, lambda: stdout.print(f"added guardian {name}"))


@guardians_app.command("list")
def guardians_list() -> None:
    """List guardians and the shares each one holds."""
    state = _home().load()
    rows = []
    for g in state.guardians.values():
        held = [
            f"{s.id}:g{h.group_index}m{h.member_index}"
            for s in state.share_sets.values()
            if s.status != "retired"
            for h in s.holders
            if h.guardian == g.name
        ]
        rows.append({**asdict(g), "holds": held})

    def human() -> None:
        if not rows:
            stdout.print("no guardians yet; add one with 'lifeboat guardians add NAME age1...'")
            return
        table = Table("name", "recipient", "holds", "contact")
        for r in rows:
            table.add_row(r["name"], r["recipient"], ", ".join(r["holds"]) or "-", r["contact"] or "")
        stdout.print(table)

    emit({"guardians": rows}, human)


@guardians_app.command("remove")
def guardians_remove(
    name: Annotated[str, typer.Argument()],
    force: Annotated[
        bool, typer.Option("--force", help="Remove even if they hold a share of a live set.")
    ] = False,
) -> None:
    """Remove a guardian (refused while they hold a share of an active or pending set)."""
    with _home().update() as state:
        state.guardian(name)
        held = [
            s.id
            for s in state.share_sets.values()
            if s.status != "retired"
            for h in s.holders
            if h.guardian == name
        ]
        if held and not force:
            raise HomeError(
                f"{name} holds shares of {', '.join(sorted(set(held)))}; reshare those sets without them first "
                "(or --force)"
            )
        del state.guardians[name]
    emit({"removed": name}, lambda: stdout.print(f"removed guardian {name}"))


# sealed files -----------------------------------------------------------------------------


def _progress(total: int, description: str) -> Progress:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=stderr,
        disable=settings.json or not stderr.is_terminal,
        transient=True,
    )


def seal_command(
    file: Annotated[Path, typer.Argument(help="The file to seal.", metavar="FILE")],
    scheme: Annotated[str, typer.Option("--scheme", help="How to split the file key, e.g. 2of3.")] = "2of3",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Sealed file (default FILE.lbx).", metavar="FILE")
    ] = None,
    shares_dir: SharesDir = None,
    guardian: GuardianOpt = None,
    passphrase_file: PassFile = None,
    ask_passphrase: AskPass = False,
    label: LabelOpt = None,
    plaintext_rest: PlaintextRest = False,
    reveal: RevealShares = False,
    force: Overwrite = False,
) -> None:
    """Encrypt a file of any size with a fresh key, and split only the key into SLIP-39 shares."""
    from lifeboat.secrets import backup, sealed, slip39

    _need_destination(reveal, shares_dir)
    parsed = slip39.Scheme.parse(scheme)
    target = output or file.with_name(file.name + sealed.SEALED_SUFFIX)
    if target.exists():
        if not force:
            raise StorageError(f"{target} already exists; choose another --output or pass --force")
        if file.exists() and target.samefile(file):
            raise UsageError(f"{target} is the file being sealed; choose another --output")
    home = _home()
    backup.check_destinations(home.load(), parsed, guardian or [], shares_dir, plaintext_rest=plaintext_rest)
    passphrase = inputs.passphrase(passphrase_file, ask_passphrase, confirm=True)
    key = sealed.generate_key()
    # Seal to a staging name; the sealed file appears under its name only once its key shares
    # exist and are recorded, and an existing file is never removed on failure.
    staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}.sealing")
    size = file.stat().st_size if file.is_file() else 0
    try:
        with _progress(size, "sealing") as bar:
            task = bar.add_task("sealing", total=size)
            sealed.seal_file(file, staging, key, progress=lambda n: bar.advance(task, n))
        created = backup.create_share_set(
            home,
            backup.MasterSecret(key, backup.KIND_SEALED_FILE_KEY),
            parsed,
            passphrase=passphrase,
            label=label or file.name,
            out_dir=shares_dir,
            guardians=guardian or [],
            plaintext_rest=plaintext_rest,
            sealed_file=str(target),
        )
        publish(staging, target, overwrite=force)
    finally:
        backup.remove_quietly([staging])
    data = _created_json(created, reveal)
    data["sealed_file"] = str(target)

    def human() -> None:
        stdout.print(f"sealed {file} -> {target}")
        _print_created(created, reveal)

    emit(data, human)


def unseal_command(
    file: Annotated[Path, typer.Argument(help="The sealed file (.lbx).", metavar="FILE.lbx")],
    files: ShareFiles = None,
    identity: Identity = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write (default: FILE without .lbx).", metavar="FILE"),
    ] = None,
    passphrase_file: PassFile = None,
    ask_passphrase: AskPass = False,
    force: Overwrite = False,
) -> None:
    """Recover a sealed file's key from shares (or envelopes) and decrypt the file."""
    from lifeboat.secrets import sealed, slip39
    from lifeboat.secrets.fingerprint import fingerprint, format_fingerprint

    if output is None:
        if file.suffix != sealed.SEALED_SUFFIX:
            raise UsageError(f"{file} does not end in {sealed.SEALED_SUFFIX}; name the output with --output")
        output = file.with_suffix("")
    try:
        with file.open("rb") as handle:
            header = sealed.read_header(handle)
    except OSError as exc:
        raise StorageError(f"cannot read {file}: {exc.strerror}") from None
    shares = _gather(files, identity)
    passphrase = inputs.passphrase(passphrase_file, ask_passphrase, needed=_needs_passphrase(None, shares))
    recovery = slip39.Recovery()
    for loaded in shares:
        recovery.add(loaded.mnemonic, loaded.label)
    key = recovery.recover(passphrase)
    if not hmac.compare_digest(fingerprint(key), header.key_fingerprint):
        raise SealedFileError(
            f"the shares give a key with fingerprint {format_fingerprint(fingerprint(key))}, but {file} needs "
            f"{format_fingerprint(header.key_fingerprint)}: wrong passphrase, or shares of another file"
        )
    size = file.stat().st_size
    with _progress(size, "unsealing") as bar:
        task = bar.add_task("unsealing", total=size)
        sealed.unseal_file(file, output, key, overwrite=force, progress=lambda n: bar.advance(task, n))
    emit({"output": str(output)}, lambda: stdout.print(f"unsealed {file} -> {output}"))
