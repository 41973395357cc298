"""A drill of a real setup: the read-only checks of ``lifeboat drill --config lifeboat.toml``.

One check per configured path, each a few timed steps on the drill's :class:`Timeline`:

* **keys**: open every share file or envelope of a set with the identities given, count how many
  open against the threshold (the margin: how many more may be lost), rebuild the secret from
  them and compare its fingerprint with the home's record or the one configured;
* **storage**: open the repository, ``check --read-data`` (every shard read and authenticated),
  how many stores can still be lost, and the time a restore of the newest file snapshot would
  take at the read throughput that check measured;
* **state**: the record snapshot configured (default: the newest) must carry a valid signature
  by the configured signer and a sound chain; it is restored into a scratch directory, its tree
  rebuilt from the restored file and compared with the signed statement, and the invariants run;
* **recovery**: the service answers ``/healthz``, the vault exists, and the audit log exported
  from it verifies against the service key, extending its signed head and any heads kept earlier.

Nothing in the setup is written: the repository is opened read-only without an index cache and
without a lock (as ``lifeboat check`` and ``restore`` open it), the home is read without being
changed (the share-set drill is not recorded there: the drill history is, by the caller), and the
scratch directory is removed afterwards. A failed check says what to do in one line (``remedy``).
A check that holds with less margin than the setup was built with (a store down within tolerance,
a share that no longer opens while enough others do) makes its path ``degraded``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from lifeboat.drill.config import DrillConfig, KeysConfig, RecoveryConfig, StateConfig, StorageConfig
from lifeboat.drill.history import last_audit_head
from lifeboat.drill.run import CONFIG, DEGRADED, FAILED, DrillReport, PathReport
from lifeboat.drill.timeline import Listener, PathName, Phase, Step, StepFailed, Timeline, one_line
from lifeboat.errors import LifeboatError
from lifeboat.fs import read_bounded
from lifeboat.home import Home
from lifeboat.reachability import check_with_snapshots
from lifeboat.recovery import audit
from lifeboat.recovery.client import Client, ServiceUnavailable
from lifeboat.secrets import backup, envelope, slip39
from lifeboat.snapshot.restore import restore
from lifeboat.state import snapshots as states
from lifeboat.state.invariants import InvariantChecker, InvariantReport, load_invariants
from lifeboat.state.records import open_sink, open_source
from lifeboat.state.statement import record_spec
from lifeboat.store.backends import open_stores_leniently
from lifeboat.store.errors import RepositoryKeyError, StoreDown
from lifeboat.store.repository import Repository

__all__ = ["CheckFailed", "open_configured_repository", "run_config_drill"]

#: Largest signed-head file read (``recovery.known_heads``).
MAX_HEAD_FILE: Final = 64 * 1024
#: What a failure of a path that has no better advice points to.
GENERIC_REMEDY: Final[dict[PathName, str]] = {
    PathName.KEYS: "run `lifeboat shares drill FILES -i IDENTITY` on the set to see each share's state",
    PathName.STORAGE: "run `lifeboat check --read-data` on the stores to see what is wrong",
    PathName.STATE: "run `lifeboat state verify --read-data` on the stores to see what is wrong",
    PathName.RECOVERY: "check the service's log and `lifeboat recovery audit verify`",
}


class CheckFailed(StepFailed):
    """A check that does not hold: ``remedy`` says, in one line, what to do about it."""

    def __init__(self, message: str, remedy: str) -> None:
        super().__init__(message)
        self.remedy = remedy


@dataclass
class _Warning:
    """A finding: ``degrades`` the path (less margin than built), or a note worth acting on."""

    message: str
    remedy: str
    degrades: bool = True


def _degrade(step: Step, warnings: list[_Warning], message: str, remedy: str) -> None:
    step.warning = message
    warnings.append(_Warning(message, remedy))


def _note(step: Step, warnings: list[_Warning], message: str, remedy: str) -> None:
    step.facts["note"] = message
    warnings.append(_Warning(message, remedy, degrades=False))


def _one_line(error: BaseException) -> str:
    return one_line(error, 400)


# --- keys ---------------------------------------------------------------------------------------------


def _check_keys(
    home: Home, sets: tuple[KeysConfig, ...], timeline: Timeline, warnings: list[_Warning]
) -> None:
    for config in sets:
        _check_share_set(home, config, timeline, warnings)


def _check_share_set(home: Home, config: KeysConfig, timeline: Timeline, warnings: list[_Warning]) -> None:
    path = PathName.KEYS
    identities = []
    with timeline.step(path, Phase.CHECK, f"open the shares of {config.name}") as step:
        try:
            for identity_file in config.identities:
                identities.extend(envelope.load_identities(identity_file))
        except LifeboatError as exc:
            raise CheckFailed(
                f"an identity file of {config.name} cannot be read: {_one_line(exc)}",
                "point identities at the guardians' age identity files (`age-keygen` output)",
            ) from exc
        usable: list[backup.LoadedShare] = []
        unusable: list[str] = []
        for share_file in config.shares:
            try:
                usable.extend(backup.load_shares([str(share_file)], identities))
            except LifeboatError as exc:
                unusable.append(f"{share_file.name}: {_one_line(exc)}")
        recovery, checks = backup.check_shares(usable)
        invalid = [f"{c.label}: {c.reason}" for c in checks if not c.valid]
        valid = [share for share, check in zip(usable, checks, strict=True) if check.valid]
        threshold, margin = _margin(recovery)
        if threshold is None and config.share_set is not None:  # no share opened: the record says
            record = home.load().share_set(config.share_set)
            if record.group_threshold == 1 and len(record.groups) == 1:
                threshold = record.groups[0][0]
        step.facts.update(files=len(config.shares), usable=len(valid), threshold=threshold, margin=margin)
        problems = unusable + invalid
        if not valid or margin is None or margin < 0:
            first = problems[0] if problems else "no share could be read"
            needed = f", {threshold} needed" if threshold is not None else ""
            raise CheckFailed(
                f"{config.name}: {len(valid)} of {len(config.shares)} share file(s) usable{needed} ({first})",
                "check the identities: an envelope opens only with its guardian's age identity; if "
                "shares are really lost, rebuild the set with `lifeboat shares reshare` while enough remain",
            )
        if problems:
            _degrade(
                step,
                warnings,
                f"{config.name}: {len(problems)} of {len(config.shares)} share file(s) unusable "
                f"({problems[0]}); {margin} more may be lost",
                "ask that guardian to check their envelope and identity, or replace the share with "
                "`lifeboat shares reshare`",
            )
    with timeline.step(path, Phase.CHECK, f"rebuild {config.name} and compare its fingerprint") as step:
        chosen = valid if config.drill is None else valid[: config.drill]
        if config.drill is not None and len(valid) < config.drill:
            raise CheckFailed(
                f"{config.name}: only {len(valid)} share(s) usable, the config drills {config.drill}",
                "restore the missing shares, or lower drill in the config",
            )
        if config.drill is not None and threshold is not None and config.drill < threshold:
            raise CheckFailed(
                f"{config.name}: drill = {config.drill} combines fewer shares than the {threshold} needed",
                f"set drill to at least {threshold} in the config",
            )
        try:
            report = backup.drill(
                home,
                chosen,
                passphrase=config.passphrase.read(),
                set_id=config.share_set,
                record=False,
                expected_fingerprint=config.fingerprint,
            )
        except LifeboatError as exc:
            raise CheckFailed(
                f"{config.name}: {_one_line(exc)}",
                "name the set with share_set (its id in `lifeboat shares list`) or fingerprint",
            ) from exc
        step.facts.update(combined=len(chosen), share_set=report.set_id, fingerprint_ok=report.fingerprint_ok)
        if not report.ok:
            raise CheckFailed(
                f"{config.name}: {report.summary}",
                "check the set's passphrase (passphrase_env / passphrase_file) and that the shares "
                "are of this set; `lifeboat shares drill` shows each share",
            )


def _margin(recovery: slip39.Recovery) -> tuple[int | None, int | None]:
    """(shares needed, how many usable ones may still be lost); for several groups, in groups."""
    groups = recovery.status()
    if not groups:
        return None, None
    if recovery.group_threshold == 1 and len(groups) == 1:
        group = groups[0]
        if group.threshold is None:
            return None, None
        return group.threshold, group.entered - group.threshold
    complete = sum(1 for g in groups if g.complete)
    needed = recovery.group_threshold
    return needed, None if needed is None else complete - needed


# --- storage ------------------------------------------------------------------------------------------


@contextmanager
def open_configured_repository(storage: StorageConfig) -> Iterator[Repository]:
    """The configured repository, read-only, no index cache, no lock; a store that cannot be opened
    is left out (the repository opens while ``k`` answer). Failures are :class:`CheckFailed`."""
    backends, unopened = open_stores_leniently(list(storage.stores), timeout=storage.timeout)
    if not backends:
        raise CheckFailed(
            "none of the configured stores can be opened: " + "; ".join(unopened),
            "check storage.stores (paths, URLs, credentials) and that the stores are mounted",
        )
    try:
        repo = Repository.open(
            backends, storage.passphrase.read(), writable=False, cache_dir=None, unopened=unopened
        )
    except StoreDown as exc:
        raise CheckFailed(
            f"too few stores answer to read the repository: {_one_line(exc)}",
            "bring the missing stores back (mount them, fix credentials); below k stores nothing "
            "can be read, so restore stores from their provider's own backups if they are gone",
        ) from exc
    except RepositoryKeyError as exc:
        raise CheckFailed(
            f"the passphrase does not open the repository: {_one_line(exc)}",
            "check storage.passphrase_env / passphrase_file; `lifeboat repo key recover` sets a new "
            "one from the key's SLIP-39 shares",
        ) from exc
    try:
        yield repo
    finally:
        repo.close()


def _check_storage(
    storage: StorageConfig, scratch: Path, timeline: Timeline, warnings: list[_Warning]
) -> float | None:
    """The storage check; returns the restore-time estimate in seconds (None: no file snapshot)."""
    path = PathName.STORAGE
    with ExitStack() as stack:
        with timeline.step(path, Phase.CHECK, "open the repository") as step:
            repo = stack.enter_context(open_configured_repository(storage))
            step.facts.update(
                repository=repo.id[:8], k=repo.k, n=repo.n, answering=repo.n - len(repo.unavailable)
            )
            if repo.unavailable:
                reasons = "; ".join(repo.store_failures) or "no answer"
                spare = repo.n - len(repo.unavailable) - repo.k
                _degrade(
                    step,
                    warnings,
                    f"{len(repo.unavailable)} of {repo.n} stores unreachable ({reasons}); reading from the "
                    f"other {repo.n - len(repo.unavailable)} (any {repo.k} suffice), {max(spare, 0)} more "
                    "may be lost",
                    "if the store comes back run `lifeboat repair`; if it is gone, rebuild it on a new "
                    "one: `lifeboat repo replace-store OLD NEW`",
                )
        with timeline.step(path, Phase.CHECK, "check --read-data, redundancy per store") as step:
            started = time.perf_counter()
            checked = check_with_snapshots(repo, read_data=True)
            seconds = time.perf_counter() - started
            report = checked.report
            objects = [o for o in report.objects if not o.orphan]
            tolerance = min(
                [repo.n - len(repo.unavailable) - repo.k]
                + [len(o.good) - repo.k for o in objects if o.kind in ("data", "index", "snapshots")]
            )
            step.facts.update(
                status=checked.status,
                packs=report.packs_total,
                damaged_objects=len(objects),
                stores_that_may_still_be_lost=max(tolerance, 0),
                stores={
                    health.name: "ok"
                    if health.healthy
                    else (
                        "down"
                        if not health.reachable
                        else f"{health.missing} missing, {health.corrupt} corrupt"
                    )
                    for health in report.stores
                },
            )
            if checked.status == "error":
                problems = [*checked.snapshot_errors, *report.errors, *(o.describe() for o in objects)]
                raise CheckFailed(
                    f"check --read-data: data is lost or damaged beyond repair: {'; '.join(problems[:2])}",
                    "run `lifeboat check --read-data` for the full list; `lifeboat repair` rebuilds what "
                    "still has k good shards, the rest must come from another backup",
                )
            up = [o for o in objects if set(o.corrupt) | (o.missing - set(repo.unavailable))]
            stores = sorted({s for o in up for s in (*o.missing, *o.corrupt) if s not in repo.unavailable})
            if stores:
                damaged = [o for o in up if o.corrupt or o.missing]
                _degrade(
                    step,
                    warnings,
                    f"{len(damaged)} object(s) lack a good shard on store(s) "
                    f"{', '.join(repo.store_name(s) for s in stores)} (e.g. {damaged[0].key}: "
                    f"{damaged[0].describe()}); {max(tolerance, 0)} more store(s) may be lost",
                    "run `lifeboat repair` to rebuild the damaged shards from the others",
                )
        with timeline.step(path, Phase.CHECK, "restore time of the newest file snapshot") as step:
            return _restore_time(repo, storage, seconds, scratch, step)


def _restore_time(
    repo: Repository, storage: StorageConfig, check_seconds: float, scratch: Path, step: Step
) -> float | None:
    """Restore the newest file snapshot into ``scratch`` and time it, when it is no larger than
    ``storage.restore_limit_mib``; else estimate from the throughput ``check --read-data`` had
    (stored bytes checked per second). None when the repository holds no file snapshot."""
    stored = sum(entry.size for entry in repo.index.packs.values())
    throughput = stored / check_seconds if check_seconds > 0 and stored else None
    files = repo.manifests("files")
    step.facts.update(
        bytes_checked=stored, read_bytes_per_second=None if throughput is None else round(throughput)
    )
    if not files:
        step.facts.update(file_snapshots=0)
        return None
    newest = files[-1]
    size = int(newest.payload.get("summary", {}).get("bytes_total", 0) or 0)
    step.facts.update(snapshot=newest.short_id, bytes=size)
    if size > storage.restore_limit_mib * 1024 * 1024:
        estimate = 0.0 if throughput is None else size / throughput
        step.facts.update(restored=False, estimate_seconds=round(estimate, 3))
        return estimate
    target = scratch / "files"
    started = time.perf_counter()
    try:
        result = restore(repo, newest, target)
    except LifeboatError as exc:
        result_errors = [_one_line(exc)]
    else:
        result_errors = list(result.errors)
    took = time.perf_counter() - started
    if result_errors:
        raise CheckFailed(
            f"the newest file snapshot {newest.short_id} does not restore: {'; '.join(result_errors[:2])}",
            "run `lifeboat check --read-data` and `lifeboat repair`; `lifeboat restore` an older "
            "snapshot if this one stays broken",
        )
    shutil.rmtree(target, ignore_errors=True)
    step.facts.update(restored=True, files=result.files, restore_seconds=round(took, 3))
    return took


# --- state --------------------------------------------------------------------------------------------


def _check_state(
    state: StateConfig, storage: StorageConfig, scratch: Path, timeline: Timeline, warnings: list[_Warning]
) -> None:
    path = PathName.STATE
    with ExitStack() as stack:
        with timeline.step(path, Phase.CHECK, "find the record snapshot") as step:
            repo = stack.enter_context(open_configured_repository(storage))
            try:
                snap = states.find_state(repo, state.snapshot, state.name)
            except LifeboatError as exc:
                raise CheckFailed(
                    f"record snapshot {state.snapshot!r}: {_one_line(exc)}",
                    "check state.name and state.snapshot against `lifeboat state list`",
                ) from exc
            journaled = max(
                (seg.last for seg in states.journal_segments(repo, snap.statement.name)), default=0
            )
            step.facts.update(
                snapshot=snap.short_id,
                name=snap.statement.name,
                sequence=snap.statement.sequence,
                # changes journaled since: a restore replays them (`state restore --at-seq`)
                journal_entries_after=max(journaled - snap.statement.sequence, 0),
            )
        with timeline.step(path, Phase.CHECK, "verify its signature and chain") as step:
            _verify_snapshot(repo, snap, state, step, warnings)
        with timeline.step(path, Phase.CHECK, "restore it into scratch space and rebuild its tree") as step:
            target = scratch / "state" / f"{snap.statement.name}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            try:
                written = open_sink(str(target), kind="jsonl").write(
                    ((r.key, r.value) for r in states.records_at(repo, snap)),
                    snap.statement.source,
                    key_field=snap.statement.key_field,
                )
            except LifeboatError as exc:
                raise CheckFailed(
                    f"snapshot {snap.short_id} cannot be restored: {_one_line(exc)}",
                    "run `lifeboat check --read-data` and `lifeboat repair`; if nodes are lost, "
                    "`lifeboat state rollback` to the newest snapshot that restores",
                ) from exc
            restore_seconds = time.perf_counter() - started
            checker = InvariantChecker(load_invariants(state.invariants)) if state.invariants else None
            root, count = _rebuild(target, snap, checker)
            step.facts.update(
                records=written, bytes=target.stat().st_size, restore_seconds=round(restore_seconds, 3)
            )
            if (root, count) != (snap.statement.root, snap.statement.count):
                raise CheckFailed(
                    f"the restored records of {snap.short_id} make root {root.hex()[:12]} with {count} records; "
                    f"the signed statement says {snap.statement.root.hex()[:12]} with {snap.statement.count}",
                    "run `lifeboat state verify --read-data`; `lifeboat state rollback` to a snapshot that verifies",
                )
        with timeline.step(path, Phase.CHECK, "run the invariants") as step:
            if checker is not None:
                result = checker.finish()
                step.facts.update(source="state.invariants", checked=len(result.results))
            else:
                recorded = snap.statement.invariants
                if recorded is None:
                    step.facts.update(source="none")
                    _degrade(
                        step,
                        warnings,
                        f"snapshot {snap.short_id} records no invariant check and the config names none",
                        "name the rules file in state.invariants (see examples/ledger-invariants.toml)",
                    )
                    return
                result = InvariantReport.from_json(recorded)
                step.facts.update(source="the signed statement", checked=len(result.results))
            violated = [r.name for r in result.results if not r.passed]
            if violated:
                raise CheckFailed(
                    f"snapshot {snap.short_id} violates {', '.join(violated)}",
                    "the state is not safe to restore: `lifeboat state rollback` restores the newest "
                    "snapshot whose invariants pass",
                )


def _verify_snapshot(
    repo: Repository, snap: states.StateSnapshot, state: StateConfig, step: Step, warnings: list[_Warning]
) -> None:
    step.facts.update(signer=snap.statement.signer.scheme, pinned=state.trust is not None)
    why = snap.signature_problem(state.trust)
    if why is None:
        good, rejected, _ = states.known_good(repo, snap.statement.name, trust=state.trust, skip_damaged=True)
        if good is None or good.digest != snap.digest:
            why = next((reason for s, reason in rejected if s.digest == snap.digest), None)
            why = None if why is not None and why.startswith("invariants") else why
    if why is not None:
        remedy = (
            "the FROST group signs it with `lifeboat state message` / `frost sign` / `lifeboat state attest`"
            if snap.signature is None
            else "do not restore it: `lifeboat state verify` shows why; `lifeboat state rollback` restores "
            "the newest snapshot that verifies"
        )
        raise CheckFailed(f"snapshot {snap.short_id}: {why}", remedy)
    if state.trust is None:
        _note(
            step,
            warnings,
            f"snapshot {snap.short_id} is signed by {snap.statement.signer.public_key.hex()[:16]}..., "
            "but the config pins no signer, so any key would pass",
            "set state.trust to the FROST group's public key package (or the signer's 64 hex digits)",
        )


def _rebuild(path: Path, snap: states.StateSnapshot, checker: InvariantChecker | None) -> tuple[bytes, int]:
    """Read the restored file once: its tree (root, count) as the statement's shape builds it,
    feeding ``checker`` each record."""
    statement = snap.statement
    with open_source(str(path), record_spec(statement)) as source:
        return states.tree_of(
            source,
            fanout=statement.fanout,
            leaf_fanout=statement.leaf_fanout,
            sum_fields=len(statement.sum_fields),
            checker=checker,
        )


# --- recovery -----------------------------------------------------------------------------------------


def _check_recovery(
    recovery: RecoveryConfig,
    earlier: tuple[str, int, bytes] | None,
    entry: PathReport,
    timeline: Timeline,
    warnings: list[_Warning],
) -> None:
    """``earlier``: the head a previous drill verified (when, seq, hash), which the log must extend."""
    path = PathName.RECOVERY
    with Client(recovery.url, timeout=recovery.timeout) as client:
        with timeline.step(path, Phase.CHECK, "the service answers /healthz") as step:
            try:
                health = client.health()
            except ServiceUnavailable as exc:
                raise CheckFailed(
                    f"the recovery service at {recovery.url} does not answer: {_one_line(exc)}",
                    "start it (`lifeboat serve`, or its systemd unit) and check recovery.url",
                ) from exc
            step.facts.update(database=health.get("database"), audit_entries=health.get("audit_seq"))
        if recovery.vault is not None:
            with timeline.step(path, Phase.CHECK, "the vault is known to the service") as step:
                try:
                    view = client.vault(recovery.vault)
                except LifeboatError as exc:
                    raise CheckFailed(
                        f"vault {recovery.vault[:12]}: {_one_line(exc)}",
                        "check recovery.vault (the id `lifeboat recovery vault create` printed) and "
                        "that this is the right service",
                    ) from exc
                opened = [r for r in view.state.requests if r.status.is_open]
                step.facts.update(
                    version=view.version,
                    guardians=len(view.state.config.guardians),
                    open_requests=len(opened),
                )
                if opened:
                    _degrade(
                        step,
                        warnings,
                        f"vault {recovery.vault[:12]} has {len(opened)} open recovery request(s)",
                        "if nobody you know started it, veto it now: `lifeboat recovery veto`",
                    )
        with timeline.step(path, Phase.CHECK, "the audit log verifies against the signed head") as step:
            try:
                head_document = client.audit_head()
                export = client.audit_export()
            except ServiceUnavailable as exc:
                raise CheckFailed(
                    f"the audit log cannot be fetched: {_one_line(exc)}",
                    "check the service's log; `lifeboat recovery audit export` tries the same",
                ) from exc
            key = recovery.service_key
            try:
                if key is None:
                    key = bytes.fromhex(str(head_document["head"]["service_key"]))
                live = audit.verify_head(head_document, key, "the service's signed head")
                heads = [(live.seq, live.hash)]
                for head_file in recovery.known_heads:
                    document = json.loads(read_bounded(head_file, MAX_HEAD_FILE, what="signed head file"))
                    kept = audit.verify_head(document, key, f"signed head file {head_file}")
                    heads.append((kept.seq, kept.hash))
                verified = audit.verify(export, key, known_heads=heads)
            except (LifeboatError, KeyError, TypeError, ValueError) as exc:
                raise CheckFailed(
                    f"the audit log does not verify: {_one_line(exc)}",
                    "the log was edited, truncated or re-signed: stop trusting this service, keep the "
                    "export (`lifeboat recovery audit export -o FILE`) and investigate",
                ) from exc
            if earlier is not None:
                when, seq, digest = earlier
                try:
                    audit.verify(export, key, known_heads=[(seq, digest)])
                except LifeboatError as exc:
                    raise CheckFailed(
                        f"the audit log does not extend the head the drill of {when} verified (entry "
                        f"{seq}): {_one_line(exc)}",
                        "the log was rewritten or the database restored from an older backup: stop "
                        "trusting this service, keep the export and investigate",
                    ) from exc
            entry.kept["audit_head"] = {
                "url": recovery.url,
                "seq": verified.head.seq,
                "hash": verified.head.hash.hex(),
            }
            step.facts.update(
                entries=len(verified.entries),
                head=verified.head.hash.hex()[:16],
                known_heads=len(recovery.known_heads),
                extends_earlier_drill=earlier is not None,
                pinned=recovery.service_key is not None,
            )
            if recovery.service_key is None:
                _note(
                    step,
                    warnings,
                    f"the audit log verifies against the key the service names ({key.hex()[:16]}...), "
                    "which the config does not pin",
                    "set recovery.service_key to the service's public key, kept from when you set it up",
                )


# --- the drill ----------------------------------------------------------------------------------------


def run_config_drill(
    config: DrillConfig,
    *,
    home: Home,
    listener: Listener | None = None,
    workdir: Path | None = None,
) -> DrillReport:
    """Run every configured check; the report's paths are in the order the config names them."""
    timeline = Timeline(listener=listener)
    started = time.perf_counter()
    names = [PathName(name) for name in config.order]
    report = DrillReport(
        seed=None,
        accounts=None,
        scenario=names,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        timeline=timeline,
        paths=[PathReport(name) for name in names],
        kind=CONFIG,
        config=str(config.path),
    )
    scratch = Path(tempfile.mkdtemp(prefix="lifeboat-drill-", dir=workdir))
    scratch.chmod(0o700)
    try:
        checks: dict[PathName, Callable[[list[_Warning]], None]] = {}
        if config.keys:
            checks[PathName.KEYS] = lambda w: _check_keys(home, config.keys, timeline, w)
        if config.storage is not None:
            storage = config.storage

            def check_storage(w: list[_Warning]) -> None:
                report.path(PathName.STORAGE).restore_estimate_seconds = _check_storage(
                    storage, scratch, timeline, w
                )

            checks[PathName.STORAGE] = check_storage
            if config.state is not None:
                state = config.state
                checks[PathName.STATE] = lambda w: _check_state(state, storage, scratch, timeline, w)
        if config.recovery is not None:
            recovery = config.recovery
            earlier = last_audit_head(home, recovery.url)
            entry = report.path(PathName.RECOVERY)
            checks[PathName.RECOVERY] = lambda w: _check_recovery(recovery, earlier, entry, timeline, w)
        for name in names:
            _run_check(report.path(name), checks[name])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        report.seconds = time.perf_counter() - started
    return report


def _run_check(entry: PathReport, check: Callable[[list[_Warning]], None]) -> None:
    warnings: list[_Warning] = []
    try:
        check(warnings)
    except CheckFailed as failure:
        entry.verdict, entry.error, entry.remedy = FAILED, _one_line(failure), failure.remedy
    except (LifeboatError, OSError) as error:  # recorded by its step; the other paths go on
        entry.verdict, entry.error = FAILED, _one_line(error)
        entry.remedy = GENERIC_REMEDY.get(entry.name, "see the failed step")
    degrading = [w for w in warnings if w.degrades]
    if degrading and entry.verdict != FAILED:
        entry.verdict = DEGRADED
        entry.error = "; ".join(w.message for w in degrading)
        entry.remedy = degrading[0].remedy
    entry.outcome.notes.extend(
        f"{w.message}: {w.remedy}" for w in warnings if w.message != entry.error and w.remedy != entry.remedy
    )
