"""The drill's storage path: two of five stores destroyed, files restored, stores rebuilt, data checked.

Every test runs the real repository on local stores in ``tmp_path`` with a small file tree. The
fault-injection tests damage more than a 3-of-5 repository survives, or tamper with what set-up
recorded, and require the recovery to fail at the step that notices, with a message saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.drill.sandbox import Outcome, Sandbox
from lifeboat.drill.storage import SCRATCH_KEY, StoragePath, open_repository, tree_digest
from lifeboat.drill.timeline import PathName, Phase, StepFailed, Timeline
from lifeboat.snapshot.files import backup_paths
from lifeboat.store.errors import StoreDown

OPEN_TITLE = "open the repository from the surviving stores"
RESTORE_TITLE = "restore the file snapshots from the survivors"


def _small() -> StoragePath:
    return StoragePath(files=6, file_bytes=48 * 1024)


def _until_catastrophe(
    tmp_path: Path, path: StoragePath, seed: int = 11
) -> tuple[Sandbox, Timeline, Outcome]:
    sandbox = Sandbox(tmp_path / "sandbox", seed=seed)
    timeline = Timeline()
    path.setup(sandbox, timeline)
    path.operate(sandbox, timeline)
    return sandbox, timeline, path.catastrophe(sandbox, timeline)


def _failed_step(timeline: Timeline) -> tuple[str, str]:
    failed = [step for step in timeline.of(PathName.STORAGE) if step.ok is False]
    assert len(failed) == 1, [(s.title, s.ok) for s in timeline.steps]
    assert failed[0] is timeline.steps[-1]  # the path stopped at its first broken step
    return failed[0].title, failed[0].error or ""


def test_two_stores_lost_are_restored_rebuilt_and_checked(tmp_path: Path) -> None:
    path = _small()
    sandbox, timeline, outcome = _until_catastrophe(tmp_path, path)
    destroyed = [store for store in sandbox.stores if not store.exists()]
    assert len(destroyed) == 2 and outcome.lost["stores"] == 2 and outcome.lost["bytes"] > 0

    path.recover(sandbox, timeline, outcome)

    steps = timeline.of(PathName.STORAGE)
    assert all(step.ok for step in steps)
    assert [s.phase for s in steps].count(Phase.RECOVER) == 5
    assert outcome.recovered == outcome.lost
    restored = next(s for s in steps if s.title == RESTORE_TITLE)
    assert restored.facts["snapshots"] == 2 and restored.facts["files"] == 2 * 6
    rebuilds = [s for s in steps if s.title.startswith("rebuild store")]
    assert sorted(s.facts["new"] for s in rebuilds) == sorted(f"{p.name}-rebuilt" for p in destroyed)
    assert all(s.facts["shards"] > 0 and s.facts["objects_new"] == 0 for s in rebuilds)
    assert steps[-1].facts["status"] == "healthy" and steps[-1].facts["packs"] > 0
    # the sandbox now names the rebuilt directories, and the repository opens on all five
    assert all(store.is_dir() for store in sandbox.stores)
    assert {p.name for p in sandbox.stores} >= {f"{p.name}-rebuilt" for p in destroyed}
    with open_repository(sandbox, writable=False) as repo:
        assert not repo.unavailable


def test_writes_after_the_catastrophe_are_rebuilt_too(tmp_path: Path) -> None:
    """The state path writes to the three survivors before this path recovers: those shards come back."""
    path = _small()
    sandbox, timeline, outcome = _until_catastrophe(tmp_path, path)
    extra = tmp_path / "written-degraded"
    extra.mkdir()
    (extra / "late.bin").write_bytes(sandbox.random_bytes(30_000))
    with open_repository(sandbox) as repo:
        assert len(repo.unavailable) == 2
        assert backup_paths(repo, [extra], hostname="state").degraded_stores

    path.recover(sandbox, timeline, outcome)

    rebuilds = [s for s in timeline.of(PathName.STORAGE) if s.title.startswith("rebuild store")]
    assert all(s.ok and s.facts["objects_new"] > 0 for s in rebuilds)
    assert outcome.recovered == outcome.lost
    assert timeline.steps[-1].ok and timeline.steps[-1].facts["manifests"] == 3


def test_three_stores_destroyed_fails_at_the_open(tmp_path: Path) -> None:
    path = StoragePath(destroy=3, files=4, file_bytes=16 * 1024)
    sandbox, timeline, outcome = _until_catastrophe(tmp_path, path)
    assert outcome.lost["stores"] == 3

    with pytest.raises(StoreDown):
        path.recover(sandbox, timeline, outcome)

    title, error = _failed_step(timeline)
    assert title == OPEN_TITLE
    assert "only 2 of 5 stores answer and 3 are needed" in error
    assert outcome.recovered == {}


def test_a_damaged_survivor_on_top_fails_the_restore(tmp_path: Path) -> None:
    """Two stores gone and a third's shards rotten: the data is below the threshold and cannot come back."""
    path = _small()
    sandbox, timeline, outcome = _until_catastrophe(tmp_path, path)
    survivor = next(store for store in sandbox.stores if store.exists())
    packs = sorted((survivor / "data").rglob("*"))
    for pack in (p for p in packs if p.is_file()):
        data = bytearray(pack.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pack.write_bytes(bytes(data))

    with pytest.raises(StepFailed):
        path.recover(sandbox, timeline, outcome)

    title, error = _failed_step(timeline)
    assert title == RESTORE_TITLE
    assert "cannot be read from the 3 surviving stores" in error
    assert "shards valid, need 3" in error
    assert outcome.recovered == {}


def test_the_restore_is_compared_with_what_set_up_recorded(tmp_path: Path) -> None:
    path = _small()
    sandbox, timeline, outcome = _until_catastrophe(tmp_path, path)
    recorded = sandbox.scratch[SCRATCH_KEY].snapshots[0]
    recorded.tree = tree_digest(tmp_path)  # not the tree that was backed up

    with pytest.raises(StepFailed):
        path.recover(sandbox, timeline, outcome)

    title, error = _failed_step(timeline)
    assert title == RESTORE_TITLE
    assert "differs from the tree backed up" in error


def test_open_repository_before_set_up_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreDown, match="set-up has not run"):
        open_repository(Sandbox(tmp_path, seed=1))


def test_tree_digest_covers_names_modes_and_contents(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"one")
    first = tree_digest(tmp_path)
    assert (first.files, first.bytes) == (1, 3)
    (tmp_path / "a").chmod(0o604)
    second = tree_digest(tmp_path)
    (tmp_path / "a").rename(tmp_path / "b")
    third = tree_digest(tmp_path)
    (tmp_path / "b").write_bytes(b"two")
    fourth = tree_digest(tmp_path)
    assert len({first.digest, second.digest, third.digest, fourth.digest}) == 4
