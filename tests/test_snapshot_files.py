"""File snapshots: backup, parent reuse, excludes, ls, diff, restore (includes, hostile trees, lost packs)."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.errors import InputError
from lifeboat.snapshot import files, restore
from lifeboat.snapshot.files import BackupProgress, Excludes, backup_paths, load_exclude_file
from lifeboat.snapshot.restore import RestoreProgress, diff, ls, manifest_tree_id
from lifeboat.snapshot.tree import Node, decode_tree, encode_tree
from lifeboat.store.backends import MemoryBackend
from lifeboat.store.config import ChunkerParams
from lifeboat.store.errors import FormatError
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.repository import BLOB_DATA, BLOB_TREE, Manifest, Repository
from repo_helpers import assert_same_tree, make_tree, restored_root

MiB = 1 << 20
SMALL_CHUNKS = ChunkerParams(min_size=256, avg_size=1024, max_size=8192)


@pytest.fixture
def stores() -> list[MemoryBackend]:
    return [MemoryBackend(f"mem{i}") for i in range(5)]


@pytest.fixture
def repo(stores: list[MemoryBackend]) -> Iterator[Repository]:
    with Repository.init(stores, "pw", k=3, kdf=TEST_KDF, pack_size=MiB, chunker=SMALL_CHUNKS) as repository:
        yield repository


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src", big=200_000)


def _paths(repo: Repository, manifest: Manifest) -> dict[str, Node]:
    return dict(ls(repo, manifest))


def _count_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []
    real = files._open_file

    def counting(path: str) -> int:
        opened.append(path)
        return real(path)

    monkeypatch.setattr(files, "_open_file", counting)
    return opened


# --- backup and restore ------------------------------------------------------------------------


def test_backup_restore_is_bit_exact(repo: Repository, src: Path, tmp_path: Path) -> None:
    seen: list[BackupProgress] = []
    result = backup_paths(repo, [src], hostname="h", tags=["t1"], progress=seen.append)
    payload = result.manifest.payload
    assert payload["kind"] == "files" and payload["hostname"] == "h" and payload["tags"] == ["t1"]
    assert payload["paths"] == [str(src)] and payload["parent"] is None
    summary = result.summary
    assert summary["files_new"] == 20 and summary["files_unmodified"] == 0 and summary["error_count"] == 0
    assert summary["dirs"] == 5 and summary["bytes_read"] == summary["bytes_total"] > 200_000
    assert summary["blobs_new"] > 200 // 9  # the big file alone is many chunks
    assert result.errors == [] and result.warnings == [] and result.degraded_stores == []
    assert seen and seen[-1].files_done == 20 and seen[-1].bytes_done == summary["bytes_total"]

    # the root tree nests the parents of the backed-up path
    listing = _paths(repo, result.manifest)
    parents = src.parts[1:-1]
    for depth in range(1, len(parents) + 1):
        assert listing["/" + "/".join(parents[:depth])].type == "dir"
    assert listing[f"{src}/big.bin"].size == 200_000
    assert len(listing[f"{src}/big.bin"].content) > 20
    assert listing[f"{src}/link-to-big"].target == "big.bin"

    # a fresh process (reopened repository) restores everything, byte for byte
    progress: list[RestoreProgress] = []
    with Repository.open(repo.stores, "pw") as again:  # type: ignore[arg-type]
        manifest = restore.resolve_snapshot(again, result.manifest.id.hex()[:8])
        outcome = restore.restore(again, manifest, tmp_path / "out", progress=progress.append)
    assert outcome.errors == []
    assert outcome.files == 20 and outcome.symlinks == 3
    assert outcome.bytes_written == summary["bytes_total"]
    assert progress[-1].files_done == progress[-1].files_total == 20
    assert_same_tree(src, restored_root(tmp_path / "out", src))
    assert not [p for p in (tmp_path / "out").rglob(".lifeboat-restore-*")]
    # the parents were restored with the real directories' modes
    assert stat.S_IMODE(os.stat(tmp_path / "out" / src.parts[1]).st_mode) == stat.S_IMODE(
        os.stat("/" + src.parts[1]).st_mode
    )


def test_restore_over_existing_files_replaces_them(repo: Repository, src: Path, tmp_path: Path) -> None:
    manifest = backup_paths(repo, [src]).manifest
    target = tmp_path / "out"
    where = restored_root(target, src)
    where.mkdir(parents=True)
    (where / "big.bin").write_bytes(b"old")
    (where / "run.sh").symlink_to("/etc/passwd")
    assert restore.restore(repo, manifest, target).errors == []
    assert_same_tree(src, where)


def test_backup_of_files_symlinks_and_several_roots(repo: Repository, src: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_bytes(b"x" * 5000)
    result = backup_paths(repo, [src / "link-to-big", other, src / "docs", src / "docs" / "deep"])
    assert result.manifest.payload["paths"] == sorted(
        [str(src / "docs"), str(src / "link-to-big"), str(other)]
    )
    listing = _paths(repo, result.manifest)
    assert listing[f"{src}/link-to-big"].type == "symlink"
    assert f"{src}/big.bin" not in listing
    assert listing[str(other)].size == 5000
    assert f"{src}/docs/deep/deeper/leaf.txt" in listing
    out = tmp_path / "out"
    assert restore.restore(repo, result.manifest, out).errors == []
    assert (restored_root(out, src) / "link-to-big").is_symlink()
    assert (restored_root(out, other)).read_bytes() == b"x" * 5000


def test_missing_path_is_refused_before_anything_is_written(repo: Repository, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot back up"):
        backup_paths(repo, [tmp_path / "nope"])
    assert repo.manifests() == []


def test_special_and_unreadable_entries_are_reported(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "src"
    root.mkdir()
    _bind_socket(root / "sock")
    (root / "secret").write_bytes(b"s")
    (root / "fine").write_bytes(b"f")
    real = files._open_file

    def deny(path: str) -> int:
        if path.endswith("/secret"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(files, "_open_file", deny)
    result = backup_paths(repo, [root])
    assert result.errors == [f"{root}/secret: Permission denied"]
    assert result.warnings == [f"{root}/sock: skipped (socket; not backed up)"]
    assert result.summary["error_count"] == 1 and result.summary["errors"] == result.errors
    listing = _paths(repo, result.manifest)
    assert f"{root}/fine" in listing and f"{root}/secret" not in listing and f"{root}/sock" not in listing


def _bind_socket(path: Path) -> None:
    """Leave a Unix socket file at ``path`` (the socket itself is closed again)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))


def test_fifos_and_devices_are_backed_up_and_restored(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "src"
    root.mkdir()
    os.mkfifo(root / "pipe")
    os.chmod(root / "pipe", 0o640)
    _bind_socket(root / "sock")
    as_root = os.geteuid() == 0
    null = os.stat("/dev/null").st_rdev
    if as_root:  # a character device with the numbers of /dev/null
        os.mknod(root / "null", stat.S_IFCHR | 0o620, null)
    for number, name in enumerate(sorted(os.listdir(root))):
        os.utime(root / name, ns=(1_600_000_000_000_000_000 + number, 1_600_000_000_000_000_000 + number))
    result = backup_paths(repo, [root])
    assert result.warnings == [f"{root}/sock: skipped (socket; not backed up)"]
    listing = _paths(repo, result.manifest)
    assert listing[f"{root}/pipe"].type == "fifo" and listing[f"{root}/pipe"].mode == 0o640
    assert f"{root}/sock" not in listing
    if as_root:
        device = listing[f"{root}/null"]
        assert (device.type, device.major, device.minor) == ("chardev", os.major(null), os.minor(null))

    out = tmp_path / "out"
    restored = restore.restore(repo, result.manifest, out)
    assert restored.errors == [] and restored.warnings == []
    back = restored_root(out, root)
    for name in os.listdir(root):
        if name == "sock":
            continue
        want, got = os.lstat(root / name), os.lstat(back / name)
        assert stat.S_IFMT(got.st_mode) == stat.S_IFMT(want.st_mode), name
        assert stat.S_IMODE(got.st_mode) == stat.S_IMODE(want.st_mode), name
        assert got.st_mtime_ns == want.st_mtime_ns, name
        assert got.st_rdev == want.st_rdev, name
    assert not (back / "sock").exists()
    assert restored.specials == (2 if as_root else 1)

    # Without root a device node is named, not created, and everything else is restored.
    if as_root:
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
        again = restore.restore(repo, result.manifest, tmp_path / "unprivileged")
        assert again.errors == []
        assert again.warnings == [
            f"{root}/null: character device {os.major(null)}:{os.minor(null)} not created "
            "(creating device nodes needs root)"
        ]
        plain = restored_root(tmp_path / "unprivileged", root)
        assert stat.S_ISFIFO(os.lstat(plain / "pipe").st_mode) and not (plain / "null").exists()

    # diff sees a FIFO go and a device change its numbers
    (root / "pipe").unlink()
    if as_root:
        (root / "null").unlink()
        os.mknod(root / "null", stat.S_IFCHR | 0o620, os.makedev(1, 5))
    changes = {
        (c.path, c.kind, c.type) for c in diff(repo, result.manifest, backup_paths(repo, [root]).manifest)
    }
    assert (f"{root}/pipe", "-", "fifo") in changes
    if as_root:
        assert (f"{root}/null", "M", "chardev") in changes


def test_deep_directories_need_no_recursion(repo: Repository, tmp_path: Path) -> None:
    root = tmp_path / "deep"
    fd = os.open(tmp_path, os.O_RDONLY)
    os.mkdir("deep", dir_fd=fd)
    parent = os.open("deep", os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    for _ in range(1100):  # deeper than Python's recursion limit
        os.mkdir("d", dir_fd=parent)
        child = os.open("d", os.O_RDONLY, dir_fd=parent)
        os.close(parent)
        parent = child
    os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=parent))
    os.close(parent)
    manifest = backup_paths(repo, [root]).manifest
    entries = _paths(repo, manifest)
    assert sum(1 for path in entries if path.endswith("/leaf")) == 1
    out = tmp_path / "out"
    try:
        assert restore.restore(repo, manifest, out).errors == []
        assert (restored_root(out, root) / "/".join(["d"] * 1100) / "leaf").exists()
    finally:  # pytest's recursive rmtree cannot remove these
        _remove_chain(root, 1100)
        _remove_chain(restored_root(out, root), 1100)


def _remove_chain(top: Path, depth: int) -> None:
    """Remove ``top/d/d/.../d/leaf`` (``depth`` levels) without recursion."""
    fds = [os.open(top, os.O_RDONLY)]
    for _ in range(depth):
        fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
    os.unlink("leaf", dir_fd=fds[-1])
    for level in range(depth, 0, -1):
        os.close(fds[level])
        os.rmdir("d", dir_fd=fds[level - 1])
    os.close(fds[0])


# --- parent reuse ------------------------------------------------------------------------------------


def test_parent_reuse_skips_unchanged_files(
    repo: Repository, src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backup_paths(repo, [src], hostname="h")
    opened = _count_opens(monkeypatch)
    second = backup_paths(repo, [src], hostname="h")
    assert opened == []
    assert second.parent is not None and second.parent.id == first.manifest.id
    assert second.manifest.payload["parent"] == first.manifest.id.hex()
    assert second.summary["files_unmodified"] == 20 and second.summary["bytes_read"] == 0
    assert second.summary["blobs_new"] == 0
    assert second.manifest.payload["tree"] == first.manifest.payload["tree"]

    (src / "docs" / "note-3.txt").write_bytes(b"changed")
    (src / "new.txt").write_bytes(b"new")
    third = backup_paths(repo, [src], hostname="h")
    assert sorted(opened) == sorted([f"{src}/docs/note-3.txt", f"{src}/new.txt"])
    assert (
        third.summary["files_new"],
        third.summary["files_changed"],
        third.summary["files_unmodified"],
    ) == (
        1,
        1,
        19,
    )
    # another host, or another set of paths, or no parent: no reuse
    opened.clear()
    other = backup_paths(repo, [src], hostname="other")
    assert other.parent is None and other.summary["files_new"] == 21 and len(opened) == 21
    opened.clear()
    backup_paths(repo, [src], hostname="h", parent=None)
    assert len(opened) == 21
    out = tmp_path / "out"
    assert restore.restore(repo, third.manifest, out).errors == []
    assert_same_tree(src, restored_root(out, src))


def test_parent_reuse_needs_the_blobs_in_the_index(
    repo: Repository, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backup_paths(repo, [src], hostname="h")
    node = _paths(repo, first.manifest)[f"{src}/empty.txt"]
    assert node.content == ()
    big = _paths(repo, first.manifest)[f"{src}/big.bin"]
    real_contains = type(repo.index).__contains__

    def forget_big(index: object, blob_id: object) -> bool:
        return blob_id != big.content[0] and real_contains(index, blob_id)  # type: ignore[arg-type]

    monkeypatch.setattr(type(repo.index), "__contains__", forget_big)
    opened = _count_opens(monkeypatch)
    backup_paths(repo, [src], hostname="h")
    assert opened == [f"{src}/big.bin"]


# --- excludes ----------------------------------------------------------------------------------------


def test_exclude_rules() -> None:
    rules = Excludes(["*.tmp", "cache/", "/srv/data/skip", "docs/*.bak", "  "])
    assert rules.excluded("/a/b/x.tmp", False)
    assert rules.excluded("/a/cache", True) and not rules.excluded("/a/cache", False)
    assert rules.excluded("/srv/data/skip", True) and not rules.excluded("/srv/data/skipped", True)
    assert rules.excluded("/home/u/docs/old.bak", False) and not rules.excluded("/home/u/old.bak", False)
    assert not rules.excluded("/a/b/x.txt", False)
    assert not Excludes([])


def test_excludes_and_exclude_file(repo: Repository, src: Path, tmp_path: Path) -> None:
    exclude_file = tmp_path / "excludes"
    exclude_file.write_text("# comment\n\n  *.sh  \ndeep/\n")
    assert load_exclude_file(exclude_file) == ["*.sh", "deep/"]
    result = backup_paths(repo, [src], excludes=[f"{src}/big.bin", "note-1*"], exclude_files=[exclude_file])
    names = {
        path.removeprefix(f"{src}/") for path in _paths(repo, result.manifest) if path.startswith(f"{src}/")
    }
    assert "big.bin" not in names and "run.sh" not in names and "docs/deep" not in names
    assert "docs/note-1.txt" not in names and "docs/note-10.txt" not in names
    assert "docs/note-2.txt" in names and "link-to-big" in names and "ledger.jsonl" in names


# --- ls and diff -------------------------------------------------------------------------------------


def test_ls_a_path(repo: Repository, src: Path) -> None:
    manifest = backup_paths(repo, [src]).manifest
    entries = list(ls(repo, manifest, f"{src}/docs/deep"))
    assert [path for path, _ in entries] == [
        f"{src}/docs/deep",
        f"{src}/docs/deep/deeper",
        f"{src}/docs/deep/deeper/leaf.txt",
    ]
    assert [path for path, _ in ls(repo, manifest, f"{src}/run.sh/")] == [f"{src}/run.sh"]
    with pytest.raises(InputError, match="not in snapshot"):
        ls(repo, manifest, f"{src}/nope")
    with pytest.raises(InputError, match="not in snapshot"):
        ls(repo, manifest, f"{src}/run.sh/x")


def test_diff(repo: Repository, src: Path) -> None:
    first = backup_paths(repo, [src]).manifest
    assert diff(repo, first, first) == []
    (src / "docs" / "note-1.txt").write_bytes(b"modified")
    (src / "run.sh").chmod(0o700)
    (src / "ledger.jsonl").unlink()
    (src / "empty-dir" / "added").write_bytes(b"+")
    (src / "dangling").unlink()
    (src / "dangling").mkdir()
    (src / "dangling" / "inside").write_bytes(b"")
    second = backup_paths(repo, [src]).manifest
    changes = {(change.path.removeprefix(str(src)), change.kind) for change in diff(repo, first, second)}
    assert changes == {
        ("/docs/note-1.txt", "M"),
        ("/run.sh", "U"),
        ("/ledger.jsonl", "-"),
        ("/empty-dir", "U"),
        ("/empty-dir/added", "+"),
        ("/dangling", "T"),
        ("/dangling/inside", "+"),
        ("", "U"),
    }


# --- restore: includes, safety, failures ------------------------------------------------------------


def test_restore_includes(repo: Repository, src: Path, tmp_path: Path) -> None:
    manifest = backup_paths(repo, [src]).manifest
    out = tmp_path / "out"
    result = restore.restore(repo, manifest, out, includes=[f"{src}/docs/deep", "*/note-1?.txt"])
    assert result.errors == []
    where = restored_root(out, src)
    found = sorted(str(p.relative_to(where)) for p in where.rglob("*"))
    assert found == [
        "docs",
        "docs/deep",
        "docs/deep/deeper",
        "docs/deep/deeper/leaf.txt",
        "docs/note-10.txt",
        "docs/note-11.txt",
    ]
    assert (where / "docs").stat().st_mtime_ns == (src / "docs").stat().st_mtime_ns
    with pytest.raises(InputError, match="matches --include"):
        restore.restore(repo, manifest, tmp_path / "none", includes=["/no/such/path"])
    assert not (tmp_path / "none").exists()


def _hostile_snapshot(repo: Repository, name: str, *, nested: bool) -> Manifest:
    bad = {"name": name, "type": "file", "mode": 0o644, "mtime_ns": 1, "size": 4, "inode": 0, "device": 0}
    with repo.writer() as writer:
        data_id, _ = writer.add_blob(BLOB_DATA, b"evil")
        bad["content"] = [data_id.hex()]
        hostile = json.dumps(
            {"format": "lifeboat-tree", "version": 1, "nodes": [bad]}, sort_keys=True, separators=(",", ":")
        ).encode()
        hostile_id, _ = writer.add_blob(BLOB_TREE, hostile)
        ok = Node("ok", "file", 0o644, 1, 4, content=(data_id,))
        if nested:
            root = encode_tree([Node("d", "dir", 0o755, 1, subtree=hostile_id), ok])
            root_id, _ = writer.add_blob(BLOB_TREE, root)
        else:
            root_id = hostile_id
    return repo.put_manifest({"kind": "files", "paths": ["/x"], "tree": root_id.hex()})


@pytest.mark.parametrize("name", ["..", "../escaped", "a/../../escaped"])
def test_hostile_tree_names_are_refused(repo: Repository, tmp_path: Path, name: str) -> None:
    target = tmp_path / "sandbox" / "target"
    nested = _hostile_snapshot(repo, name, nested=True)
    result = restore.restore(repo, nested, target)
    assert (
        len(result.errors) == 1 and "path escape" in result.errors[0] and result.errors[0].startswith("/d:")
    )
    assert (target / "ok").read_bytes() == b"evil"
    assert sorted(p.name for p in (tmp_path / "sandbox").iterdir()) == ["target"]
    assert sorted(p.name for p in target.rglob("*")) == ["d", "ok"]
    top = _hostile_snapshot(repo, name, nested=False)
    with pytest.raises(FormatError, match="path escape"):
        restore.restore(repo, top, tmp_path / "sandbox2")
    assert not (tmp_path / "sandbox2").exists()
    with pytest.raises(FormatError):
        decode_tree(repo.load_blob(manifest_tree_id(top)))


def test_restore_never_follows_a_symlink_in_the_target(repo: Repository, src: Path, tmp_path: Path) -> None:
    manifest = backup_paths(repo, [src / "docs"]).manifest
    target = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    target.mkdir()
    (target / src.parts[1]).symlink_to(outside)
    result = restore.restore(repo, manifest, target)
    assert len(result.errors) == 1 and "symlink" in result.errors[0]
    assert list(outside.iterdir()) == []
    assert result.files == 0


def test_lost_pack_fails_only_its_files(repo: Repository, tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    (root / "a.txt").write_bytes(os.urandom(3000))
    backup_paths(repo, [root])
    (root / "b.txt").write_bytes(os.urandom(3000))
    (root / "empty").write_bytes(b"")
    manifest = backup_paths(repo, [root]).manifest
    b_blobs = _paths(repo, manifest)[f"{root}/b.txt"].content
    lost = {location.pack for blob in b_blobs if (location := repo.index.lookup(blob)) is not None}
    a_location = repo.index.lookup(_paths(repo, manifest)[f"{root}/a.txt"].content[0])
    assert len(lost) == 1 and a_location is not None and a_location.pack not in lost
    for pack in lost:
        for store in repo.stores[:3]:
            assert store is not None
            store.delete(repo.pack_key(pack))
    with Repository.open(repo.stores, "pw") as again:  # type: ignore[arg-type]
        out = tmp_path / "out"
        result = restore.restore(again, manifest, out)
    where = restored_root(out, root)
    assert len(result.errors) == 1 and result.errors[0].startswith(f"{root}/b.txt: not restored: pack ")
    assert sorted(p.name for p in where.iterdir()) == ["a.txt", "empty"]
    assert (where / "a.txt").read_bytes() == (root / "a.txt").read_bytes()
    assert result.files == 2


def test_interrupted_restore_leaves_no_temporary_files(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "src"
    root.mkdir()
    (root / "big").write_bytes(os.urandom(3 * MiB // 2))  # spans two packs of 1 MiB
    manifest = backup_paths(repo, [root]).manifest
    content = _paths(repo, manifest)[f"{root}/big"].content
    packs = list(dict.fromkeys(location.pack for blob in content if (location := repo.index.lookup(blob))))
    assert len(packs) == 2
    real = repo.read_pack

    def interrupt_second(pack_id: bytes) -> dict[bytes, memoryview]:
        if pack_id == packs[1]:
            raise KeyboardInterrupt
        return real(pack_id)

    monkeypatch.setattr(repo, "read_pack", interrupt_second)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        restore.restore(repo, manifest, out)
    assert [p.name for p in restored_root(out, root).iterdir()] == []


def test_non_file_snapshots_are_refused(repo: Repository) -> None:
    manifest = repo.put_manifest({"kind": "records", "tree": None})
    with pytest.raises(InputError, match="not a file snapshot"):
        restore.resolve_snapshot(repo, manifest.id.hex()[:8])
    with pytest.raises(InputError, match="no valid tree"):
        manifest_tree_id(manifest)


def test_parallel_readers_make_the_same_snapshot_as_one(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tree(tmp_path / "many", big=150_000)
    for number in range(12):  # more files than readers in flight, some alike (dedup across readers)
        (root / f"f{number:02}").write_bytes(os.urandom(20_000) if number % 3 else b"same" * 9_000)
    sub = root / "sub" / "deeper"
    sub.mkdir(parents=True)
    for number in range(5):
        (sub / f"g{number}").write_bytes(os.urandom(30_000))
    monkeypatch.setattr(files, "FILE_READERS", 1)
    monkeypatch.setattr(files, "FILES_IN_FLIGHT", 1)
    single = backup_paths(repo, [root], parent=None)
    monkeypatch.setattr(files, "FILE_READERS", 4)
    monkeypatch.setattr(files, "FILES_IN_FLIGHT", 8)
    parallel = backup_paths(repo, [root], parent=None)
    assert manifest_tree_id(parallel.manifest) == manifest_tree_id(single.manifest)
    assert parallel.summary["files_new"] == single.summary["files_new"] >= 17
    assert parallel.summary["bytes_read"] == single.summary["bytes_read"]
    assert parallel.summary["blobs_new"] == 0  # every blob and tree was already stored by the first


def test_reader_errors_are_listed_in_walk_order(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "src"
    (root / "b").mkdir(parents=True)
    for name in ("a1", "a2", "b/x", "b/y", "c"):
        (root / name).write_bytes(os.urandom(5_000))
    real = files._open_file
    denied = ("/a2", "/b/x", "/b/y", "/c")

    def deny(path: str) -> int:
        if path.endswith(denied):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(files, "_open_file", deny)
    monkeypatch.setattr(files, "FILE_READERS", 3)
    result = backup_paths(repo, [root])
    assert result.errors == [f"{root}{suffix}: Permission denied" for suffix in denied]
    assert result.summary["files_new"] == 1
    assert set(_paths(repo, result.manifest)) >= {f"{root}/a1", f"{root}/b"}


def test_a_failing_store_stops_the_readers_and_the_backup(repo: Repository, tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    for number in range(10):
        (root / f"f{number}").write_bytes(os.urandom(300_000))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("store on fire")

    repo._start_put_shards = broken  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError, match="store on fire"):
        backup_paths(repo, [root])
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("lifeboat-read_")]


def _assert_restores(repo: Repository, manifest: Manifest, source: Path, out: Path) -> None:
    """Restoring ``manifest`` into ``out`` gives back ``source`` exactly, without errors."""
    assert restore.restore(repo, manifest, out).errors == []
    assert_same_tree(source, restored_root(out, source))


def test_small_files_read_on_the_walk_thread_and_one_that_grows_meanwhile(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "src"
    root.mkdir()
    smallest = SMALL_CHUNKS.min_size
    sizes = {"empty": 0, "one": 1, "at-min": smallest, "over-min": smallest + 1, "big": 40_000}
    for name, size in sizes.items():
        (root / name).write_bytes(os.urandom(size))
    (root / "grows").write_bytes(b"g" * 10)
    real = files._open_file
    threads: dict[str, str] = {}

    def open_and_note(path: str) -> int:
        threads[Path(path).name] = threading.current_thread().name
        if path.endswith("/grows"):  # larger than one chunk by the time it is read
            with open(path, "ab") as handle:
                handle.write(os.urandom(30_000))
        return real(path)

    monkeypatch.setattr(files, "_open_file", open_and_note)
    result = backup_paths(repo, [root])
    assert result.errors == []
    main = threading.current_thread().name
    assert {name for name, thread in threads.items() if thread == main} == {"empty", "one", "at-min", "grows"}
    assert threads["big"].startswith("lifeboat-read") and threads["over-min"].startswith("lifeboat-read")
    listing = _paths(repo, result.manifest)
    assert listing[f"{root}/grows"].size == 30_010 and len(listing[f"{root}/grows"].content) > 1
    assert listing[f"{root}/empty"].content == ()
    _assert_restores(repo, result.manifest, root, tmp_path / "out")


def test_restore_writes_a_file_s_blobs_in_runs(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "src"
    root.mkdir()
    (root / "big").write_bytes(os.urandom(300_000))  # ~300 small chunks, in one pack
    (root / "b2").write_bytes(os.urandom(20_000))
    manifest = backup_paths(repo, [root]).manifest
    calls: list[int] = []
    real = os.pwritev

    def short_writes(fd: int, views: list[memoryview], offset: int) -> int:
        calls.append(len(views))
        # Write at most 3000 bytes per call: runs must resume where a short write stopped.
        limited: list[memoryview] = []
        room = 3000
        for view in views:
            if room <= 0:
                break
            limited.append(view[:room])
            room -= len(limited[-1])
        return real(fd, limited, offset)

    monkeypatch.setattr(os, "pwritev", short_writes)
    _assert_restores(repo, manifest, root, tmp_path / "out")
    assert max(calls) > 1  # several blobs handed to one call
