"""Shared helpers for repository tests: a varied source tree, and a bit-exact tree comparison."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

MiB = 1 << 20


def make_tree(root: Path, *, seed: int = 7, big: int = 3 * MiB) -> Path:
    """A tree with nested dirs, big and small files, an empty file and dir, symlinks, odd names."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "docs" / "deep" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "big.bin").write_bytes(rng.randbytes(big))
    (root / "ledger.jsonl").write_text(
        "".join(f'{{"account": {i}, "balance": "{rng.randint(0, 10**20)}"}}\n' for i in range(20_000))
    )
    for i in range(12):
        (root / "docs" / f"note-{i}.txt").write_bytes(rng.randbytes(rng.randint(1, 50_000)))
    (root / "docs" / "deep" / "deeper" / "leaf.txt").write_text("leaf\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "ünïcødé名.txt").write_text("unicode name\n")
    os.close(os.open(os.fsencode(root) + b"/caf\xe9-latin1.txt", os.O_WRONLY | os.O_CREAT, 0o644))
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o750)
    private = root / "docs" / "private.key"
    private.write_bytes(rng.randbytes(64))
    private.chmod(0o600)
    (root / "link-to-big").symlink_to("big.bin")
    (root / "dangling").symlink_to("../nowhere/at/all")
    (root / "docs" / "up").symlink_to("..")
    when = 1_600_000_000_000_000_000
    for number, path in enumerate(sorted(_all_paths(root), key=lambda p: -len(p.parts))):
        os.utime(
            path, ns=(when + number * 1_000_000_007, when + number * 1_000_000_007), follow_symlinks=False
        )
    return root


def _all_paths(root: Path) -> list[Path]:
    found = [root]
    for directory, dirs, files in os.walk(root):
        found.extend(Path(directory) / name for name in dirs + files)
    return found


def snapshot_of(root: Path) -> dict[str, tuple[str, int, int, bytes]]:
    """Relative path → (type, permission bits, mtime_ns, content or link target) for every entry."""
    result: dict[str, tuple[str, int, int, bytes]] = {}
    for path in _all_paths(root):
        info = path.lstat()
        relative = (
            "." if path == root else os.fsencode(path.relative_to(root)).decode("utf-8", "surrogateescape")
        )
        if stat.S_ISLNK(info.st_mode):
            result[relative] = ("symlink", 0, info.st_mtime_ns, os.fsencode(os.readlink(path)))
        elif stat.S_ISDIR(info.st_mode):
            result[relative] = ("dir", stat.S_IMODE(info.st_mode), info.st_mtime_ns, b"")
        else:
            result[relative] = ("file", stat.S_IMODE(info.st_mode), info.st_mtime_ns, path.read_bytes())
    return result


def assert_same_tree(source: Path, restored: Path) -> None:
    """Contents, modes, mtimes (files, dirs, symlinks) and link targets are identical."""
    want, got = snapshot_of(source), snapshot_of(restored)
    assert sorted(want) == sorted(got)
    for path in want:
        assert want[path][0] == got[path][0], path
        assert want[path][3] == got[path][3], f"{path}: contents differ"
        if want[path][0] != "symlink":
            assert want[path][1] == got[path][1], f"{path}: mode {got[path][1]:o} != {want[path][1]:o}"
        assert want[path][2] == got[path][2], f"{path}: mtime differs"


def restored_root(target: Path, source: Path) -> Path:
    """Where a backed-up absolute ``source`` lands under a restore ``target``."""
    return target / source.resolve().relative_to("/")
