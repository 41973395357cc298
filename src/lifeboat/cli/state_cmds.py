"""``lifeboat state``: record snapshots of protocol state, proofs, journals, invariants, rollback.

The repository options are those of the file commands (``--store`` or ``$LIFEBOAT_STORES``,
``--passphrase-file`` or ``$LIFEBOAT_REPO_PASSPHRASE``). ``state check`` and
``state verify-proof`` need no repository.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from lifeboat.cli.output import emit, info, stdout
from lifeboat.cli.repo_cmds import (
    CacheOpt,
    NoCacheOpt,
    NoProgressOpt,
    PassFileOpt,
    StoreOpt,
    _cell,
    _human_bytes,
    _open,
    _say,
    _transfer_progress,
    _warn,
)
from lifeboat.errors import InputError, StateError, UsageError
from lifeboat.fs import PUBLIC_MODE, SECRET_MODE, read_bounded, write_atomic

if TYPE_CHECKING:
    from lifeboat.state import snapshots as state
    from lifeboat.state.invariants import InvariantReport, Invariants
    from lifeboat.state.records import RecordSpec
    from lifeboat.state.snapshots import Signing, StateDiff, StateSnapshot


state_app = typer.Typer(
    help="Record snapshots of protocol state: Merkle sum trees, proofs, journals, invariants, rollback.",
    no_args_is_help=True,
)
journal_app = typer.Typer(
    help="Record changes after a snapshot, for point-in-time restores.", no_args_is_help=True
)
state_app.add_typer(journal_app, name="journal")

MAX_SIGNATURE_FILE = 1 << 20
#: ``lifeboat.state.snapshots.DEFAULT_LEAF_FANOUT``, written out so that building the commands
#: does not load the state code (tests/test_cli_startup.py checks that the two agree).
DEFAULT_LEAF_FANOUT = 7


def max_bundle_file() -> int:
    """The largest proof bundle file read: a proof at its limit plus room for the statement."""
    from lifeboat.state import prolly

    return prolly.MAX_PROOF_BYTES + (1 << 20)


NameOpt = Annotated[
    str | None,
    typer.Option("--name", "-n", help="The dataset (a chain of snapshots); needed when there are several."),
]
SnapOpt = Annotated[
    str, typer.Option("--snapshot", help="A record snapshot: 'latest' or 4+ hex digits of its id.")
]
TableOpt = Annotated[str | None, typer.Option("--table", help="SQL sources and sinks: the table.")]
QueryOpt = Annotated[str | None, typer.Option("--query", help="SQL sources: a query instead of a table.")]
KeyOpt = Annotated[str, typer.Option("--key", "-k", help="The field (column) that holds each record's key.")]
SumOpt = Annotated[
    list[str] | None,
    typer.Option("--sum", help="A numeric field to sum up the tree, e.g. balances.USDC (repeatable)."),
]
TrustOpt = Annotated[
    str | None,
    typer.Option(
        "--trust",
        help="Accept only signatures by this key: 64 hex digits, or a FROST public key package file.",
        metavar="KEY",
    ),
]
SigningKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--signing-key",
        help="Sign with this Ed25519 key file (`lifeboat state keygen`); default: the repository's key.",
        metavar="FILE",
    ),
]
FrostGroupOpt = Annotated[
    Path | None,
    typer.Option(
        "--frost-group",
        help="A FROST group signs (its public key package): the snapshot waits for `state attest`.",
        metavar="FILE",
    ),
]
MessageOutOpt = Annotated[
    Path | None,
    typer.Option("--message-out", help="With --frost-group: write the message to sign here.", metavar="FILE"),
]
AtSeqOpt = Annotated[
    int | None, typer.Option("--at-seq", help="Replay the journal up to this sequence number.", min=0)
]
InvariantsOpt = Annotated[
    Path | None, typer.Option("--invariants", help="A TOML file of invariants to check.", metavar="FILE")
]


# --- helpers -----------------------------------------------------------------------------------


def _spec(key: str, sums: list[str] | None) -> RecordSpec:
    from lifeboat.state import prolly
    from lifeboat.state.records import RecordSpec

    fields = tuple(sums or ())
    if len(set(fields)) != len(fields):
        raise UsageError("a --sum field is given twice")
    if len(fields) > prolly.MAX_SUM_FIELDS:
        raise UsageError(f"at most {prolly.MAX_SUM_FIELDS} --sum fields")
    return RecordSpec(key, fields)


def _trust(value: str | None) -> bytes | None:
    from lifeboat.state import statement as statements

    return None if value is None else statements.parse_trust(value, what="--trust")


def _signing(repo: Any, signing_key: Path | None, frost_group: Path | None) -> Signing:
    from lifeboat.state import snapshots as state
    from lifeboat.state import statement as statements
    from lifeboat.state.snapshots import Signing
    from lifeboat.state.statement import Signer

    if signing_key is not None and frost_group is not None:
        raise UsageError("give at most one of --signing-key and --frost-group")
    if signing_key is not None:
        seed = statements.decode_signing_key(
            read_bounded(signing_key, 4096, what="signing key"), str(signing_key)
        )
        return Signing(Signer("ed25519", statements.public_key_of(seed)), seed)
    if frost_group is not None:
        return Signing(Signer("frost-ed25519", statements.frost_group_key(frost_group)), None)
    return state.repository_signing(repo)


def _dataset_name(name: str | None, location: str, table: str | None) -> str:
    """``--name``, or one made from the file name or table (a query needs ``--name``), checked."""
    from lifeboat.state import statement as statements

    if name is None:
        if "://" in location and not table:
            raise UsageError("name the dataset of a query with --name")
        base = table if table else Path(location.split(":", 1)[-1]).stem
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("._-")[:128] or None
        if name is None:
            raise UsageError(f"no dataset name can be made from {location!r}; give one with --name")
    try:
        return statements.check_name(name)
    except UsageError as exc:
        raise UsageError(f"{exc} (--name)") from None


def _short(data: bytes) -> str:
    return data.hex()[:8]


def _snap_json(snap: StateSnapshot) -> dict[str, Any]:
    s = snap.statement
    return {
        "id": snap.digest.hex(),
        "short_id": snap.short_id,
        "name": s.name,
        "time": s.time,
        "sequence": s.sequence,
        "root": s.root.hex(),
        "records": s.count,
        "totals": {name: str(total) for name, total in zip(s.sum_fields, s.totals, strict=True)},
        "invariants_passed": s.invariants_passed,
        "signer": {"scheme": s.signer.scheme, "public_key": s.signer.public_key.hex()},
        "signed": snap.signature is not None,
        "previous": None if s.previous is None else s.previous.hex(),
        "source": s.source,
    }


def _invariants_word(snap: StateSnapshot) -> str:
    passed = snap.statement.invariants_passed
    return "-" if passed is None else ("pass" if passed else "FAIL")


def _print_report(report: InvariantReport) -> None:
    for result in report.results:
        mark = "ok  " if result.passed else "FAIL"
        _say(
            f"{mark} {result.kind:5} {result.name}"
            + ("" if result.passed else f": {result.violations} violation(s)")
        )
        for example in result.examples:
            _say(f"       {example.key}: {example.detail}")


def _print_diff(diff: StateDiff) -> None:
    _say(f"{diff.added} added, {diff.removed} removed, {diff.changed} changed")
    for name, delta in zip(diff.sum_fields, diff.deltas, strict=True):
        if delta:
            _say(f"  {name}: {delta:+d}")
    for kind, key in diff.examples:
        _say(f"  {kind:8} {key}")


@contextmanager
def _bytes_progress(no_progress: bool, label: str, total: int | None) -> Iterator[Any]:
    with _transfer_progress(no_progress, label) as update:
        state_ = SimpleNamespace(bytes_done=0, bytes_total=total, files_done=0)

        def tick(done: int) -> None:
            state_.bytes_done = done
            update(state_)

        yield tick


# --- snapshot, list, show, diff ----------------------------------------------------------------


@state_app.command("snapshot")
def snapshot_command(
    source: Annotated[str, typer.Argument(help="records.jsonl, records.csv, sqlite:///db, postgresql://...")],
    key: KeyOpt,
    sums: SumOpt = None,
    name: NameOpt = None,
    table: TableOpt = None,
    query: QueryOpt = None,
    invariants: InvariantsOpt = None,
    sequence: Annotated[
        int | None, typer.Option("--sequence", help="The journal sequence number this state reflects.", min=0)
    ] = None,
    signing_key: SigningKeyOpt = None,
    frost_group: FrostGroupOpt = None,
    message_out: MessageOutOpt = None,
    leaf_fanout: Annotated[
        int, typer.Option("--leaf-fanout", help="Records per leaf (target).", min=2, max=4096)
    ] = DEFAULT_LEAF_FANOUT,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Snapshot a record set: store its Merkle sum tree and a signed statement of its root."""
    from lifeboat.state import snapshots as state
    from lifeboat.state.invariants import load_invariants
    from lifeboat.state.records import open_source

    spec = _spec(key, sums)
    checks = load_invariants(invariants) if invariants is not None else None
    if message_out is not None and frost_group is None:
        raise UsageError("--message-out goes with --frost-group")
    dataset = _dataset_name(name, source, table)
    with (
        open_source(source, spec, table=table, query=query) as records,
        _open(
            store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache, writable=True, load_index=False
        ) as repo,
    ):
        signing = _signing(repo, signing_key, frost_group)
        with _bytes_progress(no_progress, "snapshot", records.total) as tick:
            result = state.snapshot_records(
                repo,
                records,
                spec,
                name=dataset,
                signing=signing,
                invariants=checks,
                sequence=sequence,
                leaf_fanout=leaf_fanout,
                progress=tick,
            )
        snap = result.snapshot
        if message_out is not None:
            write_atomic(message_out, snap.statement.message(), mode=PUBLIC_MODE, overwrite=True)
    _report_snapshot(snap, result.written, message_out)
    if snap.statement.invariants_passed is False:
        raise typer.Exit(3)


def _report_snapshot(
    snap: StateSnapshot,
    written: state.Written,
    message_out: Path | None,
    appended: tuple[dict[str, Any], Callable[[], None]] | None = None,
) -> None:
    """Print a new snapshot; ``appended``: the journal append that came first in the same run
    (its JSON, which then holds the snapshot's under ``snapshot``, and its human renderer)."""
    from lifeboat.state.invariants import InvariantReport

    data = _snap_json(snap)
    data["written"] = {
        "nodes_new": written.nodes_new,
        "nodes_known": written.nodes_known,
        "bytes_new": written.bytes_new,
        "bytes_stored": written.bytes_stored,
    }

    def human() -> None:
        s = snap.statement
        _say(f"record snapshot {snap.short_id} of {s.name!r}: {s.count} records, root {s.root.hex()}")
        _say(
            f"  {written.nodes_new} new nodes ({_human_bytes(written.bytes_new)}; "
            f"{_human_bytes(written.bytes_stored)} stored)"
            + (f", {written.nodes_known} already stored" if written.nodes_known else "")
        )
        for field_name, total in zip(s.sum_fields, s.totals, strict=True):
            _say(f"  total {field_name} = {total}")
        if s.invariants is not None:
            _say(f"  invariants: {'pass' if s.invariants_passed else 'FAIL'}")
            _print_report(InvariantReport.from_json(s.invariants))
        if snap.signature is None:
            where = f" (message in {message_out})" if message_out else ""
            _say(
                f"  awaiting the FROST signature of group {s.signer.public_key.hex()}{where}: sign the message "
                f"with `lifeboat frost ...`, then `lifeboat state attest {snap.short_id} --signature FILE`"
            )
        else:
            _say(f"  signed ({s.signer.scheme}) by {s.signer.public_key.hex()}")

    if appended is None:
        emit(data, human)
        return
    appended_data, appended_human = appended

    def both() -> None:
        appended_human()
        human()

    emit({**appended_data, "applied": True, "snapshot": data}, both)


@state_app.command("list")
def list_command(
    name: NameOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """List the record snapshots, oldest first."""
    from lifeboat.state import snapshots as state

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        snapshots, problems = state.state_snapshots(repo, name)
    for problem in problems:
        info(f"warning: unreadable snapshot: {problem}")

    def human() -> None:
        table = Table("ID", "Name", "Time", "Seq", "Records", "Invariants", "Signed", "Root", box=None)
        for snap in snapshots:
            s = snap.statement
            table.add_row(
                snap.short_id,
                _cell(s.name),
                s.time[:19].replace("T", " "),
                str(s.sequence),
                str(s.count),
                _invariants_word(snap),
                s.signer.scheme if snap.signature is not None else "pending",
                _short(s.root),
            )
        stdout.print(table)

    emit({"snapshots": [_snap_json(s) for s in snapshots], "unreadable": problems}, human)
    if problems:  # damage, not an empty list: see the exit codes in `lifeboat snapshots`
        raise typer.Exit(1)


@state_app.command("show")
def show_command(
    snapshot: Annotated[str, typer.Argument(help="'latest' or 4+ hex digits of its id.")] = "latest",
    name: NameOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Show one record snapshot's statement: root, totals, source, invariants, signer, chain."""
    from lifeboat.state import snapshots as state
    from lifeboat.state.invariants import InvariantReport

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        snap = state.find_state(repo, snapshot, name)
    data = _snap_json(snap)
    data["statement"] = snap.statement.to_json()
    data["signature"] = None if snap.signature is None else snap.signature.hex()
    data["signature_problem"] = snap.signature_problem()

    def human() -> None:
        s = snap.statement
        _say(f"record snapshot {snap.digest.hex()}")
        _say(f"  name {s.name}, time {s.time}, sequence {s.sequence}")
        _say(f"  root {s.root.hex()} ({s.count} records, fanout {s.fanout}/{s.leaf_fanout})")
        for field_name, total in zip(s.sum_fields, s.totals, strict=True):
            _say(f"  total {field_name} = {total}")
        _say(f"  source {s.source}")
        _say(f"  previous {s.previous.hex() if s.previous else '(first of its chain)'}")
        _say(
            f"  signer {s.signer.scheme} {s.signer.public_key.hex()}: {data['signature_problem'] or 'valid'}"
        )
        if s.invariants is not None:
            _print_report(InvariantReport.from_json(s.invariants))

    emit(data, human)


@state_app.command("diff")
def diff_command(
    first: Annotated[str, typer.Argument(help="The older snapshot.")],
    second: Annotated[str, typer.Argument(help="The newer snapshot.")] = "latest",
    name: NameOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """What changed between two record snapshots: keys added, removed, changed, and each sum's change."""
    from lifeboat.state import snapshots as state

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        a = state.find_state(repo, first, name)
        b = state.find_state(repo, second, name)
        diff = state.diff_snapshots(repo, a, b)
    data = diff.to_json()
    data.update({"from": a.digest.hex(), "to": b.digest.hex()})
    emit(data, lambda: _print_diff(diff))


# --- get, prove, verify-proof ------------------------------------------------------------------


@state_app.command("get")
def get_command(
    key: Annotated[str, typer.Argument(help="The record's key.")],
    snapshot: SnapOpt = "latest",
    at_seq: AtSeqOpt = None,
    name: NameOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Print one record's value (exit 1 if the key is absent)."""
    from lifeboat.state import snapshots as state

    wanted = key.encode("utf-8", "surrogateescape")
    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        snap = _snapshot_at(repo, snapshot, name, at_seq)
        value = state.record_at(repo, snap, wanted, at_seq)
    if value is None:
        raise InputError(f"no record with key {key!r} in record snapshot {snap.short_id}")
    text = value.decode("utf-8", "backslashreplace")
    emit({"key": key, "value": text, "snapshot": snap.digest.hex()}, lambda: _say(text))


@state_app.command("prove")
def prove_command(
    key: Annotated[str, typer.Argument(help="The key to prove present (or absent).")],
    snapshot: SnapOpt = "latest",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the proof here instead of stdout.", metavar="FILE"),
    ] = None,
    name: NameOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """A proof that the key is in the snapshot (or is not), with the signed statement: all a verifier needs."""
    from lifeboat.state import prolly
    from lifeboat.state import snapshots as state
    from lifeboat.state import statement as statements

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        snap = state.find_state(repo, snapshot, name)
        if snap.signature is None:
            raise StateError(
                f"record snapshot {snap.short_id} is not signed yet; `lifeboat state attest` first"
            )
        proof = prolly.prove(
            state.RepositoryNodes(repo), snap.statement.root, key.encode("utf-8", "surrogateescape")
        )
    bundle = statements.encode_bundle(snap.statement, snap.signature, proof)
    if output is None:
        sys.stdout.buffer.write(bundle)
        sys.stdout.flush()
    else:
        write_atomic(output, bundle, mode=PUBLIC_MODE, overwrite=True)
        info(f"{'inclusion' if proof.present else 'absence'} proof for {key!r} written to {output}")


@state_app.command("verify-proof")
def verify_proof_command(
    proof_file: Annotated[Path, typer.Argument(help="A proof from `lifeboat state prove`.", metavar="PROOF")],
    root: Annotated[
        str | None, typer.Option("--root", help="The root it must be against (64 hex digits).")
    ] = None,
    trust: TrustOpt = None,
) -> None:
    """Check a proof with nothing but the proof: the statement's signature, the root, the path and sums."""
    from lifeboat.state import prolly
    from lifeboat.state import statement as statements

    expected = None
    if root is not None:
        try:
            expected = bytes.fromhex(root)
        except ValueError:
            raise UsageError("--root must be 64 hex digits") from None
        if len(expected) != prolly.ID_BYTES:
            raise UsageError("--root must be 64 hex digits")
    verified = statements.verify_bundle(
        read_bounded(proof_file, max_bundle_file(), what="proof"), root=expected, trust=_trust(trust)
    )
    s = verified.statement
    p = verified.proof
    record = p.record
    data: dict[str, Any] = {
        "valid": True,
        "present": p.present,
        "key": p.key.decode("utf-8", "backslashreplace"),
        "value": None if record is None else record.value.decode("utf-8", "backslashreplace"),
        "sums": None
        if record is None
        else {n: str(v) for n, v in zip(s.sum_fields, record.sums, strict=True)},
        "position": p.position,
        "root": s.root.hex(),
        "records": p.count,
        "totals": {n: str(v) for n, v in zip(s.sum_fields, p.totals, strict=True)},
        "name": s.name,
        "time": s.time,
        "sequence": s.sequence,
        "signer": {"scheme": s.signer.scheme, "public_key": s.signer.public_key.hex()},
        "trusted_key": trust is not None,
        "invariants_passed": s.invariants_passed,
    }

    def human() -> None:
        what = "is in" if p.present else "is NOT in"
        _say(f"valid: {data['key']!r} {what} the {s.name!r} state of {s.time} (sequence {s.sequence})")
        if record is not None:
            _say(f"  value {data['value']}")
        _say(f"  root {s.root.hex()}: {p.count} records")
        for field_name, total in data["totals"].items():
            _say(f"  total {field_name} = {total}")
        _say(
            f"  signed ({s.signer.scheme}) by {s.signer.public_key.hex()}"
            + ("" if trust is not None else " (not pinned: pass --trust KEY to require this signer)")
        )

    emit(data, human)


# --- verify, restore, check, rollback ----------------------------------------------------------


@state_app.command("verify")
def verify_command(
    name: NameOpt = None,
    trust: TrustOpt = None,
    read_data: Annotated[
        bool, typer.Option("--read-data", help="Also read and check every tree node.")
    ] = False,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Check every record snapshot's signature and its chain; with --read-data every node. Exit 1 if not."""
    from lifeboat.state import snapshots as state

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        report = state.verify_states(repo, name, trust=_trust(trust), read_data=read_data)
    data = {
        "ok": report.ok,
        "snapshots": report.snapshots,
        "problems": report.problems,
        "unreadable": report.unreadable,
        "read_data": read_data,
    }

    def human() -> None:
        for chain_name, problems in sorted(report.problems.items()):
            _say(f"{chain_name}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
            for problem in problems:
                _say(f"  {problem}")
        for problem in report.unreadable:
            _say(f"unreadable: {problem}")
        _say(
            f"{report.snapshots} record snapshot(s) {'verified' if report.ok else 'checked: NOT all verify'}"
        )

    emit(data, human)
    if not report.ok:
        raise typer.Exit(1)


@state_app.command("restore")
def restore_command(
    target: Annotated[str, typer.Option("--target", help="Where to write: a .jsonl/.csv file or SQL URL.")],
    snapshot: SnapOpt = "latest",
    at_seq: AtSeqOpt = None,
    table: TableOpt = None,
    name: NameOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Write a snapshot's records (plus its journal up to --at-seq) to a file or table, replacing it."""
    from lifeboat.state import snapshots as state
    from lifeboat.state.records import open_sink

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        snap = _snapshot_at(repo, snapshot, name, at_seq)
        sink = open_sink(target, table=table)
        written = sink.write(
            ((r.key, r.value) for r in state.records_at(repo, snap, at_seq)),
            snap.statement.source,
            key_field=snap.statement.key_field,
        )
    emit(
        {"snapshot": snap.digest.hex(), "records": written, "target": target, "at_seq": at_seq},
        lambda: _say(
            f"restored {written} records of {snap.short_id}"
            + (f" + journal to sequence {at_seq}" if at_seq is not None else "")
            + f" to {target}"
        ),
    )


def _snapshot_at(repo: Any, snapshot: str, name: str | None, at_seq: int | None) -> StateSnapshot:
    """``--snapshot``; for ``latest`` with ``--at-seq``, the newest one at or before that sequence."""
    from lifeboat.state import snapshots as state

    snap = state.find_state(repo, snapshot, name)
    if at_seq is None or snapshot != "latest":
        return snap
    snapshots, _ = state.state_snapshots(repo, snap.statement.name)
    usable = [s for s in snapshots if s.statement.sequence <= at_seq]
    if not usable:
        raise InputError(f"no record snapshot of {snap.statement.name!r} at or before sequence {at_seq}")
    return max(usable, key=lambda s: (s.statement.sequence, s.statement.time))


@state_app.command("check")
def check_command(
    source: Annotated[str, typer.Argument(help="records.jsonl, records.csv, sqlite:///db, postgresql://...")],
    invariants: Annotated[
        Path, typer.Option("--invariants", help="The TOML file of invariants.", metavar="FILE")
    ],
    key: KeyOpt,
    table: TableOpt = None,
    query: QueryOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Check live state against invariants without snapshotting it. Exit 1 on a violation, naming it."""
    from lifeboat.state import snapshots as state
    from lifeboat.state.invariants import load_invariants
    from lifeboat.state.records import RecordSpec, open_source

    checks: Invariants = load_invariants(invariants)
    with (
        open_source(source, RecordSpec(key, ()), table=table, query=query) as records,
        _bytes_progress(no_progress, "check", records.total) as tick,
    ):
        report = state.check_records(records, checks, progress=tick)
    data = report.to_json()

    def human() -> None:
        _print_report(report)
        _say("all invariants hold" if report.passed else "INVARIANTS VIOLATED")

    emit(data, human)
    if not report.passed:
        raise typer.Exit(1)


@state_app.command("rollback")
def rollback_command(
    target: Annotated[
        str, typer.Option("--target", help="The corrupted state: a .jsonl/.csv file or SQL URL.")
    ],
    table: TableOpt = None,
    name: NameOpt = None,
    trust: TrustOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; write nothing.")] = False,
    skip_damaged: Annotated[
        bool,
        typer.Option(
            "--skip-damaged",
            help="Roll back past snapshots that cannot be read (else a damaged one stops the rollback).",
        ),
    ] = False,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Restore the newest snapshot whose signature, chain and invariants hold, and report what differed."""
    from lifeboat.state import snapshots as state

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        good, rejected, damaged = state.known_good(repo, name, trust=_trust(trust), skip_damaged=skip_damaged)
        for problem in damaged:
            _warn(f"skipping a damaged snapshot (--skip-damaged): {problem}")
        for snap, why in rejected:
            _warn(f"skipping {snap.short_id} ({snap.statement.time}): {why}")
        if good is None:
            raise StateError(
                "no record snapshot passes its signature, chain and invariant checks; nothing to roll back to"
            )
        result = state.roll_back(repo, good, target, table=table, dry_run=dry_run)
    s = good.statement
    diff, unreadable = result.diff, result.unreadable
    data = {
        "snapshot": good.digest.hex(),
        "time": s.time,
        "sequence": s.sequence,
        "skipped": [{"id": snap.digest.hex(), "why": why} for snap, why in rejected],
        "damaged_skipped": damaged,
        "current_vs_snapshot": None if diff is None else diff.to_json(),
        "current_unreadable": unreadable,
        "dry_run": dry_run,
        "records_written": result.written,
    }

    def human() -> None:
        verb = "would roll back" if dry_run else "rolled back"
        _say(f"{verb} {target} to {good.short_id} ({s.time}, sequence {s.sequence}, {s.count} records)")
        if diff is not None:
            _say("the current state, against that snapshot:")
            _print_diff(diff)
        else:
            _say(
                f"the current state could not be read ({unreadable}); "
                + ("it would be replaced whole" if dry_run else "it was replaced whole")
            )

    emit(data, human)


# --- keys and FROST attestation ----------------------------------------------------------------


@state_app.command("keygen")
def keygen_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The key file to write (0600).", metavar="FILE")
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Make an Ed25519 key for signing record snapshots; prints its public key."""
    from lifeboat.state import statement as statements

    seed = statements.new_signing_key()
    write_atomic(output, statements.encode_signing_key(seed), mode=SECRET_MODE, overwrite=force)
    public = statements.public_key_of(seed).hex()
    emit(
        {"public_key": public, "file": str(output)},
        lambda: _say(f"signing key written to {output} (0600)\npublic key {public}"),
    )


@state_app.command("message")
def message_command(
    snapshot: Annotated[str, typer.Argument(help="'latest' or 4+ hex digits of its id.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the message.", metavar="FILE")
    ],
    name: NameOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Write the statement a FROST group signs (the `--message-file` of `lifeboat frost package`)."""
    from lifeboat.state import snapshots as state

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        snap = state.find_state(repo, snapshot, name)
    write_atomic(output, snap.statement.message(), mode=PUBLIC_MODE, overwrite=True)
    emit({"file": str(output), "snapshot": snap.digest.hex()}, lambda: _say(f"message written to {output}"))


@state_app.command("attest")
def attest_command(
    snapshot: Annotated[str, typer.Argument(help="The snapshot awaiting its signature.")],
    signature: Annotated[
        Path,
        typer.Option("--signature", help="The signature file of `lifeboat frost aggregate`.", metavar="FILE"),
    ],
    name: NameOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Attach a FROST group's signature to a record snapshot (it must sign exactly its statement)."""
    from lifeboat.state import snapshots as state
    from lifeboat.threshold import serialize

    suite, message, value, key = serialize.decode_signature(
        read_bounded(signature, MAX_SIGNATURE_FILE, what="signature"), str(signature)
    )
    if suite.name != "FROST-ED25519-SHA512-v1":
        raise StateError(f"{signature} is a {suite.name} signature; record snapshots take FROST(Ed25519)")
    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache, writable=True) as repo:
        snap = state.find_state(repo, snapshot, name)
        if message != snap.statement.message():
            raise StateError(
                f"{signature} signs another message than record snapshot {snap.short_id}'s statement"
            )
        if bytes(suite.group.serialize_element(key)) != snap.statement.signer.public_key:
            raise StateError(f"{signature} is by another group than the one {snap.short_id} names")
        signed = state.attach_signature(repo, snap, value)
    emit(
        {"snapshot": signed.digest.hex(), "signed": True},
        lambda: _say(f"record snapshot {signed.short_id} is now signed by its FROST group"),
    )


# --- journal -----------------------------------------------------------------------------------


@journal_app.command("append")
def journal_append_command(
    changes: Annotated[
        Path, typer.Argument(help="A JSON Lines file of changes ('-' for stdin).", metavar="FILE")
    ],
    name: NameOpt = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Then make the new snapshot (as `journal apply` does), in the same run and lock.",
        ),
    ] = False,
    invariants: InvariantsOpt = None,
    signing_key: SigningKeyOpt = None,
    frost_group: FrostGroupOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Store record changes (upserts and deletes with sequence numbers) after the newest snapshot."""
    from lifeboat.state import snapshots as state
    from lifeboat.state.invariants import load_invariants

    if not apply and (invariants is not None or signing_key is not None or frost_group is not None):
        raise UsageError("--invariants, --signing-key and --frost-group go with --apply")
    checks = load_invariants(invariants) if invariants is not None else None
    applied: state.SnapshotResult | None = None
    with _open(
        store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache, writable=True, load_index=False
    ) as repo:
        dataset = name or state.find_state(repo, "latest").statement.name

        def append(lines: Iterable[bytes], what: str) -> state.JournalResult:
            nonlocal applied
            if not apply:
                return state.append_journal(repo, dataset, lines, what=what)
            result, applied = state.append_and_apply_journal(
                repo,
                dataset,
                lines,
                what=what,
                signing=_signing(repo, signing_key, frost_group),
                invariants=checks,
            )
            return result

        if str(changes) == "-":
            result = append(sys.stdin.buffer, "standard input")
        else:
            try:
                stream = changes.open("rb")
            except OSError as exc:
                raise InputError(f"{changes}: {exc.strerror}") from None
            with stream:
                result = append(stream, str(changes))
    data: dict[str, Any] = {
        "stored": result.stored,
        "skipped": result.skipped,
        "first": result.first,
        "last": result.last,
        "duplicate": result.duplicate,
    }

    def human() -> None:
        if result.stored:
            _say(f"journal of {dataset!r}: stored changes {result.first}..{result.last} ({result.stored})")
        elif result.duplicate:
            _say(
                f"journal of {dataset!r}: changes {result.first}..{result.last} were already stored; nothing to do"
            )
        else:
            _say(f"journal of {dataset!r}: nothing new ({result.skipped} change(s) already in the snapshot)")

    if not apply:
        emit(data, human)
        return
    if applied is None:

        def nothing() -> None:
            human()
            _say(f"journal of {dataset!r}: nothing to apply")

        emit({**data, "applied": False}, nothing)
        return
    _report_snapshot(applied.snapshot, applied.written, None, (data, human))
    if applied.snapshot.statement.invariants_passed is False:
        raise typer.Exit(3)


@journal_app.command("apply")
def journal_apply_command(
    name: NameOpt = None,
    through: Annotated[
        int | None, typer.Option("--through", help="Apply changes up to this sequence number.", min=0)
    ] = None,
    invariants: InvariantsOpt = None,
    signing_key: SigningKeyOpt = None,
    frost_group: FrostGroupOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Make a new snapshot from the newest one and its journal, rewriting only the changed paths."""
    from lifeboat.state import snapshots as state
    from lifeboat.state.invariants import load_invariants

    checks = load_invariants(invariants) if invariants is not None else None
    with _open(
        store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache, writable=True, load_index=False
    ) as repo:
        dataset = name or state.find_state(repo, "latest").statement.name
        result = state.apply_journal(
            repo,
            dataset,
            signing=_signing(repo, signing_key, frost_group),
            through=through,
            invariants=checks,
        )
    if result is None:
        emit({"applied": False}, lambda: _say(f"journal of {dataset!r}: nothing to apply"))
        return
    _report_snapshot(result.snapshot, result.written, None)
    if result.snapshot.statement.invariants_passed is False:
        raise typer.Exit(3)


@journal_app.command("list")
def journal_list_command(
    name: NameOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """List the stored journal segments."""
    from lifeboat.state import snapshots as state

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        dataset = name or state.find_state(repo, "latest").statement.name
        segments = state.journal_segments(repo, dataset)
    data = {
        "name": dataset,
        "segments": [
            {
                "id": seg.manifest.id.hex(),
                "first": seg.first,
                "last": seg.last,
                "count": seg.count,
                "base": seg.base.hex(),
            }
            for seg in segments
        ],
    }

    def human() -> None:
        for seg in segments:
            _say(
                f"{seg.manifest.short_id}  {seg.first}..{seg.last}  {seg.count} change(s)  after {_short(seg.base)}"
            )

    emit(data, human)
