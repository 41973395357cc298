"""The key-backup flow through the CLI: create, seal, cards, drill, recover, reshare, confirm."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyrage
import pytest

from conftest import CliRunner
from lifeboat.secrets import bip39, slip39


def add_guardian(cli: CliRunner, tmp_path: Path, name: str) -> Path:
    identity = pyrage.x25519.Identity.generate()
    key = tmp_path / f"{name}.key"
    key.write_text(f"# {name}\n{identity}\n")
    assert cli("guardians", "add", name, str(identity.to_public())).code == 0
    return key


def share_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.txt"))


def test_create_drill_recover(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "shares"
    made = cli("--json", "shares", "create", "2:2of3,3of5", "--shares-dir", out, "--label", "treasury")
    assert made.code == 0, made.err
    record = made.json()["share_set"]
    assert record["scheme"] == "2:2of3,3of5" and record["status"] == "active"
    files = share_files(out)
    assert len(files) == 8
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert "shares" not in made.json()

    g1 = [f for f in files if "-g1-" in f.name]
    g2 = [f for f in files if "-g2-" in f.name]
    drill = cli("--json", "shares", "drill", g1[0], g1[2], g2[1], g2[3], g2[4])
    assert drill.code == 0, drill.out
    report = drill.json()
    assert report["ok"] and report["fingerprint_ok"] and report["share_set"] == record["id"]
    assert [g["complete"] for g in report["groups"]] == [True, True]

    short = cli("--json", "shares", "drill", g1[0], g2[1], g2[3], g2[4])
    assert short.code == 1
    assert short.json()["missing"] == "1 more group complete (group 1 needs 1 more)"

    recovered = cli("--json", "shares", "recover", g1[1], g1[2], g2[0], g2[2], g2[4], "--reveal")
    assert recovered.code == 0, recovered.err
    assert recovered.json()["fingerprint"] == record["fingerprint"]
    assert len(bytes.fromhex(recovered.json()["secret"])) == 32

    listing = cli("--json", "shares", "show", record["id"])
    drills = listing.json()["drills"]
    assert [d["ok"] for d in drills] == [True, False]


def test_drill_reports_each_bad_share(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert cli("shares", "create", "2of3", "--shares-dir", out, "--bits", "128").code == 0
    files = share_files(out)
    words = files[1].read_text().splitlines()[-1].split()
    words[5], words[6] = words[6], words[5]
    broken = tmp_path / "broken.txt"
    broken.write_text(" ".join(words))
    result = cli("--json", "shares", "drill", files[0], broken, files[0], files[2])
    report = result.json()
    assert result.code == 1  # the set reconstructs, but the drill names the bad shares
    assert report["fingerprint_ok"] is True
    reasons = {Path(s["label"]).name: s["reason"] for s in report["shares"] if not s["valid"]}
    assert "invalid checksum" in reasons["broken.txt"]
    assert any("duplicate of" in (r or "") for r in reasons.values())


def test_passphrase_wrong_is_caught_by_fingerprint(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "s"
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text("correct horse")
    wrong.write_text("battery staple")
    assert cli("shares", "create", "2of3", "--shares-dir", out, "--passphrase-file", right).code == 0
    files = [str(p) for p in share_files(out)[:2]]
    bad = cli("--json", "shares", "drill", *files, "--passphrase-file", wrong)
    assert bad.code == 1 and bad.json()["fingerprint_ok"] is False
    assert "wrong passphrase" in bad.json()["summary"]
    assert cli("shares", "drill", *files, "--passphrase-file", right).code == 0
    refused = cli("shares", "recover", *files, "--passphrase-file", wrong, "--reveal")
    assert refused.code == 1 and "passphrase is wrong" in refused.err
    # Piped stdin cannot answer a passphrase prompt: a clear error, not a hang.
    needed = cli("shares", "drill", *files)
    assert needed.code == 2 and "passphrase is needed" in needed.err


def test_wrong_passphrase_without_a_record_is_caught_by_the_stated_fingerprint(
    cli: CliRunner, tmp_path: Path
) -> None:
    keys = {name: add_guardian(cli, tmp_path, name) for name in ("alice", "bob", "carol")}
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text("correct horse")
    wrong.write_text("battery staple")
    out, sealed = tmp_path / "s", tmp_path / "env"
    made = cli("--json", "shares", "create", "2of3", "--shares-dir", out, "--passphrase-file", right)
    fingerprint = made.json()["share_set"]["fingerprint"]
    guarded = ["-g", "alice", "-g", "bob", "-g", "carol"]
    assert (
        cli("shares", "create", "2of3", "--shares-dir", sealed, *guarded, "--passphrase-file", right).code
        == 0
    )
    envelopes = [*sorted(sealed.glob("*.age"))[:2], "-i", keys["alice"], "-i", keys["bob"]]
    # Envelopes opened with stock age and saved ('age -d -i KEY FILE > share.txt') still count.
    decrypted = []
    for path, name in zip(sorted(sealed.glob("*.age"))[1:], ("bob", "carol"), strict=True):
        identity = pyrage.x25519.Identity.from_str(keys[name].read_text().splitlines()[-1])
        decrypted.append(tmp_path / f"{name}.txt")
        decrypted[-1].write_bytes(pyrage.decrypt(path.read_bytes(), [identity]))
    # A home with no record of either set: the files' own fingerprint is the reference.
    other = ["--home", tmp_path / "elsewhere"]
    for shares in (share_files(out)[:2], envelopes, decrypted):
        refused = cli(*other, "shares", "recover", *shares, "--passphrase-file", wrong, "--reveal")
        assert refused.code == 1, refused.out
        assert "not to the fingerprint their share files state" in refused.err
        assert "passphrase is wrong" in refused.err and refused.out == ""
        ok = cli(*other, "--json", "shares", "recover", *shares, "--passphrase-file", right, "--reveal")
        assert ok.code == 0, ok.err
        assert ok.json()["verified"] is True and ok.json()["checked_against"] == "share files"
        assert "warning" not in ok.json()
    forgotten = cli(*other, "shares", "recover", *share_files(out)[:2], "--reveal")
    assert forgotten.code == 1 and "none was given: -p asks for it" in forgotten.err
    # The drill too, and it says what it compared with.
    drill = cli(*other, "--json", "shares", "drill", *share_files(out)[1:], "--passphrase-file", wrong)
    assert drill.code == 1 and drill.json()["fingerprint_ok"] is False, drill.err
    drill = cli(*other, "--json", "shares", "drill", *share_files(out)[1:], "--passphrase-file", right)
    assert drill.code == 0 and drill.json()["ok"] and drill.json()["share_set"] is None
    assert fingerprint in drill.json()["summary"] and "no record of the set" in drill.json()["summary"]


def test_foreign_shares_say_the_passphrase_cannot_be_checked(cli: CliRunner, tmp_path: Path) -> None:
    made = slip39.split(b"\x05" * 16, slip39.Scheme.parse("2of3"), passphrase="p", iteration_exponent=0)
    bare = tmp_path / "bare.txt"  # e.g. Trezor's shamir output: no header, no fingerprint
    bare.write_text("\n".join(made.shares()[:2]) + "\n")
    passfile = tmp_path / "pass"
    passfile.write_text("not p")
    human = cli("shares", "recover", bare, "--passphrase-file", passfile, "--reveal")
    assert human.code == 0
    assert "warning: the passphrase cannot be checked" in human.err and "NOT CHECKED" in human.err
    js = cli("--json", "shares", "recover", bare, "--passphrase-file", passfile, "--reveal")
    assert js.code == 0 and "the passphrase cannot be checked" in js.err
    assert js.json()["verified"] is False and js.json()["checked_against"] is None
    assert "passphrase cannot be checked" in js.json()["warning"]


def test_share_files_that_state_different_fingerprints_are_refused(cli: CliRunner, tmp_path: Path) -> None:
    made = cli("--json", "shares", "create", "2of3", "--shares-dir", tmp_path / "s")
    fingerprint = made.json()["share_set"]["fingerprint"]
    files = share_files(tmp_path / "s")
    edited = tmp_path / "edited.txt"
    edited.write_text(files[1].read_text().replace(fingerprint, "0000-1111-2222-3333-4444-5555-6666-7777"))
    result = cli("--home", tmp_path / "elsewhere", "shares", "recover", files[0], edited, "--reveal")
    assert result.code == 1 and "the shares are not all of one Lifeboat set" in result.err


def test_guardian_envelopes_cards_and_drill(cli: CliRunner, tmp_path: Path) -> None:
    keys = {name: add_guardian(cli, tmp_path, name) for name in ("alice", "bob", "carol")}
    out = tmp_path / "env"
    made = cli(
        "--json", "shares", "create", "2of3", "--shares-dir", out, "-g", "alice", "-g", "bob", "-g", "carol"
    )
    assert made.code == 0, made.err
    envelopes = sorted(out.glob("*.age"))
    assert [e.name.rsplit("-", 1)[1] for e in envelopes] == ["alice.age", "bob.age", "carol.age"]

    opened = cli("--json", "shares", "open", envelopes[1], "-i", keys["bob"])
    assert opened.code == 0 and "share" not in opened.json()
    assert opened.json()["guardian"] == "bob" and opened.json()["member_index"] == 2
    wrong = cli("shares", "open", envelopes[1], "-i", keys["alice"])
    assert wrong.code == 1 and "none of the given identities opens it" in wrong.err

    drill = cli(
        "--json", "shares", "drill", envelopes[0], envelopes[2], "-i", keys["alice"], "-i", keys["carol"]
    )
    assert drill.code == 0 and drill.json()["ok"], drill.out

    cards = tmp_path / "cards.pdf"
    made_cards = cli(
        "shares", "cards", envelopes[0], envelopes[1], "-i", keys["alice"], "-i", keys["bob"], "-o", cards
    )
    assert made_cards.code == 0, made_cards.err
    assert cards.read_bytes().startswith(b"%PDF") and stat.S_IMODE(cards.stat().st_mode) == 0o600

    listing = cli("--json", "guardians", "list").json()["guardians"]
    assert {g["name"]: len(g["holds"]) for g in listing} == {"alice": 1, "bob": 1, "carol": 1}
    refused = cli("guardians", "remove", "bob")
    assert refused.code == 1 and "reshare those sets" in refused.err


def test_fewer_guardians_than_shares_needs_plaintext_rest(cli: CliRunner, tmp_path: Path) -> None:
    add_guardian(cli, tmp_path, "alice")
    out = tmp_path / "mixed"
    for command in (
        ["shares", "create", "2of3"],
        ["seal", tmp_path / "alice.key", "-o", tmp_path / "k.lbx", "--scheme", "2of3"],
        ["repo", "key", "split", "2of3"],
    ):
        refused = cli(*command, "--shares-dir", out, "-g", "alice")
        assert refused.code == 2, refused.err
        assert "the other 2 would be written unsealed" in refused.err and "--plaintext-rest" in refused.err
        assert not out.exists() and not (tmp_path / "k.lbx").exists()
    assert cli("--json", "shares", "list").json()["share_sets"] == []
    made = cli("--json", "shares", "create", "2of3", "--shares-dir", out, "-g", "alice", "--plaintext-rest")
    assert made.code == 0, made.err
    assert len(list(out.glob("*-alice.age"))) == 1 and len(share_files(out)) == 2
    # A guardian for every share needs no flag.
    add_guardian(cli, tmp_path, "bob")
    whole = cli("shares", "create", "2of2", "--shares-dir", tmp_path / "all", "-g", "alice", "-g", "bob")
    assert whole.code == 0, whole.err


def test_create_reveal_prints_every_share(cli: CliRunner, tmp_path: Path) -> None:
    add_guardian(cli, tmp_path, "alice")
    add_guardian(cli, tmp_path, "bob")
    help_text = " ".join(cli("shares", "create", "--help").out.split())
    assert "Print every share" in help_text and "Print the secret" not in help_text
    made = cli(
        "shares",
        "create",
        "2of2",
        "--bits",
        "128",
        "--shares-dir",
        tmp_path / "d",
        "-g",
        "alice",
        "-g",
        "bob",
        "--reveal",
    )
    assert made.code == 0, made.err
    printed = [line for line in made.out.splitlines() if len(line.split()) == 20]
    assert len(printed) == 2  # the shares sealed to guardians, in clear: what --reveal says it does
    assert slip39.combine(printed)


def test_seal_existing_share_to_guardian(cli: CliRunner, tmp_path: Path) -> None:
    key = add_guardian(cli, tmp_path, "dave")
    out = tmp_path / "s"
    assert cli("shares", "create", "2of3", "--shares-dir", out).code == 0
    share = share_files(out)[0]
    sealed = cli("--json", "shares", "seal", share, "--to", "dave")
    assert sealed.code == 0, sealed.err
    path = Path(sealed.json()["envelope"])
    opened = cli("--json", "shares", "open", path, "-i", key, "--reveal")
    assert opened.json()["share"] == share.read_text().splitlines()[-1]
    again = cli("shares", "seal", share, "--to", "dave")
    assert again.code == 1 and "already exists" in again.err


def test_reshare_is_pending_until_confirmed(cli: CliRunner, tmp_path: Path) -> None:
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old = cli("--json", "shares", "create", "2of3", "--shares-dir", old_dir).json()["share_set"]
    old_files = share_files(old_dir)
    new = cli(
        "--json", "shares", "reshare", old_files[0], old_files[2], "--scheme", "3of5", "--shares-dir", new_dir
    )
    assert new.code == 0, new.err
    new_set = new.json()["share_set"]
    assert new_set["status"] == "pending" and new_set["replaces"] == old["id"]
    assert new_set["fingerprint"] == old["fingerprint"]
    new_files = share_files(new_dir)
    assert len(new_files) == 5

    # The old set stays active until a threshold of the new shares is entered back.
    twice = cli(
        "shares", "reshare", old_files[0], old_files[1], "--scheme", "2of3", "--shares-dir", tmp_path / "x"
    )
    assert twice.code == 2 and "pending reshare" in twice.err
    too_few = cli("--json", "shares", "confirm", new_set["id"], new_files[0], new_files[1])
    assert too_few.code == 1
    state = {s["id"]: s["status"] for s in cli("--json", "shares", "list", "--all").json()["share_sets"]}
    assert state == {old["id"]: "active", new_set["id"]: "pending"}
    wrong_set = cli("shares", "confirm", new_set["id"], old_files[0], old_files[1])
    assert wrong_set.code == 1

    done = cli("--json", "shares", "confirm", new_set["id"], new_files[4], new_files[1], new_files[2])
    assert done.code == 0, done.out
    state = {s["id"]: s["status"] for s in cli("--json", "shares", "list", "--all").json()["share_sets"]}
    assert state == {old["id"]: "retired", new_set["id"]: "active"}
    # The new shares recover the same secret as the old ones.
    a = cli("--json", "shares", "recover", old_files[1], old_files[2], "--reveal").json()["secret"]
    b = cli("--json", "shares", "recover", *new_files[:3], "--reveal").json()["secret"]
    assert a == b


def test_bip39_entropy_and_seed_modes(cli: CliRunner, tmp_path: Path) -> None:
    phrase = bip39.from_entropy(bytes(range(32)))
    words = tmp_path / "words.txt"
    words.write_text(phrase.phrase + "\n")
    missing = cli("shares", "create", "2of3", "--from-bip39", words, "--reveal")
    assert missing.code == 2 and "--split seed" in missing.err

    entropy = cli(
        "--json", "shares", "create", "2of3", "--from-bip39", words, "--split", "entropy", "--reveal"
    )
    shares = entropy.json()["shares"][0]
    assert {len(s.split()) for s in shares} == {33}
    back = cli("--json", "shares", "recover", "-", "--reveal", stdin="\n".join(shares[:2]))
    assert back.code == 0, back.err
    assert back.json()["form"] == "bip39" and back.json()["secret"] == phrase.phrase

    seed = cli("--json", "shares", "create", "2of3", "--from-bip39", words, "--split", "seed", "--reveal")
    seed_shares = seed.json()["shares"][0]
    assert {len(s.split()) for s in seed_shares} == {59}
    recovered = slip39.combine(seed_shares[1:])
    assert recovered == bip39.to_seed(phrase)
    assert bip39.master_xprv(recovered) == bip39.master_xprv(bip39.to_seed(phrase))


def test_inspect_shows_metadata_only(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert cli("shares", "create", "2:2of3,3of5", "--shares-dir", out).code == 0
    files = share_files(out)
    result = cli("--json", "shares", "inspect", files[4])
    row = result.json()["shares"][0]
    assert (row["group_index"], row["member_index"], row["member_threshold"], row["group_threshold"]) == (
        2,
        2,
        3,
        2,
    )
    secret_words = set(files[4].read_text().splitlines()[-1].split()[4:])
    assert not secret_words & set(result.out.split())


def test_mnemonic_commands(cli: CliRunner, tmp_path: Path) -> None:
    refused = cli("mnemonic", "generate")
    assert refused.code == 2 and "--reveal" in refused.err
    made = cli("--json", "mnemonic", "generate", "--words", "12", "--language", "italian", "--reveal")
    phrase = made.json()["phrase"]
    assert cli("--json", "mnemonic", "check", stdin=phrase).json() == {
        "valid": True,
        "words": 12,
        "language": "italian",
        "languages": ["italian"],
    }
    bad = cli("mnemonic", "check", stdin="abandon " * 11 + "abuot")
    assert bad.code == 1 and "did you mean 'about'" in bad.err
    seed = cli("--json", "mnemonic", "seed", "--reveal", stdin="abandon " * 11 + "about")
    assert seed.json()["seed"].startswith("5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc1")
    hidden = cli("mnemonic", "seed", "-o", tmp_path / "seed.hex", stdin="abandon " * 11 + "about")
    assert hidden.code == 0 and "5eb00bbd" not in hidden.out + hidden.err
    assert stat.S_IMODE((tmp_path / "seed.hex").stat().st_mode) == 0o600


def test_chinese_phrase_valid_in_both_lists(cli: CliRunner) -> None:
    # The seed is PBKDF2 over the words: which Chinese list they are read from does not change it.
    phrase = bip39.from_entropy(
        bytes.fromhex("a3399c22a3256f362e9557957ded32cb"), "chinese_simplified"
    ).phrase
    assert bip39.parse(phrase, "chinese_traditional").phrase == phrase
    expected = bip39.to_seed(bip39.parse(phrase, "chinese_traditional")).hex()
    seed = cli("--json", "mnemonic", "seed", "--reveal", stdin=phrase)
    assert seed.code == 0, seed.err
    assert seed.json()["seed"] == expected
    checked = cli("mnemonic", "check", stdin=phrase)
    assert checked.code == 0, checked.err
    assert "chinese_simplified and chinese_traditional" in checked.out
    assert cli("--json", "mnemonic", "check", stdin=phrase).json()["languages"] == [
        "chinese_simplified",
        "chinese_traditional",
    ]


def test_no_secret_printed_or_logged_without_reveal(
    cli: CliRunner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "ab" * 32
    secret_file = tmp_path / "secret.hex"
    secret_file.write_text(secret)
    out = tmp_path / "s"
    outputs = [cli("shares", "create", "2of3", "--secret-hex-file", secret_file, "--shares-dir", out)]
    files = share_files(out)
    # Any three consecutive words of a share's value would be a leak; single words may collide
    # with ordinary output ("random", "ok" are SLIP-39 words).
    windows: set[str] = set()
    for f in files:
        words = f.read_text().splitlines()[-1].split()[4:]
        windows.update(" ".join(words[i : i + 3]) for i in range(len(words) - 2))
    for json_flag in ([], ["--json"]):
        outputs.append(cli(*json_flag, "shares", "drill", *files))
        outputs.append(cli(*json_flag, "shares", "inspect", *files))
        outputs.append(cli(*json_flag, "shares", "recover", *files[:2], "-o", tmp_path / f"r{len(outputs)}"))
        outputs.append(cli(*json_flag, "shares", "list"))
    for result in outputs:
        assert result.code == 0, result.err
        text = result.out + result.err + caplog.text
        assert secret not in text
        flat = " ".join(text.replace('"', " ").split())
        assert not any(w in flat for w in windows)
    revealed = cli("shares", "recover", *files[:2], "--reveal")
    assert secret in revealed.out


def test_usage_and_user_errors_have_exit_codes(cli: CliRunner, tmp_path: Path) -> None:
    assert cli("shares", "create", "2of3").code == 2
    assert cli("shares", "create", "--bogus-flag").code == 2
    assert cli("shares", "create", "1of3", "--reveal").code == 2
    missing = cli("shares", "drill", tmp_path / "nope.txt")
    assert missing.code == 1 and "does not exist" in missing.err
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"a" * (2 * 1024 * 1024))
    assert "larger than" in cli("shares", "inspect", huge).err
    no_parent = cli("shares", "create", "2of3", "--shares-dir", tmp_path / "a" / "b")
    assert no_parent.code == 1 and "parent directory does not exist" in no_parent.err
    js = cli("--json", "shares", "drill", tmp_path / "nope.txt")
    assert js.json()["ok"] is False and js.json()["kind"] == "StorageError"
    for command in (["shares", "show", "s-none"], ["guardians", "remove", "zed"]):
        result = cli(*command)
        assert result.code == 1 and result.err.count("\n") == 1


def test_shares_dir_that_is_a_file_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    result = cli("shares", "create", "2of3", "--shares-dir", blocker)
    assert result.code == 1 and "is not a directory" in result.err
    assert blocker.read_text() == "not a directory"
    assert cli("--json", "shares", "list").json()["share_sets"] == []


def test_failed_write_leaves_no_files_and_no_record(
    cli: CliRunner, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lifeboat.secrets.backup as backup

    calls = {"n": 0}
    real = backup.write_atomic  # type: ignore[attr-defined]

    def flaky(path: Path, data: bytes, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real(path, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backup, "write_atomic", flaky)
    out = tmp_path / "s"
    result = cli("shares", "create", "2of3", "--shares-dir", out)
    assert result.code != 0
    assert not out.exists()  # created for this command, removed again
    assert cli("--json", "shares", "list").json()["share_sets"] == []


def test_home_version_and_corruption_are_refused(cli: CliRunner, home: Path) -> None:
    home.mkdir(parents=True)
    (home / "home.json").write_text(json.dumps({"format": "lifeboat-home", "version": 7}))
    result = cli("shares", "list")
    assert result.code == 1 and "version 7" in result.err
    (home / "home.json").write_text("{ not json")
    assert "not valid JSON" in cli("shares", "list").err


def test_console_script_runs(tmp_path: Path) -> None:
    env = {**os.environ, "LIFEBOAT_HOME": str(tmp_path / "h")}
    proc = subprocess.run(
        [sys.executable, "-m", "lifeboat", "--json", "shares", "list"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"share_sets": []}
    bad = subprocess.run(
        [sys.executable, "-m", "lifeboat", "shares", "drill", "/nonexistent"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("lifeboat: error:")


def test_seal_never_destroys_an_existing_file(cli: CliRunner, tmp_path: Path) -> None:
    precious = tmp_path / "w.json"
    precious.write_text("precious")
    onto_itself = cli("seal", precious, "-o", precious, "--force", "--shares-dir", tmp_path / "k")
    assert onto_itself.code == 2 and precious.read_text() == "precious"
    existing = tmp_path / "w.json.lbx"
    existing.write_text("older sealed file")
    failed = cli("seal", precious, "--force", "--shares-dir", tmp_path / "k", "-g", "nobody")
    assert failed.code == 1 and "no guardian named 'nobody'" in failed.err
    assert existing.read_text() == "older sealed file" and precious.read_text() == "precious"
    assert not (tmp_path / "k").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json", "w.json.lbx"]


def test_guardian_named_twice_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    add_guardian(cli, tmp_path, "alice")
    result = cli("shares", "create", "2of3", "--shares-dir", tmp_path / "d", "-g", "alice", "-g", "alice")
    assert result.code == 2 and "named more than once" in result.err
    assert not (tmp_path / "d").exists()


def test_non_utf8_passphrase_file_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    passfile = tmp_path / "pass"
    passfile.write_bytes(b"caf\xe9")
    result = cli(
        "mnemonic", "seed", "--passphrase-file", passfile, "--reveal", stdin="abandon " * 11 + "about"
    )
    assert result.code == 1 and "not UTF-8" in result.err


def test_pending_reshare_can_be_cancelled(cli: CliRunner, tmp_path: Path) -> None:
    old = cli("--json", "shares", "create", "2of3", "--shares-dir", tmp_path / "old").json()["share_set"]
    files = share_files(tmp_path / "old")
    new = cli("--json", "shares", "reshare", *files[:2], "--scheme", "2of3", "--shares-dir", tmp_path / "new")
    new_id = new.json()["share_set"]["id"]
    assert cli("shares", "cancel", old["id"]).code == 2  # not pending
    cancelled = cli("--json", "shares", "cancel", new_id)
    assert cancelled.code == 0 and cancelled.json()["status"] == "retired"
    again = cli("shares", "reshare", *files[1:], "--scheme", "3of5", "--shares-dir", tmp_path / "again")
    assert again.code == 0, again.err
    assert cli("shares", "confirm", new_id, *share_files(tmp_path / "new")).code == 2


def test_json_flag_anywhere_and_on_usage_errors(cli: CliRunner) -> None:
    assert cli("shares", "list", "--json").json() == {"share_sets": []}
    bad = cli("--json", "shares", "drill", "--bogus")
    assert bad.code == 2 and bad.json()["ok"] is False


@pytest.mark.parametrize(
    "mangle",
    [
        lambda body: body["share_sets"].update({"s-x": "ab"}),
        lambda body: next(iter(body["share_sets"].values())).update({"fingerprint": "zz"}),
        lambda body: next(iter(body["share_sets"].values())).update({"identifier": "12"}),
        lambda body: body["share_sets"].update({"s-other": next(iter(body["share_sets"].values()))}),
        lambda body: body.update({"version": True}),
    ],
)
def test_malformed_home_records_are_refused(cli: CliRunner, tmp_path: Path, home: Path, mangle: Any) -> None:
    assert cli("shares", "create", "2of3", "--shares-dir", tmp_path / "s").code == 0
    body = json.loads((home / "home.json").read_text())
    mangle(body)
    (home / "home.json").write_text(json.dumps(body))
    result = cli("--json", "shares", "drill", *share_files(tmp_path / "s"))
    assert result.code == 1 and result.json()["kind"] == "HomeError", result.err
    assert result.err.startswith("lifeboat: error:") and result.err.count("\n") == 1
