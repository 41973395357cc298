"""The repository commands end to end, and what they do when stores die or lie.

Five local stores, k = 3: any two may vanish or hold garbage and every byte still comes back;
a third does too many, and the commands say so instead of writing wrong data.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shutil
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from conftest import CliRunner
from repo_helpers import assert_same_tree, make_tree, restored_root

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    stores = [tmp_path / f"store{i}" for i in range(5)]
    monkeypatch.setenv("LIFEBOAT_STORES", " ".join(map(str, stores)))
    monkeypatch.setenv("LIFEBOAT_REPO_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return {
        "root": tmp_path,
        "src": make_tree(tmp_path / "src"),
        **{f"s{i}": s for i, s in enumerate(stores)},
    }


@pytest.fixture
def repo(cli: CliRunner, env: dict[str, Path]) -> dict[str, Path]:
    result = cli("--json", "repo", "init", "--data-shards", "3")
    assert result.code == 0, result.err
    assert result.json()["k"] == 3 and result.json()["n"] == 5
    result = cli("--json", "backup", env["src"], "--no-progress")
    assert result.code == 0, result.err
    return env


def _restore(cli: CliRunner, env: dict[str, Path], name: str, *extra: str) -> tuple[int, Path, str]:
    target = env["root"] / name
    result = cli("restore", "latest", "--target", target, "--no-progress", *extra)
    return result.code, target, result.err


def _shard_files(store: Path, kind: str = "data") -> list[Path]:
    return sorted(p for p in (store / kind).rglob("*") if p.is_file())


def _flip(path: Path, offset: int = -7) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def test_tour_init_backup_snapshots_ls_diff_restore_check(cli: CliRunner, repo: dict[str, Path]) -> None:
    src = repo["src"]
    listed = cli("--json", "snapshots").json()["snapshots"]
    assert len(listed) == 1 and listed[0]["paths"] == [str(src.resolve())]
    first = listed[0]["id"]

    names = {e["path"] for e in cli("--json", "ls", "latest").json()["entries"]}
    assert any(n.endswith("docs/deep/deeper/leaf.txt") for n in names)

    (src / "docs" / "note-3.txt").write_text("changed\n")
    (src / "added.txt").write_text("new file\n")
    (src / "empty.txt").unlink()
    second = cli("--json", "backup", src, "--no-progress")
    assert second.code == 0, second.err
    summary = second.json()["summary"]
    assert summary["files_new"] == 1 and summary["files_changed"] == 1
    assert summary["files_unmodified"] >= 10

    changes = cli("--json", "diff", first[:8], "latest").json()["changes"]
    kinds = {(c["kind"], c["path"].rsplit("/", 1)[-1]) for c in changes}
    assert {("+", "added.txt"), ("-", "empty.txt"), ("M", "note-3.txt")} <= kinds

    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    assert_same_tree(src, restored_root(target, src))

    check = cli("--json", "check", "--read-data", "--no-progress")
    assert check.code == 0, check.out + check.err
    assert check.json()["status"] == "healthy"


def test_restore_with_include_restores_only_matching_paths(cli: CliRunner, repo: dict[str, Path]) -> None:
    code, target, err = _restore(cli, repo, "partial", "--include", "*/docs/deep")
    assert code == 0, err
    root = restored_root(target, repo["src"])
    assert (root / "docs" / "deep" / "deeper" / "leaf.txt").read_text() == "leaf\n"
    assert not (root / "big.bin").exists()


@pytest.mark.parametrize("lost", list(itertools.combinations(range(5), 2)))
def test_any_two_whole_stores_lost_restore_is_bit_exact(
    cli: CliRunner, repo: dict[str, Path], lost: tuple[int, int]
) -> None:
    for number in lost:
        shutil.rmtree(repo[f"s{number}"])
    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    assert_same_tree(repo["src"], restored_root(target, repo["src"]))
    check = cli("--json", "check", "--no-progress")
    assert check.code == 3, check.out + check.err
    assert check.json()["status"] == "degraded"


def test_three_lost_stores_is_a_clear_error(cli: CliRunner, repo: dict[str, Path]) -> None:
    for number in (0, 2, 4):
        shutil.rmtree(repo[f"s{number}"])
    code, _, err = _restore(cli, repo, "out")
    assert code == 1
    assert "only 2 of 5 stores answer and 3 are needed" in err


def test_corrupt_two_shards_of_every_object_check_reports_repair_heals(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    rng = random.Random(5)
    relative = [
        p.relative_to(repo["s0"]) for p in _shard_files(repo["s0"]) + _shard_files(repo["s0"], "index")
    ]
    damaged: dict[int, int] = {}
    for rel in relative:
        for number in rng.sample(range(5), 2):
            _flip(repo[f"s{number}"] / rel, offset=rng.randrange(-200, -1))
            damaged[number] = damaged.get(number, 0) + 1

    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    assert_same_tree(repo["src"], restored_root(target, repo["src"]))

    check = cli("--json", "check", "--read-data", "--no-progress")
    assert check.code == 3, check.out + check.err
    report = check.json()
    assert report["status"] == "degraded"
    corrupt = {s["store"]: s["corrupt"] for s in report["stores"]}
    assert corrupt == {n: damaged.get(n, 0) for n in range(5)}

    repaired = cli("--json", "repair", "--no-progress")
    assert repaired.code == 0, repaired.err
    assert sum(repaired.json()["shards_rewritten"].values()) == sum(damaged.values())
    again = cli("--json", "check", "--read-data", "--no-progress")
    assert again.code == 0, again.out + again.err


def test_three_corrupt_shards_fail_check_and_restore_never_writes_wrong_data(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    # big.bin (3 MiB of random bytes) is the only content of its own pack when packs are 16 MiB?
    # No: everything shares packs. Corrupt one data pack beyond repair and see which files fail.
    packs = _shard_files(repo["s0"])
    victim = packs[0].relative_to(repo["s0"])
    for number in (0, 1, 3):
        _flip(repo[f"s{number}"] / victim)
    check = cli("--json", "check", "--read-data", "--no-progress")
    assert check.code == 1
    report = check.json()
    assert report["status"] == "error"
    assert any(o["key"] == str(victim) and o["status"] == "lost" for o in report["objects"])

    code, target, err = _restore(cli, repo, "out")
    assert code == 1
    assert "error:" in err
    root = restored_root(target, repo["src"])
    for path in (p for p in repo["src"].rglob("*") if p.is_file() and not p.is_symlink()):
        twin = root / path.relative_to(repo["src"])
        if twin.exists():
            assert twin.read_bytes() == path.read_bytes(), f"{twin} was restored with wrong data"
    leftovers = [p for p in root.rglob("*") if ".lifeboat" in p.name or p.name.startswith(".")]
    assert leftovers == []

    repaired = cli("--json", "repair", "--no-progress")
    assert repaired.code == 1
    assert str(victim) in repaired.json()["objects_lost"]


def test_truncated_shard_is_reported_and_repaired(cli: CliRunner, repo: dict[str, Path]) -> None:
    shard = _shard_files(repo["s4"])[0]
    shard.write_bytes(shard.read_bytes()[:50])
    check = cli("--json", "check", "--read-data", "--no-progress")
    assert check.code == 3
    assert cli("repair", "--no-progress").code == 0
    assert cli("check", "--read-data", "--no-progress").code == 0


def test_wrong_passphrase(cli: CliRunner, repo: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFEBOAT_REPO_PASSPHRASE", "wrong")
    result = cli("snapshots")
    assert result.code == 1
    assert "wrong passphrase" in result.err


def test_store_of_another_repository_is_refused_by_name(
    cli: CliRunner, repo: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = repo["root"] / "other"
    assert cli("repo", "init", "--store", other).code == 0
    stores = [str(repo[f"s{i}"]) for i in range(4)] + [str(other)]
    result = cli("snapshots", *itertools.chain.from_iterable(("--store", s) for s in stores))
    assert result.code == 1
    assert "different repositories" in result.err and str(other) in result.err


def test_unknown_format_version_asks_for_upgrade(cli: CliRunner, repo: dict[str, Path]) -> None:
    config = repo["s1"] / "config"
    body = json.loads(config.read_text())
    body["version"] = 2
    config.write_text(json.dumps(body))
    result = cli("snapshots")
    assert result.code == 1
    assert "upgrade" in result.err.lower()


def test_backup_refuses_a_down_store_by_name_and_degraded_ok_writes_then_repair(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    moved = repo["root"] / "unplugged"
    repo["s3"].rename(moved)
    (repo["src"] / "while-down.txt").write_text("written while store 3 was away\n")
    refused = cli("backup", repo["src"], "--no-progress")
    assert refused.code == 1
    assert "store(s) 3 of 5 not available" in refused.err and "--degraded-ok" in refused.err

    done = cli("--json", "backup", repo["src"], "--no-progress", "--degraded-ok")
    assert done.code == 0, done.err
    assert done.json()["snapshot"]["degraded_stores"] == [3]

    moved.rename(repo["s3"])
    check = cli("--json", "check", "--no-progress")
    assert check.code == 3
    assert cli("repair", "--no-progress").code == 0
    assert cli("check", "--read-data", "--no-progress").code == 0
    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    assert_same_tree(repo["src"], restored_root(target, repo["src"]))


def test_replace_store_rebuilds_a_lost_store_onto_a_new_one(
    cli: CliRunner, repo: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(repo["s2"])
    fresh = repo["root"] / "fresh"
    result = cli("--json", "repo", "replace-store", repo["s2"], fresh, "--no-progress")
    assert result.code == 0, result.err
    stores = [repo[f"s{i}"] for i in (0, 1, 3, 4)] + [fresh]
    monkeypatch.setenv("LIFEBOAT_STORES", " ".join(map(str, stores)))
    check = cli("--json", "check", "--read-data", "--no-progress")
    assert check.code == 0, check.out + check.err
    # The rebuilt store plus any two others are enough on their own.
    monkeypatch.setenv("LIFEBOAT_STORES", " ".join(map(str, [fresh, repo["s0"], repo["s4"]])))
    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    assert_same_tree(repo["src"], restored_root(target, repo["src"]))


def test_forget_and_prune_keep_what_the_policy_keeps(cli: CliRunner, repo: dict[str, Path]) -> None:
    src = repo["src"]
    for round_ in range(3):
        (src / f"round-{round_}.bin").write_bytes(random.Random(round_).randbytes(300_000))
        assert cli("backup", src, "--no-progress").code == 0
    before = sum(p.stat().st_size for p in _shard_files(repo["s0"]))
    assert cli("forget", "--keep-last", "5").code == 0
    result = cli("--json", "forget", "--keep-last", "1", "--prune")
    assert result.code == 0, result.err
    assert len(result.json()["forget"]) == 3
    assert len(cli("--json", "snapshots").json()["snapshots"]) == 1
    after = sum(p.stat().st_size for p in _shard_files(repo["s0"]))
    assert after <= before
    assert cli("check", "--read-data", "--no-progress").code == 0
    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    assert_same_tree(src, restored_root(target, src))


def test_forget_without_a_policy_is_a_usage_error(cli: CliRunner, repo: dict[str, Path]) -> None:
    result = cli("forget")
    assert result.code == 2
    assert "no --keep-* option" in result.err


def test_key_split_and_recover_set_a_new_passphrase(
    cli: CliRunner, repo: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    shares = repo["root"] / "key-shares"
    split = cli("--json", "repo", "key", "split", "2of3", "--shares-dir", shares)
    assert split.code == 0, split.err
    files = sorted(shares.glob("*.txt"))
    assert len(files) == 3
    new_pass = repo["root"] / "new-pass"
    new_pass.write_text("a brand new passphrase\n")
    wrong = repo["root"] / "wrong-share-pass"
    wrong.write_text("not the share passphrase\n")
    refused = cli(
        "repo", "key", "recover", files[0], files[2], "--new-passphrase-file", new_pass,
        "--share-passphrase-file", wrong,
    )  # fmt: skip
    assert refused.code == 1 and "the passphrase is wrong" in refused.err, refused.err
    recovered = cli("--json", "repo", "key", "recover", files[0], files[2], "--new-passphrase-file", new_pass)
    assert recovered.code == 0, recovered.err
    monkeypatch.setenv("LIFEBOAT_REPO_PASSPHRASE", "a brand new passphrase")
    assert cli("snapshots").code == 0


def test_unlock_removes_stale_locks(cli: CliRunner, repo: dict[str, Path]) -> None:
    result = cli("--json", "repo", "unlock")
    assert result.code == 0
    assert result.json()["removed"] == []


def test_no_stores_is_a_usage_error(
    cli: CliRunner, env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIFEBOAT_STORES")
    result = cli("snapshots")
    assert result.code == 2
    assert "--store" in result.err


def test_repair_rebuilds_a_wiped_store_in_place(cli: CliRunner, repo: dict[str, Path]) -> None:
    shutil.rmtree(repo["s1"])
    repo["s1"].mkdir()
    check = cli("--json", "check", "--no-progress")
    assert check.code == 3, check.out + check.err
    result = cli("repair", "--no-progress")
    assert result.code == 0, result.err
    assert "rebuilding it as store 1" in result.err
    again = cli("--json", "check", "--read-data", "--no-progress")
    assert again.code == 0, again.out + again.err


def test_the_entry_point_finds_the_subcommand_after_global_options() -> None:
    from lifeboat.cli.process import command_of

    assert command_of(["backup", "x"]) == "backup"
    assert command_of(["--json", "--home", "backup", "forget", "--keep-last", "1"]) == "forget"
    assert command_of(["--version"]) is None
    assert command_of(["--store-timeout", "5", "backup", "x"]) == "backup"


def test_markup_characters_in_tags_and_paths_are_printed_as_they_are(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    odd = repo["src"] / "[red]x"
    odd.mkdir()
    (odd / "f").write_text("x\n")
    assert cli("backup", repo["src"], "--tag", "[/]", "--tag", "[bold]", "--no-progress").code == 0
    listed = cli("snapshots")
    assert listed.code == 0, listed.err
    assert "[/],[bold]" in listed.out
    assert "[red]x/" in cli("ls", "latest").out


def test_replace_store_never_prints_credentials(cli: CliRunner, repo: dict[str, Path]) -> None:
    secret = "s3://bucket/p?endpoint=http://127.0.0.1:9&secret_access_key=TOPSECRET123"
    result = cli("repo", "replace-store", secret, repo["root"] / "new")
    assert result.code == 2
    assert "TOPSECRET123" not in result.out + result.err


def test_a_store_with_a_damaged_config_is_left_out_and_repair_gives_it_back(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    (repo["s3"] / "config").write_text("{not json")
    listed = cli("snapshots")
    assert listed.code == 0, listed.err
    assert f"{repo['s3']}: repository config is not valid JSON" in listed.err
    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    assert_same_tree(repo["src"], restored_root(target, repo["src"]))
    assert cli("check", "--no-progress").code == 3
    repaired = cli("repair", "--no-progress")
    assert repaired.code == 0, repaired.err
    assert "has a damaged config: rebuilding it as store 3" in repaired.err
    assert cli("check", "--read-data", "--no-progress").code == 0


# --- issue 10: stores lost beyond a single one, key files, the index --------------------------


def _set_stores(monkeypatch: pytest.MonkeyPatch, stores: list[Path]) -> None:
    monkeypatch.setenv("LIFEBOAT_STORES", " ".join(map(str, stores)))


def _damage_store(store: Path, kind: str, seed: int) -> None:
    """Delete, wipe, truncate every file of, or flip random bytes in every file of a store."""
    rng = random.Random(seed)
    if kind in ("deleted", "wiped"):
        shutil.rmtree(store)
        if kind == "wiped":
            store.mkdir()
        return
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        data = bytearray(path.read_bytes())
        if kind == "truncated":
            path.write_bytes(bytes(data[: len(data) // 2]))
        else:  # rotted
            for _ in range(3):
                data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
            path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("lost", "kinds"),
    [
        ((1, 3), ("deleted", "wiped")),
        ((0, 4), ("truncated", "deleted")),
        ((2, 3), ("deleted", "rotted")),
        ((0, 2), ("rotted", "truncated")),
    ],
    ids=["deleted+wiped", "truncated+deleted", "deleted+rotted", "rotted+truncated"],
)
def test_two_lost_stores_are_rebuilt_on_new_paths_and_survive_losing_two_others(
    cli: CliRunner,
    repo: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    lost: tuple[int, int],
    kinds: tuple[str, str],
) -> None:
    for seed, (number, kind) in enumerate(zip(lost, kinds, strict=True)):
        _damage_store(repo[f"s{number}"], kind, seed)
    fresh = {number: repo["root"] / f"new{number}" for number in lost}
    for number in lost:  # the store list still names the old stores, in store order
        result = cli("--json", "repo", "replace-store", repo[f"s{number}"], fresh[number], "--no-progress")
        assert result.code == 0, result.err
        assert result.json()["store"] == number
        report = result.json()["report"]
        assert report["shards_rewritten"][str(number)] == report["objects_checked"] > 0
        assert report["bytes_rewritten"][str(number)] > 0 and report["objects_lost"] == []
    stores = [fresh.get(i, repo[f"s{i}"]) for i in range(5)]
    _set_stores(monkeypatch, stores)
    check = cli("--json", "check", "--read-data", "--no-progress")
    assert check.code == 0, check.out + check.err
    assert check.json()["status"] == "healthy"
    others = [i for i in range(5) if i not in lost]
    for number in others[:2]:
        shutil.rmtree(repo[f"s{number}"])
    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    assert_same_tree(repo["src"], restored_root(target, repo["src"]))


def test_replace_store_never_guesses_between_lost_stores_and_store_number_says(
    cli: CliRunner, repo: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(repo["s1"])
    shutil.rmtree(repo["s4"])
    # The list is not in store order, so neither its order nor the old URL says which one s4 was.
    _set_stores(monkeypatch, [repo[f"s{i}"] for i in (4, 0, 1, 2, 3)])
    fresh = repo["root"] / "fresh" / "store"
    refused = cli("repo", "replace-store", repo["s4"], fresh, "--no-progress")
    assert refused.code == 2, refused.err
    assert "--store-number" in refused.err and "1, 4" in refused.err
    assert not (repo["root"] / "fresh").exists()  # nothing made for a command that failed
    taken = cli("repo", "replace-store", "--store-number", "0", fresh, "--no-progress")
    assert taken.code == 2 and "answers" in taken.err
    done = cli("--json", "repo", "replace-store", "--store-number", "4", fresh, "--no-progress")
    assert done.code == 0, done.err
    assert done.json()["store"] == 4
    # One number is missing now (the new store is given): the old URL is enough.
    _set_stores(monkeypatch, [fresh, *(repo[f"s{i}"] for i in (0, 1, 2, 3))])
    other = repo["root"] / "other"
    assert cli("repo", "replace-store", repo["s1"], other, "--no-progress").code == 0
    _set_stores(monkeypatch, [fresh, other, *(repo[f"s{i}"] for i in (0, 2, 3))])
    check = cli("check", "--read-data", "--no-progress")
    assert check.code == 0, check.out + check.err


def test_a_replace_store_that_fails_leaves_no_new_folder_behind(
    cli: CliRunner, repo: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifeboat.store import repair
    from lifeboat.store.errors import StoreDown

    shutil.rmtree(repo["s2"])
    rebuild = repair._rebuild_slot
    calls = 0

    def dies_part_way(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        rebuild(*args, **kwargs)  # type: ignore[arg-type]
        raise StoreDown("the disk went away")

    monkeypatch.setattr(repair, "_rebuild_slot", dies_part_way)
    fresh = repo["root"] / "deep" / "fresh"
    failed = cli("repo", "replace-store", repo["s2"], fresh, "--no-progress")
    assert failed.code == 1 and "the disk went away" in failed.err and calls == 1
    assert not (repo["root"] / "deep").exists()
    # An existing empty directory is left empty, and kept.
    fresh.mkdir(parents=True)
    assert cli("repo", "replace-store", repo["s2"], fresh, "--no-progress").code == 1
    assert fresh.is_dir() and list(fresh.iterdir()) == []
    monkeypatch.setattr(repair, "_rebuild_slot", rebuild)
    assert cli("repo", "replace-store", repo["s2"], fresh, "--no-progress").code == 0


def test_repair_adopts_two_wiped_stores_and_reports_what_it_rebuilt(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    objects = len(_shard_files(repo["s0"])) + len(_shard_files(repo["s0"], "index"))
    objects += len(_shard_files(repo["s0"], "snapshots"))
    for number in (1, 3):
        _damage_store(repo[f"s{number}"], "wiped", 0)
    dry = cli("repair", "--dry-run", "--no-progress")
    assert dry.code == 0, dry.err
    assert dry.out.count("would be rebuilt whole") == 2
    assert not any(repo["s1"].iterdir()) and not any(repo["s3"].iterdir())
    result = cli("--json", "repair", "--no-progress")
    assert result.code == 0, result.err
    report = result.json()
    assert report["shards_rewritten"] == {"1": objects, "3": objects}
    assert report["objects_rebuilt"] == 2 * objects
    assert all(report["bytes_rewritten"][n] > 0 for n in ("1", "3"))
    assert report["stores_rebuilt"] == {str(n): f"local:{repo[f's{n}']}" for n in (1, 3)}
    assert (report["configs_rewritten"], report["key_files_copied"]) == (2, 2)
    human = cli("repair", "--no-progress")
    assert human.code == 0 and "rebuilt 0 shards" in human.out  # nothing left to do
    check = cli("check", "--read-data", "--no-progress")
    assert check.code == 0, check.out + check.err


def test_repair_in_place_says_how_many_shards_it_rebuilt(cli: CliRunner, repo: dict[str, Path]) -> None:
    objects = sum(len(_shard_files(repo["s0"], kind)) for kind in ("data", "index", "snapshots"))
    _damage_store(repo["s2"], "wiped", 0)
    result = cli("repair", "--no-progress")
    assert result.code == 0, result.err
    assert f"rebuilt {objects} shards of {objects} objects" in result.out
    assert "rebuilt whole" in result.out


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_damaged_key_file_in_store_0_is_reported_and_repaired(
    cli: CliRunner, repo: dict[str, Path], how: str
) -> None:
    (key_file,) = sorted((repo["s0"] / "keys").iterdir())
    data = key_file.read_bytes()
    if how == "truncate":
        key_file.write_bytes(data[: len(data) // 2])
    else:  # one base64 character of the wrapped key changed: parses, fails to authenticate
        at = data.index(b'"wrapped":"') + len(b'"wrapped":"') + 5
        key_file.write_bytes(data[:at] + (b"A" if data[at : at + 1] != b"A" else b"B") + data[at + 1 :])
    listed = cli("snapshots")
    assert listed.code == 0, listed.err
    assert "wrong passphrase" not in listed.err
    assert f"store 0 (local:{repo['s0']}): its copy of key file keys/{key_file.name} is damaged" in listed.err
    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    assert_same_tree(repo["src"], restored_root(target, repo["src"]))
    assert cli("backup", repo["src"], "--no-progress", "--degraded-ok").code == 0
    check = cli("--json", "check", "--no-progress")
    assert check.code == 3, check.out + check.err
    (bad,) = [item for item in check.json()["objects"] if item["kind"] == "keys"]
    assert list(bad["corrupt"]) == ["0"] and "damaged" in bad["corrupt"]["0"]
    repaired = cli("--json", "repair", "--no-progress")
    assert repaired.code == 0, repaired.err
    assert repaired.json()["key_files_copied"] == 1
    assert key_file.read_bytes() == data
    after = cli("check", "--read-data", "--no-progress")
    assert after.code == 0, after.out + after.err
    assert "damaged" not in cli("snapshots").err


@pytest.mark.parametrize("damage", ["deleted", "rotted"])
def test_rebuild_index_from_the_packs_when_every_index_is_lost(
    cli: CliRunner, repo: dict[str, Path], damage: str
) -> None:
    packs = len(_shard_files(repo["s0"]))
    for number in range(5):
        for path in _shard_files(repo[f"s{number}"], "index"):
            if damage == "deleted":
                path.unlink()
            elif number < 3:  # three of five shards of every index: beyond what parity heals
                _flip(path, 40)
    shutil.rmtree(repo["root"] / "cache", ignore_errors=True)  # no cached index plaintexts either
    code, _, err = _restore(cli, repo, "before")
    assert code == 1, err
    assert cli("check", "--no-progress").code == 1
    rebuilt = cli("--json", "repair", "--rebuild-index", "--no-progress")
    assert rebuilt.code == 0, rebuilt.err
    summary = rebuilt.json()
    assert summary["packs_read"] == packs and summary["packs_unreadable"] == {}
    assert summary["blobs_indexed"] > 0 and summary["indexes_written"] == 1
    if damage == "deleted":
        assert summary["indexes_removed"] == 0
    code, target, err = _restore(cli, repo, "after")
    assert code == 0, err
    assert_same_tree(repo["src"], restored_root(target, repo["src"]))
    check = cli("--json", "check", "--read-data", "--no-progress")
    assert check.code == 0, check.out + check.err
    again = cli("--json", "repair", "--rebuild-index", "--no-progress")  # idempotent: same index
    assert again.code == 0 and (again.json()["indexes_written"], again.json()["indexes_removed"]) == (0, 0)


def test_a_rotted_config_claiming_another_store_is_left_out_and_repair_gives_it_back(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    config = repo["s1"] / "config"
    good = config.read_bytes()
    config.write_bytes(good.replace(b'"store":1', b'"store":3'))  # parses; its MAC no longer matches
    listed = cli("snapshots")
    assert listed.code == 0, listed.err
    assert f"{repo['s1']}: its config does not match the repository key" in listed.err
    repaired = cli("repair", "--no-progress")
    assert repaired.code == 0, repaired.err
    assert "rebuilding it as store 1 (the shards it holds carry that number)" in repaired.err
    assert config.read_bytes() == good
    assert cli("check", "--read-data", "--no-progress").code == 0


def test_replace_store_reads_the_old_stores_number_from_its_shards(
    cli: CliRunner, repo: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo["s1"] / "config").unlink()  # its shards still say which store it was
    shutil.rmtree(repo["s4"])
    _set_stores(monkeypatch, [repo[f"s{i}"] for i in (4, 0, 1, 2, 3)])  # not in store order
    refused = cli("repair", "--no-progress")
    assert refused.code == 1 and "store(s) 4 of 5 are unavailable" in refused.err
    assert "replace-store" in refused.err
    fresh1, fresh4 = repo["root"] / "fresh1", repo["root"] / "fresh4"
    first = cli("--json", "repo", "replace-store", repo["s1"], fresh1, "--no-progress")
    assert first.code == 0, first.err
    assert first.json()["store"] == 1
    _set_stores(monkeypatch, [repo["s4"], repo["s0"], fresh1, repo["s2"], repo["s3"]])
    second = cli("--json", "repo", "replace-store", repo["s4"], fresh4, "--no-progress")
    assert second.code == 0, second.err
    assert second.json()["store"] == 4
    _set_stores(monkeypatch, [fresh4, repo["s0"], fresh1, repo["s2"], repo["s3"]])
    check = cli("check", "--read-data", "--no-progress")
    assert check.code == 0, check.out + check.err


@pytest.mark.parametrize(
    "kinds", [("truncated", "rotted"), ("wiped", "truncated")], ids=["truncated+rotted", "wiped+truncated"]
)
def test_two_damaged_stores_are_repaired_in_place(
    cli: CliRunner, repo: dict[str, Path], kinds: tuple[str, str]
) -> None:
    for seed, (number, kind) in enumerate(zip((1, 4), kinds, strict=True)):
        _damage_store(repo[f"s{number}"], kind, seed)
    repaired = cli("repair", "--no-progress")
    assert repaired.code == 0, repaired.out + repaired.err
    check = cli("--json", "check", "--read-data", "--no-progress")
    assert check.code == 0, check.out + check.err
    for number in (0, 2):
        shutil.rmtree(repo[f"s{number}"])
    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    assert_same_tree(repo["src"], restored_root(target, repo["src"]))


# --- issue 10: damage is reported as damage, and every message says what happened ---------------


def _spoil_manifest(store_dirs: list[Path], snapshot_id: str) -> str:
    """Make a snapshot's manifest unreadable (k of its 5 shards damaged); return its key."""
    key = f"snapshots/{snapshot_id}"
    for store in store_dirs:
        _flip(store / key)
    return key


def test_unreadable_snapshots_are_damage_not_an_empty_list(cli: CliRunner, repo: dict[str, Path]) -> None:
    older = cli("--json", "snapshots").json()["snapshots"][0]
    (repo["src"] / "later.txt").write_text("a later backup\n")
    assert cli("backup", repo["src"], "--no-progress").code == 0
    newest = cli("--json", "snapshots").json()["snapshots"][-1]["id"]
    spoiled = _spoil_manifest([repo["s0"], repo["s2"], repo["s4"]], newest)

    listed = cli("snapshots")
    assert listed.code == 1
    assert "1 snapshots, and 1 unreadable" in listed.out and older["short_id"] in listed.out
    assert f"error: snapshot manifest {spoiled} cannot be read" in listed.err
    assert cli("--json", "snapshots").json()["unreadable"].keys() == {spoiled}
    info = cli("repo", "info")
    assert f"warning: snapshot manifest {spoiled} cannot be read" in info.err

    # `latest` could be the unreadable one: the older snapshot is not passed off as the latest
    code, target, err = _restore(cli, repo, "out")
    assert code == 1 and not target.exists()
    assert "cannot tell which snapshot is the latest" in err and older["short_id"] in err
    assert spoiled in err
    by_id = cli("restore", older["short_id"], "--target", target, "--no-progress")
    assert by_id.code == 0, by_id.err

    _spoil_manifest([repo["s0"], repo["s2"], repo["s4"]], older["id"])
    listed = cli("snapshots")
    assert listed.code == 1 and "0 snapshots, and 2 unreadable" in listed.out
    code, _, err = _restore(cli, repo, "again")
    assert code == 1
    assert "no readable snapshot" in err and "unreadable, not absent" in err
    assert "no snapshots yet" not in err
    # the record-snapshot listing shares the manifest reader, and the exit status
    state = cli("state", "list")
    assert state.code == 1 and spoiled in state.err


def test_fifos_are_backed_up_and_sockets_reported(cli: CliRunner, repo: dict[str, Path]) -> None:
    special = repo["root"] / "special"
    special.mkdir()
    os.mkfifo(special / "pipe", 0o640)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(special / "sock"))
    result = cli("backup", special, "--no-progress")
    assert result.code == 3
    assert f"warning: {special.resolve()}/sock: skipped (socket; not backed up)" in result.err
    listing = cli("ls", "latest").out
    assert any(line.startswith("prw-r-----") and line.endswith("/pipe") for line in listing.splitlines())
    assert "/sock" not in listing
    code, target, err = _restore(cli, repo, "out")
    assert code == 0, err
    restored = restored_root(target, special)
    assert stat.S_ISFIFO((restored / "pipe").lstat().st_mode)
    assert stat.S_IMODE((restored / "pipe").lstat().st_mode) == 0o640


def test_a_failed_restore_says_it_failed(cli: CliRunner, repo: dict[str, Path]) -> None:
    # the largest pack holds file data (trees are small): its files fail, the others come back
    victim = max(_shard_files(repo["s0"]), key=lambda p: p.stat().st_size).relative_to(repo["s0"])
    for number in (0, 1, 3):
        _flip(repo[f"s{number}"] / victim)
    target = repo["root"] / "out"
    result = cli("restore", "latest", "--target", target, "--no-progress")
    assert result.code == 1
    assert "restored snapshot" not in result.out
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("error: restore of snapshot ") and "FAILED for" in last
    assert " files restored" in last


def test_a_given_but_missing_store_is_not_called_not_given(cli: CliRunner, repo: dict[str, Path]) -> None:
    shutil.rmtree(repo["s1"])
    refused = cli("backup", repo["src"], "--no-progress")
    assert refused.code == 1
    assert "not given" not in refused.err
    assert f"given but unreachable or missing: local:{repo['s1']}" in refused.err
    assert refused.err.count(f"directory {repo['s1']} does not exist") == 1, refused.err  # said once
    done = cli("backup", repo["src"], "--no-progress", "--degraded-ok")
    assert done.code == 0, done.err
    assert "stored across 4 of 5 stores" in done.out
    assert "written degraded: 1 of 5 stores missed shards (store 1" in done.err


def test_init_usage_errors_and_failures_leave_nothing_behind(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFEBOAT_REPO_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("LIFEBOAT_STORES", raising=False)
    a, b = tmp_path / "a", tmp_path / "deep" / "b"
    bad = cli("repo", "init", "--data-shards", "3", "--store", a, "--store", b)
    assert bad.code == 2 and "--data-shards must be between 1" in bad.err
    assert not a.exists() and not b.parent.exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("not a store\n")
    failed = cli("repo", "init", "--store", a, "--store", b, "--store", busy)
    assert failed.code == 1 and "is not empty" in failed.err
    assert not a.exists() and not (tmp_path / "deep").exists()
    assert [p.name for p in busy.iterdir()] == ["something"]


def test_an_unknown_option_is_one_line(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("backup", "--foo", tmp_path)
    assert result.code == 2
    assert result.err == "lifeboat: no such option: --foo (see lifeboat backup --help)\n"


def test_a_hung_s3_store_is_reported_and_the_others_are_used(cli: CliRunner, repo: dict[str, Path]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    hung = f"s3://bucket/p?endpoint=http://127.0.0.1:{port}&access_key_id=k&secret_access_key=s3cr3t"
    stores = [str(repo[f"s{i}"]) for i in (0, 2, 4)] + [hung]
    try:
        started = time.monotonic()
        result = cli(
            "restore",
            "latest",
            "--target",
            repo["root"] / "out",
            "--no-progress",
            "--store-timeout",  # a global option, accepted after the command too
            "1",
            *itertools.chain.from_iterable(("--store", s) for s in stores),
        )
        elapsed = time.monotonic() - started
    finally:
        listener.close()
        for connection in accepted:
            connection.close()
    assert result.code == 0, result.err
    assert (
        f"s3://bucket/p at http://127.0.0.1:{port}: cannot get 'config': no answer within 1 s" in result.err
    )
    assert "s3cr3t" not in result.err
    assert len(accepted) == 1 and elapsed < 30


def test_a_manifest_left_incomplete_by_a_crash_is_not_damage(cli: CliRunner, repo: dict[str, Path]) -> None:
    first = cli("--json", "snapshots").json()["snapshots"][0]["id"]
    (repo["src"] / "later.txt").write_text("a later backup\n")
    assert cli("backup", repo["src"], "--no-progress").code == 0
    newest = cli("--json", "snapshots").json()["snapshots"][-1]["id"]
    for number in (0, 2, 4):  # as if the backup died after 2 of the 5 shards of its manifest
        (repo[f"s{number}"] / "snapshots" / newest).unlink()
    listed = cli("--json", "snapshots")
    assert listed.code == 0, listed.err
    assert [s["id"] for s in listed.json()["snapshots"]] == [first]
    assert listed.json()["incomplete"] == [f"snapshots/{newest}"] and listed.json()["unreadable"] == {}
    code, _, err = _restore(cli, repo, "out")
    assert code == 0, err


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_restored_without_root_is_named_with_exit_3(
    cli: CliRunner, repo: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    special = repo["root"] / "dev"
    special.mkdir()
    os.mknod(special / "null", stat.S_IFCHR | 0o666, os.stat("/dev/null").st_rdev)
    (special / "plain.txt").write_text("plain\n")
    assert cli("backup", special, "--no-progress").code == 0
    assert any(line.startswith("crw-") for line in cli("ls", "latest").out.splitlines())
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, target, err = _restore(cli, repo, "out")
    assert code == 3, err
    assert "warning: " in err and "null: character device" in err and "needs root" in err
    assert (restored_root(target, special) / "plain.txt").read_text() == "plain\n"
