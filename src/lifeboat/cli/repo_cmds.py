"""CLI commands of the ``store`` and ``snapshot`` pillars: repositories, backups, restores, upkeep.

Every command here names its stores with ``--store URL`` (repeatable, any order) or
``$LIFEBOAT_STORES`` (whitespace-separated), and reads the repository passphrase from
``--passphrase-file`` or ``$LIFEBOAT_REPO_PASSPHRASE`` (else a hidden prompt).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote, urlsplit

import typer
from rich.table import Table
from rich.text import Text

from lifeboat.cli import inputs
from lifeboat.cli.options import PlaintextRest, RevealShares
from lifeboat.cli.output import emit, info, settings, stderr, stdout
from lifeboat.errors import InputError, LifeboatError, StorageError, UsageError

if TYPE_CHECKING:
    from lifeboat.store.backends import Backend
    from lifeboat.store.repair import RepairReport
    from lifeboat.store.repository import Manifest, Repository


repo_app = typer.Typer(
    help="Repositories: n stores, any k of which restore everything (init, keys, locks, stores).",
    no_args_is_help=True,
)
key_app = typer.Typer(help="The repository master key: passphrases, SLIP-39 shares.", no_args_is_help=True)
repo_app.add_typer(key_app, name="key")

ENV_STORES = "LIFEBOAT_STORES"
ENV_REPO_PASSPHRASE = "LIFEBOAT_REPO_PASSPHRASE"  # noqa: S105 (a variable name)

# Shared options -----------------------------------------------------------------------------

StoreOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--store",
        "-s",
        help=f"A store: a directory or s3://bucket/prefix?endpoint=... (repeatable; else ${ENV_STORES}).",
        metavar="URL",
    ),
]
PassFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help=f"Read the repository passphrase from this file (else ${ENV_REPO_PASSPHRASE}, else a prompt).",
        metavar="FILE",
    ),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Where to cache indexes (default: the user cache dir).", metavar="DIR"),
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not use a local index cache.")]
DegradedOpt = Annotated[
    bool,
    typer.Option(
        "--degraded-ok",
        help="Write even if some stores are down (at least k must answer); run `lifeboat repair` later.",
    ),
]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="Do not show a progress bar.")]


def _printable(text: str) -> str:
    """File names that are not UTF-8 (kept as surrogate escapes) shown with ``\\xNN`` escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


def _say(text: str) -> None:
    """Print a line as it is: paths, tags and host names may contain rich markup characters."""
    stdout.print(_printable(text), markup=False)


def _public(url: str) -> str:
    """A store URL without its query, which may carry credentials (shown only this way)."""
    return url.split("?", 1)[0]


def _warn(text: str) -> None:
    """A warning or error line on stderr, printed as it is."""
    stderr.print(_printable(text), markup=False)


def _cell(value: object) -> Text:
    return Text(_printable(str(value)))


def _store_urls(stores: list[str] | None) -> list[str]:
    urls = list(stores or [])
    if not urls:
        urls = os.environ.get(ENV_STORES, "").split()
    if not urls:
        raise UsageError(f"no stores given; name every store with --store URL (or set ${ENV_STORES})")
    return urls


def _backends(urls: list[str], *, create: bool = False) -> list[Backend]:
    from lifeboat.store.backends import open_stores

    return open_stores(urls, create=create, timeout=settings.store_timeout)


def _lenient_backends(urls: list[str], failures: list[str] | None = None) -> list[Backend]:
    """Open what can be opened; a store that fails to open is skipped (the repository says what is missing).

    Why each given store could not be opened is appended to ``failures``, if given.
    """
    from lifeboat.store.backends import open_stores_leniently

    found, unopened = open_stores_leniently(urls, timeout=settings.store_timeout)
    if failures is not None:  # the repository reports them with the other store failures
        failures.extend(unopened)
    else:
        for failure in unopened:
            info(f"warning: {failure}")
    return found


def _passphrase(file: Path | None, *, confirm: bool = False, prompt: str = "Repository passphrase") -> str:
    return inputs.passphrase(file, True, confirm=confirm, env=ENV_REPO_PASSPHRASE, prompt=prompt)


def _cache(cache_dir: Path | None, no_cache: bool) -> Path | None:
    from lifeboat.store.repository import default_cache_dir

    if no_cache:
        return None
    return cache_dir or default_cache_dir()


@contextmanager
def _open(
    stores: list[str] | None,
    passphrase_file: Path | None,
    *,
    cache_dir: Path | None = None,
    no_cache: bool = False,
    writable: bool = False,
    degraded_ok: bool = False,
    load_index: bool = True,
) -> Iterator[Repository]:
    from lifeboat.store.errors import RepositoryError
    from lifeboat.store.repository import Repository

    unopened: list[str] = []
    backends = _lenient_backends(_store_urls(stores), unopened)
    if not backends:
        raise RepositoryError("none of the given stores can be opened")
    passphrase = _passphrase(passphrase_file)
    repo = Repository.open(
        backends,
        passphrase,
        writable=writable,
        degraded_ok=degraded_ok,
        cache_dir=_cache(cache_dir, no_cache),
        load_index=load_index,
        unopened=unopened,
    )
    try:
        for failure in repo.store_failures:
            info(f"warning: {failure}")
        for damage in repo.damaged_key_files:
            info(
                f"warning: {repo.store_name(damage.store)}: its copy of key file {damage.key} is "
                f"{damage.reason}; another store's copy opened the repository (`lifeboat repair` rewrites it)"
            )
        if repo.unavailable:
            numbers = ", ".join(str(n) for n in sorted(repo.unavailable))
            info(
                f"warning: store(s) {numbers} of {repo.n} unavailable; reading from the other "
                f"{repo.n - len(repo.unavailable)} (any {repo.k} suffice)"
            )
        yield repo
    finally:
        repo.close()


@contextmanager
def _transfer_progress(no_progress: bool, label: str) -> Iterator[Callable[[Any], None]]:
    """A bar in bytes, with throughput and ETA, fed by BackupProgress / RestoreProgress states."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[detail]}"),
        console=stderr,
        disable=no_progress or settings.json or not stderr.is_terminal,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=None, detail="")

        def update(state: Any) -> None:
            bar.update(
                task, completed=state.bytes_done, total=state.bytes_total, detail=f"{state.files_done} files"
            )

        yield update


@contextmanager
def _phase_progress(no_progress: bool, label: str) -> Iterator[Callable[[str, int, int], None]]:
    """A bar in objects for check, repair and replace-store: (phase, done, total) updates."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[detail]}"),
        TimeRemainingColumn(),
        console=stderr,
        disable=no_progress or settings.json or not stderr.is_terminal,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=None, detail="")

        def update(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, detail=what)

        yield update


def _human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"  # pragma: no cover


def _snapshot_json(manifest: Manifest) -> dict[str, Any]:
    payload = manifest.payload
    return {
        "id": manifest.id.hex(),
        "short_id": manifest.short_id,
        "time": payload.get("time"),
        "hostname": payload.get("hostname"),
        "username": payload.get("username"),
        "paths": payload.get("paths"),
        "tags": payload.get("tags", []),
        "parent": payload.get("parent"),
        "tree": payload.get("tree"),
        "summary": payload.get("summary", {}),
        "degraded_stores": payload.get("degraded_stores", []),
    }


# repo init / info / unlock / replace-store -------------------------------------------------------


def _missing_top(url: str) -> Path | None:
    """For a local store that does not exist yet: the outermost directory init will create."""
    if "://" in url and not url.startswith("file://"):
        return None
    path = Path(unquote(urlsplit(url).path) if url.startswith("file://") else url).absolute()
    if os.path.lexists(path):
        return None
    top = path
    while not os.path.lexists(top.parent) and top.parent != top:
        top = top.parent
    return top


def _remove_empty_dirs(top: Path) -> None:
    """Remove ``top`` and the directories below it, if they hold nothing else (no file is ever removed)."""
    if not top.is_dir() or top.is_symlink():
        return
    for directory, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(directory)
        except OSError:
            return


@repo_app.command("init")
def init_command(
    store: StoreOpt = None,
    data_shards: Annotated[
        int | None,
        typer.Option(
            "--data-shards",
            "-k",
            help="k: how many stores are needed to read (default: 1 store → 1, 5 stores → 3).",
            metavar="K",
        ),
    ] = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Create a repository across the given stores (each gets one shard of every object)."""
    from lifeboat.store.repository import Repository

    urls = _store_urls(store)
    if data_shards is not None and not 1 <= data_shards <= len(urls):
        raise UsageError(
            f"--data-shards must be between 1 and the number of stores ({len(urls)}), got {data_shards}"
        )
    passphrase = _passphrase(passphrase_file, confirm=True, prompt="New repository passphrase")
    created = [top for top in map(_missing_top, urls) if top is not None]
    try:
        backends = _backends(urls, create=True)
        repo = Repository.init(backends, passphrase, k=data_shards, cache_dir=None)
    except BaseException:
        for top in created:  # init removed what it wrote; remove the directories it made
            _remove_empty_dirs(top)
        raise
    with repo:
        data = {"repository": repo.id, "k": repo.k, "n": repo.n, "stores": [s.name for s in backends]}

        def human() -> None:
            _say(
                f"created repository {repo.id[:8]}: {repo.k}-of-{repo.n} "
                f"(any {repo.k} of these {repo.n} stores restore everything)"
            )
            for number, backend in enumerate(backends):
                _say(f"  store {number}: {backend.name}")
            _say(
                "Keep the passphrase safe; `lifeboat repo key split` also backs the key up as SLIP-39 shares."
            )

        emit(data, human)


@repo_app.command("info")
def info_command(
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Show the repository: id, k-of-n, stores, packs, snapshots."""
    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        snapshots = repo.manifests("files")
        data = {
            "repository": repo.id,
            "k": repo.k,
            "n": repo.n,
            "stores": [
                {
                    "store": number,
                    "name": backend.name if backend else None,
                    "available": number not in repo.unavailable,
                }
                for number, backend in enumerate(repo.stores)
            ],
            "packs": len(repo.index.packs),
            "blobs": len(repo.index),
            "snapshots": len(snapshots),
            "unreadable_snapshots": sorted(repo.bad_manifests),
        }

        def human() -> None:
            _say(f"repository {repo.id} ({repo.k}-of-{repo.n})")
            for number in range(repo.n):
                state = "ok" if number not in repo.unavailable else f"UNAVAILABLE: {repo.unavailable[number]}"
                _say(f"  {repo.store_name(number)}: {state}")
            _say(f"{len(repo.index.packs)} packs, {len(repo.index)} blobs, {len(snapshots)} snapshots")

        emit(data, human)
        for key, why in repo.bad_manifests.items():  # `snapshots` and `check` exit 1 for these
            _warn(f"warning: snapshot manifest {key} cannot be read: {why}")


@repo_app.command("unlock")
def unlock_command(
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Remove every lock, not only stale ones (be sure nothing runs).")
    ] = False,
) -> None:
    """Remove stale locks (expired, or left by a process that is gone)."""
    with _open(store, passphrase_file, no_cache=True, load_index=False) as repo:
        removed = repo.remove_locks(stale_only=not everything)
        data = {
            "removed": [
                {"lock": lock.key, "description": lock.describe(), "reason": lock.reason} for lock in removed
            ]
        }

        def human() -> None:
            if not removed:
                _say("no stale locks")
            for lock in removed:
                _say(f"removed {lock.describe()} ({lock.reason or 'forced'})")

        emit(data, human)


@repo_app.command("replace-store")
def replace_store_command(
    locations: Annotated[
        list[str],
        typer.Argument(
            help="OLD NEW: the store to replace (its URL, as given with --store) and the new, empty "
            "one; or NEW alone with --store-number.",
            metavar="[OLD] NEW",
        ),
    ],
    store_number: Annotated[
        int | None,
        typer.Option(
            "--store-number",
            help="The store number the new store takes (one no store answers for); needed when "
            "several stores are lost and OLD does not say which it was.",
            metavar="N",
        ),
    ] = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Rebuild a dead or lost store's shards onto a new store, from the others.

    Repeat it for each lost store (any n-k of them). If it fails, the new store is left as it
    was found (a directory it created is removed).
    """
    from lifeboat.store.repair import replace_store

    if len(locations) == 2:
        old: str | None = locations[0]
        new = locations[1]
    elif len(locations) == 1 and store_number is not None:
        old, new = None, locations[0]
    else:
        raise UsageError("give OLD NEW (the lost store's URL and the new one), or --store-number N NEW")
    urls = _store_urls(store)
    if old is not None and old not in urls:
        raise UsageError(
            f"{_public(old)} is not among the stores given with --store; give every store of the repository"
        )
    if new in urls:
        raise UsageError(f"{_public(new)} is already one of the repository's stores")
    others = [url for url in urls if url != old]
    old_backend = _lenient_backends([old]) if old is not None else []
    with (
        _open(
            others + ([old] if old is not None and old_backend else []),
            passphrase_file,
            no_cache=True,
            degraded_ok=True,
        ) as repo,
        repo.lock(exclusive=True, operation="replace-store"),
    ):
        number, why = _number_to_replace(
            repo, urls, old, old_backend[0] if old_backend else None, store_number
        )
        info(f"the new store takes store number {number} ({why})")
        with _new_store(new) as target, _phase_progress(no_progress, "rebuilding") as progress:
            report = replace_store(repo, number, target, progress=progress)
        data = {"store": number, "new": target.name, "report": report.to_json()}

        def human() -> None:
            _say(
                f"store {number} rebuilt onto {target.name}: {report.shards_total} shards of "
                f"{report.objects_checked} objects ({_human_bytes(report.bytes_total)}), config and "
                f"{report.key_files_copied} key file(s); from now on give it with --store"
                + (f" instead of {_public(old)}" if old is not None else "")
            )
            for key in report.objects_lost:
                _warn(
                    f"error: {key} has fewer than {repo.k} good shards in the other stores and was not rebuilt"
                )

        emit(data, human)
        if report.objects_lost:
            raise typer.Exit(1)


def _number_to_replace(
    repo: Repository, urls: list[str], old: str | None, old_backend: Backend | None, wanted: int | None
) -> tuple[int, str]:
    """The store number a replacement takes, and why; never a guess between two lost stores."""
    from lifeboat.store.repair import number_from_shards

    shown = _public(old) if old is not None else "the old store"
    own: int | None = None
    how = ""
    if old_backend is not None:
        for number, candidate in enumerate(repo.stores):
            if (
                candidate is not None
                and number not in repo.unavailable
                and candidate.name == old_backend.name
            ):
                own, how = number, "its config says so"
        set_aside = {store.name for store in [*repo.blank_stores, *repo.damaged_stores]}
        if own is None and old_backend.name in set_aside:
            carried = number_from_shards(repo, old_backend)
            if carried is not None and carried in repo.unavailable:
                own, how = carried, "the shards it still holds carry that number"
    missing = sorted(repo.unavailable)
    if wanted is not None:
        if not 0 <= wanted < repo.n:
            raise UsageError(f"--store-number must be from 0 to {repo.n - 1}, got {wanted}")
        if own is not None and own != wanted:
            raise UsageError(f"{shown} is store {own} ({how}), not store {wanted}")
        holder = repo.stores[wanted]
        if own is None and wanted not in repo.unavailable and holder is not None:
            raise UsageError(
                f"store {wanted} is {holder.name}, which answers; give its URL as OLD to move it, or "
                f"choose a number no store answers for ({', '.join(map(str, missing)) or 'none'})"
            )
        return wanted, "--store-number"
    if own is not None:
        return own, how
    if len(missing) == 1:
        return missing[0], "the only number no store answers for"
    if old is not None and _in_store_order(repo, urls) is not None and urls.index(old) in missing:
        return urls.index(old), "the store list is in store order and this is its place"
    raise UsageError(
        f"cannot tell which store number {shown} had: "
        + (f"stores {', '.join(map(str, missing))} are all lost" if missing else "every store answers")
        + "; say which with --store-number N (one of "
        + (", ".join(map(str, missing)) or "none")
        + ")"
    )


def _in_store_order(repo: Repository, urls: list[str]) -> dict[str, int] | None:
    """Store name → place in ``urls``, if the list holds n stores and every one that answers is at
    the place of its number (as `repo init` numbered them); else None."""
    from lifeboat.store.backends import open_backend

    if len(urls) != repo.n:
        return None
    places: dict[str, int] = {}
    for place, url in enumerate(urls):
        try:
            places[open_backend(url).name] = place
        except LifeboatError:
            continue
    for number, backend in enumerate(repo.stores):
        if backend is not None and number not in repo.unavailable and places.get(backend.name) != number:
            return None
    return places


def _local_root(url: str) -> Path | None:
    """The directory a local store URL names (None for object stores)."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        return Path(unquote(parts.path)).absolute()
    if parts.scheme == "" or "://" not in url:
        return Path(url).absolute()
    return None


@contextmanager
def _new_store(url: str) -> Iterator[Backend]:
    """The new store of replace-store, left as it was found if the command fails.

    A directory it creates is removed again, and a store that was empty is emptied of what this
    run wrote; one that held an interrupted replacement keeps it (replace-store resumes on it).
    """
    root = _local_root(url)
    created: list[Path] = []
    if root is not None:
        ancestor = root
        while not ancestor.exists() and ancestor != ancestor.parent:
            created.append(ancestor)
            ancestor = ancestor.parent
    target = _backends([url], create=True)[0]
    try:
        was_empty = not target.list("")
    except BaseException:
        _remove_dirs(created)
        raise
    try:
        yield target
    except BaseException:
        if was_empty:
            with suppress(StorageError):
                for key in target.list(""):
                    target.delete(key)
        if root is not None and was_empty:  # the directories its objects went in
            for directory, _, _ in os.walk(root, topdown=False):
                if Path(directory) != root:
                    with suppress(OSError):
                        os.rmdir(directory)
        _remove_dirs(created)
        raise


def _remove_dirs(created: list[Path]) -> None:
    for directory in created:  # deepest first
        with suppress(OSError):
            directory.rmdir()


def _as_dict(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _as_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _as_dict(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_as_dict(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


# keys ---------------------------------------------------------------------------------------------


@key_app.command("add")
def key_add_command(
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    new_passphrase_file: Annotated[
        Path | None,
        typer.Option("--new-passphrase-file", help="Read the new passphrase from this file.", metavar="FILE"),
    ] = None,
) -> None:
    """Add another passphrase that opens the repository (a new key file in every store)."""
    with _open(store, passphrase_file, no_cache=True, writable=True, load_index=False) as repo:
        if new_passphrase_file is None and not sys.stdin.isatty():
            raise UsageError("give the new passphrase with --new-passphrase-file")
        new = (
            _passphrase(new_passphrase_file, confirm=True, prompt="New passphrase")
            if new_passphrase_file
            else str(typer.prompt("New passphrase", hide_input=True, confirmation_prompt=True, err=True))
        )
        name = repo.add_key(new)
        emit({"key": name}, lambda: _say(f"added key {name}"))


@key_app.command("split")
def key_split_command(
    scheme: Annotated[str, typer.Argument(help="How to split the key, e.g. 2of3 or 2:2of3,3of5.")],
    shares_dir: Annotated[
        Path | None,
        typer.Option("--shares-dir", help="Write shares (0600) and guardian envelopes here.", metavar="DIR"),
    ] = None,
    guardian: Annotated[
        list[str] | None,
        typer.Option("--guardian", "-g", help="Seal the next share to this guardian (repeatable, in order)."),
    ] = None,
    plaintext_rest: PlaintextRest = False,
    reveal: RevealShares = False,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Back up the repository master key as SLIP-39 shares (files, or envelopes sealed to guardians)."""
    from lifeboat.cli import secrets_cmds
    from lifeboat.secrets import backup, slip39

    if not reveal and shares_dir is None:
        raise UsageError("say where the shares go: --shares-dir DIR (or --reveal to print them)")
    parsed = slip39.Scheme.parse(scheme)
    # Where the shares go is checked before the repository passphrase is asked for.
    backup.check_destinations(
        secrets_cmds._home().load(), parsed, guardian or [], shares_dir, plaintext_rest=plaintext_rest
    )
    with _open(store, passphrase_file, no_cache=True, load_index=False) as repo:
        created = backup.create_share_set(
            secrets_cmds._home(),
            backup.MasterSecret(repo.master_key, backup.KIND_REPOSITORY_KEY),
            parsed,
            label=f"repository {repo.id}",
            out_dir=shares_dir,
            guardians=guardian or [],
            plaintext_rest=plaintext_rest,
        )
        data = secrets_cmds._created_json(created, reveal)
        data["repository"] = repo.id

        def human() -> None:
            _say(f"repository {repo.id[:8]}: master key split {scheme}")
            secrets_cmds._print_created(created, reveal)

        emit(data, human)


@key_app.command("recover")
def key_recover_command(
    files: Annotated[
        list[str] | None,
        typer.Argument(help="Share files or age envelopes ('-' for standard input).", metavar="SHARE..."),
    ] = None,
    identity: Annotated[
        list[Path] | None,
        typer.Option(
            "--identity", "-i", help="age identity file to open envelopes (repeatable).", metavar="KEYFILE"
        ),
    ] = None,
    new_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--new-passphrase-file",
            help=f"The new repository passphrase (else ${ENV_REPO_PASSPHRASE}, else a prompt).",
            metavar="FILE",
        ),
    ] = None,
    share_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--share-passphrase-file", help="The SLIP-39 passphrase of the shares, if any.", metavar="FILE"
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Recover the master key from SLIP-39 shares and set a new repository passphrase."""
    from lifeboat.cli import secrets_cmds
    from lifeboat.secrets import backup
    from lifeboat.store.repository import Repository

    shares = secrets_cmds._gather(files, identity)
    share_passphrase = inputs.passphrase(share_passphrase_file, False)
    # Checked against the fingerprint of the set (recorded, or stated by the share files), so a
    # wrong share passphrase is named as such; the repository's config MAC checks the rest.
    master_key = backup.recover_verified(secrets_cmds._home(), shares, passphrase=share_passphrase).secret
    backends = _lenient_backends(_store_urls(store))
    with Repository.open(backends, master_key=master_key, load_index=False) as repo:
        new = _passphrase(new_passphrase_file, confirm=True, prompt="New repository passphrase")
        name = repo.add_key(new)
        emit(
            {"repository": repo.id, "key": name},
            lambda: _say(
                f"repository {repo.id[:8]}: master key recovered; new passphrase added as key {name}"
            ),
        )


# backup ---------------------------------------------------------------------------------------------


def backup_command(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories to back up.", metavar="PATH...")],
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude", "-e", help="Skip paths matching this glob (repeatable).", metavar="PATTERN"
        ),
    ] = None,
    exclude_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--exclude-file", help="Read exclude patterns from this file (repeatable).", metavar="FILE"
        ),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag the snapshot (repeatable).", metavar="TAG")
    ] = None,
    parent: Annotated[
        str | None,
        typer.Option(
            "--parent",
            help="Compare with this snapshot (default: the newest of the same paths).",
            metavar="SNAP",
        ),
    ] = None,
    hostname: Annotated[str | None, typer.Option("--host", help="Record this hostname.")] = None,
    degraded_ok: DegradedOpt = False,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Back up files and directories into a new snapshot (content-defined chunks, deduplicated)."""
    from lifeboat.snapshot import files

    for path in paths:
        if not os.path.lexists(path):
            raise InputError(f"{path} does not exist; nothing was backed up")
    with _open(
        store,
        passphrase_file,
        cache_dir=cache_dir,
        no_cache=no_cache,
        writable=True,
        degraded_ok=degraded_ok,
        load_index=False,  # the backup reads it under its lock
    ) as repo:
        parent_ref: Any = "auto"
        if parent is not None:
            parent_ref = repo.find_manifest(parent, "files")
        with _transfer_progress(no_progress, "backup") as progress:
            result = files.backup_paths(
                repo,
                paths,
                excludes=exclude or (),
                exclude_files=exclude_file or (),
                tags=tag or (),
                parent=parent_ref,
                hostname=hostname,
                progress=progress,
            )
        manifest = result.manifest
        summary = manifest.payload.get("summary", {})
        data = {"snapshot": _snapshot_json(manifest), "summary": summary, "skipped": result.warnings}
        degraded = result.degraded_stores

        def human() -> None:
            s = summary
            where = f"{repo.n} stores" if not degraded else f"{repo.n - len(degraded)} of {repo.n} stores"
            _say(
                f"snapshot {manifest.short_id} saved: {s.get('files_new', 0)} new, "
                f"{s.get('files_changed', 0)} changed, {s.get('files_unmodified', 0)} unmodified files; "
                f"{_human_bytes(s.get('bytes_read', 0))} read, {_human_bytes(s.get('bytes_added', 0))} new data, "
                f"{_human_bytes(s.get('bytes_stored', 0))} stored across {where} "
                f"in {s.get('duration_s', 0):.1f} s"
            )
            for problem in s.get("errors", []):
                _warn(f"warning: {problem}")
            if degraded:
                missing = "; ".join(
                    f"{repo.store_name(number)}: {repo.unavailable.get(number, 'a write failed')}"
                    for number in degraded
                )
                _warn(
                    f"warning: written degraded: {len(degraded)} of {repo.n} stores missed shards "
                    f"({missing}); run `lifeboat repair` when they are back"
                )

        emit(data, human)
        for skipped in result.warnings:  # on stderr under --json too: nothing is skipped silently
            _warn(f"warning: {skipped}")
        if summary.get("errors") or result.warnings:
            raise typer.Exit(3)


# snapshots / ls / diff ------------------------------------------------------------------------------


def snapshots_command(
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """List the snapshots, oldest first."""
    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        manifests = repo.manifests("files")
        data = {
            "snapshots": [_snapshot_json(m) for m in manifests],
            "unreadable": repo.bad_manifests,
            "incomplete": sorted(repo.incomplete_manifests),
        }

        def human() -> None:
            table = Table("ID", "Time", "Host", "Tags", "Paths", "Size", box=None)
            for m in manifests:
                p = m.payload
                table.add_row(
                    *map(
                        _cell,
                        (
                            m.short_id,
                            str(p.get("time", ""))[:19].replace("T", " "),
                            p.get("hostname", ""),
                            ",".join(p.get("tags", [])),
                            "\n".join(p.get("paths", [])),
                            _human_bytes(
                                p.get("summary", {}).get(
                                    "bytes_total", p.get("summary", {}).get("bytes_read", 0)
                                )
                            ),
                        ),
                    )
                )
            stdout.print(table)
            _say(
                f"{len(manifests)} snapshots"
                + (f", and {len(repo.bad_manifests)} unreadable (see below)" if repo.bad_manifests else "")
            )

        emit(data, human)
        if repo.incomplete_manifests:
            info(
                f"note: {len(repo.incomplete_manifests)} manifest(s) left incomplete by an interrupted "
                "backup (never a snapshot; `lifeboat forget --prune` removes them)"
            )
        for key, why in repo.bad_manifests.items():
            _warn(f"error: snapshot manifest {key} cannot be read: {why}")
        if repo.bad_manifests:
            # damage, not a warning: `lifeboat check` calls unreadable manifests errors (exit 1)
            raise typer.Exit(1)


def ls_command(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id prefix or 'latest'.", metavar="SNAP")],
    path: Annotated[str | None, typer.Argument(help="Only this path and below.")] = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """List the files of a snapshot."""
    from lifeboat.snapshot import restore

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        manifest = restore.resolve_snapshot(repo, snapshot)
        entries = list(restore.ls(repo, manifest, path))
        data = {
            "snapshot": manifest.id.hex(),
            "entries": [
                {
                    "path": p,
                    "type": node.type,
                    "mode": node.mode,
                    "size": node.size,
                    "mtime_ns": node.mtime_ns,
                    **({"target": node.target} if node.target is not None else {}),
                    **(
                        {"major": node.major, "minor": node.minor}
                        if node.type in ("chardev", "blockdev")
                        else {}
                    ),
                }
                for p, node in entries
            ],
        }

        def human() -> None:
            for p, node in entries:
                suffix = (
                    f" -> {node.target}" if node.type == "symlink" else ("/" if node.type == "dir" else "")
                )
                size = (
                    f"{node.major}, {node.minor}" if node.type in ("chardev", "blockdev") else node.size or 0
                )
                _say(f"{_mode_string(node.type, node.mode)} {size:>12} {p}{suffix}")

        emit(data, human)


def _mode_string(kind: str, mode: int) -> str:
    first = {"dir": "d", "symlink": "l", "fifo": "p", "chardev": "c", "blockdev": "b"}.get(kind, "-")
    bits = "".join(ch if mode & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))
    return first + bits


def diff_command(
    first: Annotated[str, typer.Argument(help="The older snapshot.", metavar="SNAP1")],
    second: Annotated[str, typer.Argument(help="The newer snapshot.", metavar="SNAP2")],
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Show what changed between two snapshots (+ added, - removed, M modified, T type, U metadata)."""
    from lifeboat.snapshot import restore

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        a, b = restore.resolve_snapshot(repo, first), restore.resolve_snapshot(repo, second)
        changes = restore.diff(repo, a, b)
        data = {
            "from": a.id.hex(),
            "to": b.id.hex(),
            "changes": [{"path": c.path, "kind": c.kind} for c in changes],
        }

        def human() -> None:
            for change in changes:
                _say(f"{change.kind}  {change.path}")
            counts = {kind: sum(1 for c in changes if c.kind == kind) for kind in "+-MTU"}
            _say(
                f"{counts['+']} added, {counts['-']} removed, {counts['M']} modified, "
                f"{counts['T']} changed type, {counts['U']} metadata only"
            )

        emit(data, human)


# restore ------------------------------------------------------------------------------------------------


def restore_command(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id prefix or 'latest'.", metavar="SNAP")],
    target: Annotated[
        Path, typer.Option("--target", "-t", help="Restore into this directory.", metavar="DIR")
    ],
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include", "-i", help="Restore only paths matching this (repeatable).", metavar="PATTERN"
        ),
    ] = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Restore a snapshot: contents bit-exact, modes, mtimes, symlinks."""
    from lifeboat.snapshot import restore

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        manifest = restore.resolve_snapshot(repo, snapshot)
        started = time.monotonic()
        with _transfer_progress(no_progress, "restore") as progress:
            result = restore.restore(repo, manifest, target, includes=include or (), progress=progress)
        elapsed = time.monotonic() - started
        data = {
            "snapshot": manifest.id.hex(),
            "target": str(target),
            "result": _as_dict(result),
            "seconds": elapsed,
        }

        def human() -> None:
            if not result.errors:
                _say(
                    f"restored snapshot {manifest.short_id} to {target}: {result.files} files, "
                    f"{_human_bytes(result.bytes_written)} in {elapsed:.1f} s"
                )
            for problem in result.errors:
                _warn(f"error: {problem}")
            for problem in result.warnings:
                _warn(f"warning: {problem}")
            if result.errors:
                _warn(
                    f"error: restore of snapshot {manifest.short_id} to {target} FAILED for "
                    f"{len(result.errors)} entries (listed above); {result.files} of {result.files_total} "
                    f"files restored ({_human_bytes(result.bytes_written)}); the others are not in {target}"
                )

        emit(data, human)
        if result.errors:
            raise typer.Exit(1)
        if result.warnings:
            raise typer.Exit(3)


# check / repair --------------------------------------------------------------------------------------


def check_command(
    read_data: Annotated[
        bool, typer.Option("--read-data", help="Read, authenticate and decode every shard of every object.")
    ] = False,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Check the repository: structure, and with --read-data every shard. Exit 0 healthy, 3 degraded, 1 damaged."""
    from lifeboat.reachability import check_with_snapshots

    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        with _phase_progress(no_progress, "check") as progress:
            checked = check_with_snapshots(repo, read_data=read_data, progress=progress)
        report = checked.report
        data = report.to_json()
        data["snapshot_errors"] = checked.snapshot_errors
        data["status"] = checked.status

        def human() -> None:
            _print_check(repo, report, checked.snapshot_errors)

        emit(data, human)
        if checked.status == "error":
            raise typer.Exit(1)
        if report.status == "degraded":
            raise typer.Exit(3)


def _print_check(repo: Repository, report: Any, snapshot_errors: list[str]) -> None:
    table = Table("Store", "Name", "State", "Objects", "Missing", "Corrupt", box=None)
    for health in report.stores:
        table.add_row(
            *map(
                _cell,
                (
                    health.store,
                    health.name,
                    "ok" if health.reachable else f"DOWN: {health.error}",
                    health.objects,
                    health.missing,
                    health.corrupt,
                ),
            )
        )
    stdout.print(table)
    _say(
        f"packs: {report.packs_total} total, {report.packs_healthy} healthy, "
        f"{report.packs_degraded} degraded, {report.packs_lost} lost"
        + ("" if report.read_data else " (shards counted, not read; --read-data reads them)")
    )
    for obj in report.objects:
        lost = len(obj.missing) + len(obj.corrupt)
        detail = ", ".join(
            [f"store {i} missing" for i in sorted(obj.missing)]
            + [f"store {i} corrupt ({why})" for i, why in sorted(obj.corrupt.items())]
        )
        _say(f"  {obj.status}: {obj.key} ({lost} of {repo.n} shards lost: {detail})")
    for warning in report.warnings:
        _warn(f"warning: {warning}")
    for problem in [*report.errors, *snapshot_errors]:
        _warn(f"error: {problem}")
    status = "error" if snapshot_errors else report.status
    verdict = {
        "healthy": "no errors: every object has all its shards",
        "degraded": "degraded: everything can still be read; run `lifeboat repair` to rebuild the lost shards",
        "error": "ERRORS: some data cannot be read (see above)",
    }[status]
    _say(verdict)


def repair_command(
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be rebuilt; write nothing.")
    ] = False,
    rebuild_index: Annotated[
        bool,
        typer.Option(
            "--rebuild-index",
            help="Read every pack's table and write a fresh index of every blob found, then remove the "
            "old index objects (for an index damaged beyond repair).",
        ),
    ] = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Rebuild missing or corrupt shards from the surviving ones onto the stores that lost them."""
    from lifeboat.store.repair import repair_repository

    urls = _store_urls(store)
    with (
        _open(store, passphrase_file, no_cache=True, writable=True, degraded_ok=True) as repo,
        repo.lock(exclusive=True, operation="repair"),
    ):
        if rebuild_index:
            _rebuild_index(repo, dry_run, no_progress)
            return
        adopted = _adopt_stores(repo, urls, dry_run)
        if dry_run and repo.unavailable:
            report = adopted  # the stores to adopt are not written in a dry run: nothing more to read
        else:
            with _phase_progress(no_progress, "repair") as progress:
                report = repair_repository(repo, progress=progress, dry_run=dry_run)
            report.merge(adopted)
        data = report.to_json()

        def human() -> None:
            verb = "would rebuild" if dry_run else "rebuilt"
            _say(
                f"{verb} {report.shards_total} shards of {report.objects_rebuilt} objects "
                f"({_human_bytes(report.bytes_total)}; {report.objects_checked} objects checked), "
                f"{report.configs_rewritten} config(s), {report.key_files_copied} key file copies"
            )
            for number in sorted(set(report.shards_rewritten) | set(report.stores_rebuilt)):
                whole = ""
                if number in report.stores_rebuilt:
                    whole = (
                        " (would be rebuilt whole; not counted in a dry run)"
                        if dry_run
                        else " (rebuilt whole)"
                    )
                _say(
                    f"  {repo.store_name(number)}: {report.shards_rewritten.get(number, 0)} shards, "
                    f"{_human_bytes(report.bytes_rewritten.get(number, 0))}{whole}"
                )
            if report.objects_incomplete:
                _say(
                    f"{len(report.objects_incomplete)} incomplete objects left by interrupted writes "
                    "(nothing refers to them): `lifeboat forget --prune` removes them"
                )
            for key in report.objects_lost:
                _warn(f"error: {key} has fewer than {repo.k} good shards and cannot be rebuilt")

        emit(data, human)
        if report.objects_lost:
            raise typer.Exit(1)


def _rebuild_index(repo: Repository, dry_run: bool, no_progress: bool) -> None:
    from lifeboat.store.repair import rebuild_index

    with _phase_progress(no_progress, "rebuild index") as progress:
        report = rebuild_index(repo, progress=progress, dry_run=dry_run)

    def human() -> None:
        write, remove = ("would write", "would remove") if dry_run else ("wrote", "removed")
        _say(
            f"read {report.packs_read} packs, {report.blobs_indexed} blobs indexed, "
            f"{len(report.packs_unreadable)} packs unreadable; {write} {report.indexes_written} index "
            f"object(s), {remove} {report.indexes_removed} old one(s)"
        )
        if report.packs_kept_from_old_index:
            _say(f"{report.packs_kept_from_old_index} unreadable pack(s) keep their entry from an old index")
        for key in report.indexes_kept:
            _warn(f"warning: {key} cannot be read and is kept while a store is down")
        for key, why in sorted(report.packs_unreadable.items()):
            _warn(f"error: pack {key} cannot be read: {why}")
        if not dry_run:
            _say("next: `lifeboat check --read-data`")

    emit(report.to_json(), human)
    if report.packs_unreadable:
        raise typer.Exit(1)


def _adopt_stores(repo: Repository, urls: list[str], dry_run: bool) -> RepairReport:
    """Wiped stores, and stores whose config is damaged, take the store numbers nobody answers for.

    A damaged store must hold this repository's key files (so it is ours, not a stranger's); its
    own shards say its number if one is intact, it gets its config back and keeps every valid
    shard it has (replace-store resumes on it). Empty ones take the free numbers (their place in
    the store list when that list is in store order). Every store must be accounted for, else
    nothing is written and the command says how to rebuild the rest elsewhere.
    """
    from lifeboat.store.config import CONFIG_KEY, encode_config
    from lifeboat.store.errors import StoreDown
    from lifeboat.store.repair import RepairReport, assign_numbers, replace_store

    merged = RepairReport(dry_run=dry_run)
    if not repo.unavailable:
        return merged
    missing = sorted(repo.unavailable)
    live = [s for n, s in enumerate(repo.stores) if s is not None and n not in repo.unavailable]
    ours = set(live[0].list("keys/")) if live else set()
    damaged = [store for store in repo.damaged_stores if ours & set(store.list("keys/"))]
    plan = assign_numbers(repo, repo.blank_stores + damaged, _in_store_order(repo, urls))
    left = sorted(set(missing) - {number for _, number, _ in plan})
    if left:
        raise StoreDown(
            f"store(s) {', '.join(map(str, left))} of {repo.n} are unavailable; repair writes to every "
            "store. Bring them back, or rebuild each onto a new store with `lifeboat repo replace-store "
            "OLD NEW` (or `--store-number N NEW`), then run repair again"
        )
    for store, number, why in plan:
        state = "is empty" if store in repo.blank_stores else "has a damaged config"
        info(f"store {store.name} {state}: rebuilding it as store {number} ({why})")
        merged.stores_rebuilt[number] = store.name
        if dry_run:
            continue
        if store not in repo.blank_stores:
            store.put(CONFIG_KEY, encode_config(repo.config.for_store(number), repo.master_key))
        merged.merge(replace_store(repo, number, store))
        repo.stores[number] = store
        del repo.unavailable[number]
    return merged


# forget / prune ------------------------------------------------------------------------------------


def forget_command(
    keep_last: Annotated[
        int, typer.Option("--keep-last", help="Keep the N newest snapshots.", metavar="N")
    ] = 0,
    keep_hourly: Annotated[
        int, typer.Option("--keep-hourly", metavar="N", help="Keep the newest of each of N hours.")
    ] = 0,
    keep_daily: Annotated[
        int, typer.Option("--keep-daily", metavar="N", help="Keep the newest of each of N days.")
    ] = 0,
    keep_weekly: Annotated[int, typer.Option("--keep-weekly", metavar="N", help="... of N ISO weeks.")] = 0,
    keep_monthly: Annotated[int, typer.Option("--keep-monthly", metavar="N", help="... of N months.")] = 0,
    keep_yearly: Annotated[int, typer.Option("--keep-yearly", metavar="N", help="... of N years.")] = 0,
    keep_within: Annotated[
        str | None,
        typer.Option("--keep-within", metavar="DURATION", help="Keep all newer than this (e.g. 7d, 1y2m)."),
    ] = None,
    keep_tag: Annotated[
        list[str] | None,
        typer.Option("--keep-tag", metavar="TAG", help="Keep snapshots with this tag (repeatable)."),
    ] = None,
    prune_after: Annotated[bool, typer.Option("--prune", help="Then remove data no snapshot needs.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be forgotten; change nothing.")
    ] = False,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Forget snapshots by a retention policy, and with --prune remove the data they alone used."""
    from datetime import UTC, datetime

    from lifeboat.reachability import reachable_blobs
    from lifeboat.snapshot import retention
    from lifeboat.store.errors import RepositoryError
    from lifeboat.store.prune import prune

    for name, value in (
        ("--keep-last", keep_last),
        ("--keep-hourly", keep_hourly),
        ("--keep-daily", keep_daily),
        ("--keep-weekly", keep_weekly),
        ("--keep-monthly", keep_monthly),
        ("--keep-yearly", keep_yearly),
    ):
        if value < 0:
            raise UsageError(f"{name} must not be negative")
    policy = retention.RetentionPolicy(
        last=keep_last,
        hourly=keep_hourly,
        daily=keep_daily,
        weekly=keep_weekly,
        monthly=keep_monthly,
        yearly=keep_yearly,
        within=retention.parse_duration(keep_within) if keep_within else None,
        tags=frozenset(keep_tag or ()),
    )
    if policy.empty():
        raise UsageError("no --keep-* option given; refusing to forget every snapshot")
    with (
        _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache, writable=not dry_run) as repo,
        nullcontext() if dry_run else repo.lock(exclusive=True, operation="forget"),
    ):
        everything = repo.manifests()
        # forget applies to file snapshots; record snapshots and journals are always kept
        manifests = [m for m in everything if m.payload.get("kind") == "files"]
        others = [m for m in everything if m.payload.get("kind") != "files"]
        by_id = {m.id.hex(): m for m in manifests}
        refs = [
            retention.SnapshotRef(
                id=m.id.hex(),
                time=m.time,
                tags=frozenset(m.payload.get("tags", [])),
                group=f"{m.payload.get('hostname', '')}\0{chr(0).join(sorted(m.payload.get('paths', [])))}",
            )
            for m in manifests
        ]
        decision = retention.apply_policy(refs, policy, now=datetime.now(UTC))
        if not dry_run:
            for ref in decision.forget:
                repo.delete_manifest(by_id[ref.id].id)
        report_data: dict[str, Any] = {
            "keep": [{"id": r.id, "reasons": decision.reasons.get(r.id, [])} for r in decision.keep],
            "forget": [r.id for r in decision.forget],
            "dry_run": dry_run,
        }
        prune_report = None
        if prune_after:
            kept = [by_id[r.id] for r in decision.keep] + others
            reach = reachable_blobs(repo, kept)
            if reach.errors:
                raise RepositoryError(
                    "refusing to prune: some kept snapshots cannot be walked ("
                    + "; ".join(reach.errors[:3])
                    + ")"
                )
            prune_report = prune(repo, reach.blobs, dry_run=dry_run)
            report_data["prune"] = _as_dict(prune_report)

        def human() -> None:
            verb = "would forget" if dry_run else "forgot"
            for ref in decision.keep:
                _say(
                    f"keep    {ref.id[:8]}  {ref.time:%Y-%m-%d %H:%M:%S}  {', '.join(decision.reasons.get(ref.id, []))}"
                )
            for ref in decision.forget:
                _say(f"{'forget':7} {ref.id[:8]}  {ref.time:%Y-%m-%d %H:%M:%S}")
            _say(f"{verb} {len(decision.forget)} snapshots, kept {len(decision.keep)}")
            if prune_report is not None:
                _say(
                    f"prune: {prune_report.packs_deleted} packs deleted, {prune_report.packs_repacked} repacked, "
                    f"{_human_bytes(prune_report.bytes_freed)} freed"
                )

        emit(report_data, human)


ProgressFn = Callable[[str, int, int], None]
