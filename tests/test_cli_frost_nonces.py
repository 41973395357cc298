"""Single use of FROST nonces does not depend on the Lifeboat home (issue 10, item 1).

A nonce file is sealed under a one-time key kept in the signer state beside the key package;
``frost sign`` destroys that key before it writes the share, so a copy of the nonce file is
useless on its own, whichever home, machine or directory it is presented from.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from conftest import CliResult, CliRunner
from lifeboat.threshold import frost
from lifeboat.threshold import nonces as nonces_module


def setup_group(cli: CliRunner, tmp_path: Path, messages: int) -> tuple[Path, Path, list[Path]]:
    """A 2-of-2 Ed25519 group, one commitment round, and ``messages`` signing packages over it."""
    keys = tmp_path / "keys"
    assert cli("frost", "dealer", "-t", 2, "-n", 2, "-d", keys).code == 0
    for i in (1, 2):
        assert (
            cli("frost", "commit", "-k", keys / f"key-package-{i}.json", "-d", tmp_path / f"p{i}").code == 0
        )
    [nonces] = (tmp_path / "p1").glob("nonces-*.json")
    commitments = [tmp_path / "p1" / "commitment-1.json", tmp_path / "p2" / "commitment-2.json"]
    packages = []
    for m in range(messages):
        package = tmp_path / f"pkg-{m}.json"
        assert cli("frost", "package", *commitments, "--message-hex", f"0{m}", "-o", package).code == 0
        packages.append(package)
    return keys, nonces, packages


def test_copied_nonce_file_is_refused_under_another_home(cli: CliRunner, tmp_path: Path) -> None:
    """The attack of issue 10: copies of one nonce file signed different packages under fresh
    homes, and three such shares give back the signing share. Only the first may sign."""
    keys, nonces, packages = setup_group(cli, tmp_path, 3)
    copies = []
    for c in range(2):
        copy = tmp_path / f"copy-{c}.json"
        copy.write_bytes(nonces.read_bytes())
        copies.append(copy)
    sign = ["frost", "sign", "-k", keys / "key-package-1.json"]
    first = cli(
        "--home",
        tmp_path / "home-a",
        *sign,
        "--nonces",
        nonces,
        "-p",
        packages[0],
        "-o",
        tmp_path / "s0.json",
    )
    assert first.code == 0, first.err
    for c, copy in enumerate(copies, start=1):
        again = cli(
            "--home", tmp_path / f"home-{c}", *sign, "--nonces", copy, "-p", packages[c],
            "-o", tmp_path / f"s{c}.json",
        )  # fmt: skip
        assert again.code == 1, again.out
        assert "already used" in again.err
        assert not (tmp_path / f"s{c}.json").exists()


SIGN = ("frost", "sign")


def sign(cli: CliRunner, home: Path, key: Path, nonces: Path, package: Path, out: Path) -> CliResult:
    return cli("--home", home, *SIGN, "-k", key, "--nonces", nonces, "-p", package, "-o", out)


def one_time_keys(keys: Path) -> list[Path]:
    return sorted((keys / "key-package-1.signer").glob("one-time-key-*.json"))


def test_signer_state_is_private_and_the_key_goes_with_the_signature(cli: CliRunner, tmp_path: Path) -> None:
    keys, nonces, packages = setup_group(cli, tmp_path, 1)
    state = keys / "key-package-1.signer"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    [key_file] = one_time_keys(keys)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(nonces.stat().st_mode) == 0o600
    doc = json.loads(nonces.read_text())
    assert doc["version"] == 2 and "hiding_nonce" not in doc and "binding_nonce" not in doc
    assert key_file.name == f"one-time-key-{doc['nonce_id']}.json"
    result = sign(
        cli, tmp_path / "home", keys / "key-package-1.json", nonces, packages[0], tmp_path / "s.json"
    )
    assert result.code == 0, result.err
    assert one_time_keys(keys) == [] and not nonces.exists() and (tmp_path / "s.json").exists()


def test_copy_of_the_whole_key_directory_signs_nothing(cli: CliRunner, tmp_path: Path) -> None:
    """A copy of the key directory made after commit duplicates the one-time key too; the nonce
    file names the one file 'frost commit' wrote, so only that file opens it."""
    keys, nonces, packages = setup_group(cli, tmp_path, 2)
    machine2 = tmp_path / "machine2"
    shutil.copytree(keys, machine2)
    copy = tmp_path / "copy.json"
    copy.write_bytes(nonces.read_bytes())
    # The copy refuses first (so nothing is consumed), then the original signs, then the copy
    # still refuses: which copy is presented first does not matter.
    for attempt in range(2):
        refused = sign(
            cli, tmp_path / "home-b", machine2 / "key-package-1.json", copy, packages[1], tmp_path / "x.json"
        )
        assert refused.code == 1 and "copy or a restore" in refused.err, refused.err
        assert not (tmp_path / "x.json").exists()
        if attempt == 0:
            first = sign(
                cli,
                tmp_path / "home-a",
                keys / "key-package-1.json",
                nonces,
                packages[0],
                tmp_path / "s.json",
            )
            assert first.code == 0, first.err
    # Editing the nonce file to name the copy's key file breaks its seal.
    [copied_key] = sorted((machine2 / "key-package-1.signer").glob("one-time-key-*.json"))
    doc = json.loads(copy.read_text())
    status = copied_key.stat()
    doc["one_time_key_file"] = {"inode": status.st_ino, "ctime_ns": status.st_ctime_ns}
    copy.write_text(json.dumps(doc))
    edited = sign(
        cli, tmp_path / "home-b", machine2 / "key-package-1.json", copy, packages[1], tmp_path / "x.json"
    )
    assert edited.code == 1 and "edited or damaged" in edited.err, edited.err
    assert not (tmp_path / "x.json").exists()


def test_missing_signer_state_is_named(cli: CliRunner, tmp_path: Path) -> None:
    keys, nonces, packages = setup_group(cli, tmp_path, 1)
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(keys / "key-package-1.json", moved / "key-package-1.json")
    result = sign(
        cli, tmp_path / "home", moved / "key-package-1.json", nonces, packages[0], tmp_path / "s.json"
    )
    assert result.code == 1 and "signer state is missing" in result.err and "already used" in result.err
    assert nonces.exists() and one_time_keys(keys)  # nothing was consumed


class Crash(BaseException):
    """A crash of the signing process: nothing after it runs."""


def crash_around_destroy(monkeypatch: pytest.MonkeyPatch, *, after: bool) -> None:
    original = nonces_module.SignerState.destroy

    def crashing(self: nonces_module.SignerState, nonce_id: str, what: str) -> None:
        if after:
            original(self, nonce_id, what)
        raise Crash

    monkeypatch.setattr(nonces_module.SignerState, "destroy", crashing)


def test_crash_after_the_key_is_destroyed_fails_safe(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, nonces, packages = setup_group(cli, tmp_path, 2)
    key = keys / "key-package-1.json"
    with monkeypatch.context() as patch:
        crash_around_destroy(patch, after=True)
        with pytest.raises(Crash):
            sign(cli, tmp_path / "home-a", key, nonces, packages[0], tmp_path / "s0.json")
    assert not (tmp_path / "s0.json").exists() and nonces.exists() and one_time_keys(keys) == []
    # No share left the process, and the nonces can never be used again: fail safe.
    for home, package in ((tmp_path / "home-a", packages[0]), (tmp_path / "home-b", packages[1])):
        again = sign(cli, home, key, nonces, package, tmp_path / "s1.json")
        assert again.code == 1 and "already used" in again.err
        assert not (tmp_path / "s1.json").exists()


def test_crash_before_the_key_is_destroyed_leaves_one_use(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, nonces, packages = setup_group(cli, tmp_path, 2)
    key = keys / "key-package-1.json"
    copy = tmp_path / "copy.json"
    copy.write_bytes(nonces.read_bytes())
    with monkeypatch.context() as patch:
        crash_around_destroy(patch, after=False)
        with pytest.raises(Crash):
            sign(cli, tmp_path / "home-a", key, nonces, packages[0], tmp_path / "s0.json")
    assert not (tmp_path / "s0.json").exists() and len(one_time_keys(keys)) == 1
    ok = sign(cli, tmp_path / "home-a", key, nonces, packages[1], tmp_path / "s1.json")
    assert ok.code == 0, ok.err
    again = sign(cli, tmp_path / "home-b", key, copy, packages[0], tmp_path / "s2.json")
    assert again.code == 1 and "already used" in again.err


def test_concurrent_sign_that_loses_the_delete_writes_nothing(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two signs of the same nonces at once: the one whose delete of the key fails stops."""
    keys, nonces, packages = setup_group(cli, tmp_path, 1)
    original = frost.sign

    def other_process_wins(*args: Any) -> Any:
        share = original(*args)
        for path in one_time_keys(keys):
            path.unlink()  # the other 'frost sign' destroyed the key between our read and delete
        return share

    monkeypatch.setattr(frost, "sign", other_process_wins)
    lost = sign(cli, tmp_path / "home", keys / "key-package-1.json", nonces, packages[0], tmp_path / "s.json")
    assert lost.code == 1 and "already used" in lost.err and "same time" in lost.err
    assert not (tmp_path / "s.json").exists()


def test_home_ledger_is_a_second_layer(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a one-time key comes back exactly (a block-level snapshot of the signer directory),
    the home that saw the nonces sign still refuses them; another home cannot know (documented)."""
    keys, nonces, packages = setup_group(cli, tmp_path, 3)
    key = keys / "key-package-1.json"
    copy = tmp_path / "copy.json"
    copy.write_bytes(nonces.read_bytes())
    monkeypatch.setattr(nonces_module.SignerState, "destroy", lambda self, nonce_id, what: None)
    assert sign(cli, tmp_path / "home-a", key, nonces, packages[0], tmp_path / "s0.json").code == 0
    again = sign(cli, tmp_path / "home-a", key, copy, packages[1], tmp_path / "s1.json")
    assert again.code == 1 and "already used" in again.err
    assert not (tmp_path / "s1.json").exists()


def test_version_1_nonce_file_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    keys, nonces, packages = setup_group(cli, tmp_path, 1)
    doc = json.loads(nonces.read_text())
    old = {
        "format": "lifeboat-frost-nonces",
        "version": 1,
        "ciphersuite": doc["ciphersuite"],
        "nonce_id": doc["nonce_id"],
        "hiding_nonce": "01" + "00" * 31,
        "binding_nonce": "02" + "00" * 31,
        "commitment": doc["commitment"],
    }
    (tmp_path / "v1.json").write_text(json.dumps(old))
    result = sign(
        cli,
        tmp_path / "home",
        keys / "key-package-1.json",
        tmp_path / "v1.json",
        packages[0],
        tmp_path / "s.json",
    )
    assert result.code == 1 and "version-1 nonce file" in result.err and "frost commit" in result.err
    assert one_time_keys(keys)  # nothing consumed


def test_nonce_file_opens_as_docs_formats_describes(cli: CliRunner, tmp_path: Path) -> None:
    """An independent reader of docs/formats.md ("Nonce files and signer state") opens a real
    nonce file with its one-time key: AES-256-GCM, associated data = canonical JSON of the rest."""
    keys, nonces, _ = setup_group(cli, tmp_path, 1)
    doc = json.loads(nonces.read_text())
    [key_path] = one_time_keys(keys)
    key_doc = json.loads(key_path.read_text())
    assert key_doc["format"] == "lifeboat-frost-one-time-key" and key_doc["nonce_id"] == doc["nonce_id"]
    status = key_path.stat()
    assert doc["one_time_key_file"] == {"inode": status.st_ino, "ctime_ns": status.st_ctime_ns}
    sealed = bytes.fromhex(doc.pop("sealed_nonces"))
    associated = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    plaintext = AESGCM(bytes.fromhex(key_doc["key"])).decrypt(sealed[:12], sealed[12:], associated)
    hiding, binding = plaintext[:32], plaintext[32:]
    assert sodium.crypto_scalarmult_ed25519_base_noclamp(hiding).hex() == doc["commitment"]["hiding"]
    assert sodium.crypto_scalarmult_ed25519_base_noclamp(binding).hex() == doc["commitment"]["binding"]
    doc["nonce_id"] = "f" * 32  # any edit changes the associated data
    edited = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(InvalidTag):
        AESGCM(bytes.fromhex(key_doc["key"])).decrypt(sealed[:12], sealed[12:], edited)


def test_file_level_restore_of_the_signer_directory_signs_nothing(cli: CliRunner, tmp_path: Path) -> None:
    """A backup of the key directory taken between commit and sign, restored after the sign
    (same paths, same contents, same modification times): the restored key files are new files,
    so the nonces stay used. (A block-level rollback is what remains: docs/threat-model.md.)"""
    keys, nonces, packages = setup_group(cli, tmp_path, 2)
    copy = tmp_path / "copy.json"
    copy.write_bytes(nonces.read_bytes())
    backup = tmp_path / "backup"
    shutil.copytree(keys, backup)  # copy2: contents, modes and times
    key = keys / "key-package-1.json"
    assert sign(cli, tmp_path / "home-a", key, nonces, packages[0], tmp_path / "s0.json").code == 0
    shutil.rmtree(keys)
    shutil.copytree(backup, keys)
    assert len(one_time_keys(keys)) == 1  # the one-time key is back, byte for byte
    again = sign(cli, tmp_path / "home-b", key, copy, packages[1], tmp_path / "s1.json")
    assert again.code == 1 and "copy or a restore" in again.err, again.err
    assert not (tmp_path / "s1.json").exists()
