"""File-based FROST ceremonies through the CLI: dealer, commit, package, sign, aggregate, verify."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from coincurve import PublicKeyXOnly

from conftest import CliRunner

SUITES = ["ed25519", "secp256k1", "secp256k1-tr"]


def ceremony(cli: CliRunner, tmp_path: Path, suite: str, signers: list[int], t: int = 2, n: int = 3) -> Path:
    keys = tmp_path / "keys"
    made = cli("--json", "frost", "dealer", "-t", t, "-n", n, "--suite", suite, "-d", keys)
    assert made.code == 0, made.err
    for i in signers:
        assert (
            cli("frost", "commit", "-k", keys / f"key-package-{i}.json", "-d", tmp_path / f"p{i}").code == 0
        )
    (tmp_path / "msg").write_bytes(b"transfer 100 to treasury")
    commitments = [tmp_path / f"p{i}" / f"commitment-{i}.json" for i in signers]
    assert (
        cli("frost", "package", *commitments, "-m", tmp_path / "msg", "-o", tmp_path / "pkg.json").code == 0
    )
    for i in signers:
        [nonces] = (tmp_path / f"p{i}").glob("nonces-*.json")
        result = cli(
            "frost", "sign", "-k", keys / f"key-package-{i}.json", "--nonces", nonces,
            "-p", tmp_path / "pkg.json", "-o", tmp_path / f"share-{i}.json",
        )  # fmt: skip
        assert result.code == 0, result.err
        assert not nonces.exists()
    return keys


@pytest.mark.parametrize("suite", SUITES)
def test_full_ceremony_verifies_independently(cli: CliRunner, tmp_path: Path, suite: str) -> None:
    keys = ceremony(cli, tmp_path, suite, [1, 3])
    assert stat.S_IMODE((keys / "key-package-1.json").stat().st_mode) == 0o600
    shares = [tmp_path / "share-1.json", tmp_path / "share-3.json"]
    out = cli(
        "--json", "frost", "aggregate", *shares, "-p", tmp_path / "pkg.json",
        "--public", keys / "public-key-package.json", "-o", tmp_path / "sig.json",
    )  # fmt: skip
    assert out.code == 0, out.err
    verified = cli(
        "--json",
        "frost",
        "verify",
        tmp_path / "sig.json",
        "--public",
        keys / "public-key-package.json",
        "-m",
        tmp_path / "msg",
    )
    assert verified.json()["valid"] is True
    doc = json.loads((tmp_path / "sig.json").read_text())
    signature, key = bytes.fromhex(doc["signature"]), bytes.fromhex(doc["group_public_key"])
    if suite == "ed25519":
        nacl.signing.VerifyKey(key).verify(b"transfer 100 to treasury", signature)
    if suite == "secp256k1-tr":
        # An ordinary BIP-340 verifier (libsecp256k1) accepts it under the x-only group key.
        assert len(signature) == 64
        assert PublicKeyXOnly(key[1:]).verify(signature, b"transfer 100 to treasury")
    other = tmp_path / "other"
    other.write_bytes(b"transfer 999")
    wrong = cli("frost", "verify", tmp_path / "sig.json", "-m", other)
    assert wrong.code == 1 and "different message" in wrong.out


@pytest.mark.parametrize("suite", SUITES)
def test_cheater_is_named(cli: CliRunner, tmp_path: Path, suite: str) -> None:
    keys = ceremony(cli, tmp_path, suite, [1, 2, 3], t=2, n=3)
    for i in (1, 3):
        path = tmp_path / f"share-{i}.json"
        doc = json.loads(path.read_text())
        doc["share"] = doc["share"][:-2] + ("00" if doc["share"][-2:] != "00" else "01")
        path.write_text(json.dumps(doc))
    shares = [tmp_path / f"share-{i}.json" for i in (1, 2, 3)]
    public = keys / "public-key-package.json"
    checks = {
        i: cli(
            "--json", "frost", "verify-share", shares[i - 1], "-p", tmp_path / "pkg.json", "--public", public
        )
        for i in (1, 2, 3)
    }
    assert {i: r.json()["valid"] for i, r in checks.items()} == {1: False, 2: True, 3: False}
    assert [r.code for r in checks.values()] == [1, 0, 1]
    out = cli(
        "--json", "frost", "aggregate", *shares, "-p", tmp_path / "pkg.json",
        "--public", keys / "public-key-package.json", "-o", tmp_path / "sig.json",
    )  # fmt: skip
    assert out.code == 1 and "cheating participant(s): [1, 3]" in out.err
    assert not (tmp_path / "sig.json").exists()


def test_nonce_reuse_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    cli("frost", "dealer", "-t", 2, "-n", 2, "-d", keys)
    cli("frost", "commit", "-k", keys / "key-package-1.json", "-d", tmp_path / "p1")
    cli("frost", "commit", "-k", keys / "key-package-2.json", "-d", tmp_path / "p2")
    [nonces] = (tmp_path / "p1").glob("nonces-*.json")
    copy = tmp_path / "copy.json"
    copy.write_bytes(nonces.read_bytes())
    commitments = [tmp_path / "p1" / "commitment-1.json", tmp_path / "p2" / "commitment-2.json"]
    cli("frost", "package", *commitments, "--message-hex", "01", "-o", tmp_path / "a.json")
    cli("frost", "package", *commitments, "--message-hex", "02", "-o", tmp_path / "b.json")
    args = ["frost", "sign", "-k", keys / "key-package-1.json"]
    assert cli(*args, "--nonces", nonces, "-p", tmp_path / "a.json", "-o", tmp_path / "s1.json").code == 0
    again = cli(*args, "--nonces", copy, "-p", tmp_path / "b.json", "-o", tmp_path / "s2.json")
    assert again.code == 1 and "already used" in again.err
    assert not (tmp_path / "s2.json").exists()


def test_bad_inputs_are_named(cli: CliRunner, tmp_path: Path) -> None:
    keys_ed, keys_k1 = tmp_path / "ed", tmp_path / "k1"
    cli("frost", "dealer", "-t", 2, "-n", 3, "-d", keys_ed)
    cli("frost", "dealer", "-t", 2, "-n", 3, "--suite", "secp256k1", "-d", keys_k1)
    cli("frost", "commit", "-k", keys_ed / "key-package-1.json", "-d", tmp_path / "e1")
    cli("frost", "commit", "-k", keys_k1 / "key-package-2.json", "-d", tmp_path / "k2")
    mixed = cli(
        "frost", "package", tmp_path / "e1" / "commitment-1.json", tmp_path / "k2" / "commitment-2.json",
        "--message-hex", "00", "-o", tmp_path / "p.json",
    )  # fmt: skip
    assert mixed.code == 1 and "is for ciphersuite FROST-secp256k1-SHA256-v1" in mixed.err

    doc = json.loads((tmp_path / "e1" / "commitment-1.json").read_text())
    for field, value, reason in [
        ("hiding", "01" + "00" * 31, "identity"),
        ("hiding", "zz", "not hex"),
        ("binding", "ff" * 32, "field 'binding'"),
        ("identifier", 0, "identifier"),
    ]:
        bad = dict(doc, **{field: value})
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        result = cli("frost", "package", path, "--message-hex", "00", "-o", tmp_path / "p.json")
        assert result.code == 1 and reason in result.err, (field, result.err)
    key = json.loads((keys_ed / "key-package-1.json").read_text())
    key["signing_share"] = "ff" * 32
    (tmp_path / "k.json").write_text(json.dumps(key))
    result = cli("frost", "commit", "-k", tmp_path / "k.json", "-d", tmp_path / "x")
    assert result.code == 1 and "signing_share" in result.err
    assert cli("frost", "dealer", "-t", 1, "-n", 3, "-d", tmp_path / "y").code == 1
    assert cli("frost", "dealer", "-t", 2, "-n", 3, "--suite", "p256", "-d", tmp_path / "z").code == 1


def test_signing_package_without_own_commitment(cli: CliRunner, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    cli("frost", "dealer", "-t", 2, "-n", 3, "-d", keys)
    for i in (1, 2, 3):
        cli("frost", "commit", "-k", keys / f"key-package-{i}.json", "-d", tmp_path / f"p{i}")
    commitments = [tmp_path / "p2" / "commitment-2.json", tmp_path / "p3" / "commitment-3.json"]
    cli("frost", "package", *commitments, "--message-hex", "00", "-o", tmp_path / "pkg.json")
    [nonces] = (tmp_path / "p1").glob("nonces-*.json")
    result = cli(
        "frost", "sign", "-k", keys / "key-package-1.json", "--nonces", nonces,
        "-p", tmp_path / "pkg.json", "-o", tmp_path / "s.json",
    )  # fmt: skip
    assert result.code == 1 and "no commitment from participant 1" in result.err
    assert nonces.exists()  # nothing was consumed


def test_edited_nonce_copy_and_bad_outputs(cli: CliRunner, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    cli("frost", "dealer", "-t", 2, "-n", 2, "-d", keys)
    cli("frost", "commit", "-k", keys / "key-package-1.json", "-d", tmp_path / "p1")
    cli("frost", "commit", "-k", keys / "key-package-2.json", "-d", tmp_path / "p2")
    [nonces] = (tmp_path / "p1").glob("nonces-*.json")
    doc = json.loads(nonces.read_text())
    edited = dict(doc, nonce_id="0" * 32)
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    (tmp_path / "bad-id.json").write_text(json.dumps(dict(doc, nonce_id="é")))
    commitments = [tmp_path / "p1" / "commitment-1.json", tmp_path / "p2" / "commitment-2.json"]
    cli("frost", "package", *commitments, "--message-hex", "01", "-o", tmp_path / "a.json")
    cli("frost", "package", *commitments, "--message-hex", "02", "-o", tmp_path / "b.json")
    args = ["frost", "sign", "-k", keys / "key-package-1.json"]
    # An output that cannot be written is refused before the nonce is consumed.
    nowhere = cli(*args, "--nonces", nonces, "-p", tmp_path / "a.json", "-o", tmp_path / "no" / "s.json")
    assert nowhere.code == 1 and nonces.exists()
    bad_id = cli(
        *args, "--nonces", tmp_path / "bad-id.json", "-p", tmp_path / "a.json", "-o", tmp_path / "x.json"
    )
    assert bad_id.code == 1 and "nonce_id" in bad_id.err
    assert cli(*args, "--nonces", nonces, "-p", tmp_path / "a.json", "-o", tmp_path / "s1.json").code == 0
    # An edited id names no one-time key (and would break the seal), so it does not help.
    again = cli(
        *args, "--nonces", tmp_path / "edited.json", "-p", tmp_path / "b.json", "-o", tmp_path / "s2.json"
    )
    assert again.code == 1 and "already used" in again.err


def test_wrong_public_key_package_is_not_blamed_on_signers(cli: CliRunner, tmp_path: Path) -> None:
    keys = ceremony(cli, tmp_path, "ed25519", [1, 2])
    cli("frost", "dealer", "-t", 2, "-n", 3, "-d", tmp_path / "other")
    shares = [tmp_path / "share-1.json", tmp_path / "share-2.json"]
    out = cli(
        "frost", "aggregate", *shares, "-p", tmp_path / "pkg.json",
        "--public", tmp_path / "other" / "public-key-package.json", "-o", tmp_path / "sig.json",
    )  # fmt: skip
    assert out.code == 1 and "public key package is probably not this group's" in out.err
    assert keys.exists()


def test_malformed_public_packages_and_collisions(cli: CliRunner, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    cli("frost", "dealer", "-t", 2, "-n", 3, "-d", keys)
    public = json.loads((keys / "public-key-package.json").read_text())

    def padded_key(d: dict[str, Any]) -> None:
        d["verifying_shares"]["01"] = d["verifying_shares"]["1"]

    def threshold_one(d: dict[str, Any]) -> None:
        d["min_signers"] = 1

    manglers: list[tuple[Callable[[dict[str, Any]], None], str]] = [
        (padded_key, "not a decimal identifier"),
        (threshold_one, "min_signers"),
    ]
    for mangle, reason in manglers:
        doc = json.loads(json.dumps(public))
        mangle(doc)
        (tmp_path / "p.json").write_text(json.dumps(doc))
        r = cli("frost", "refresh", "dealer", "--public", tmp_path / "p.json", "-d", tmp_path / "r")
        assert r.code == 1 and reason in r.err, r.err
    # A second dealer run into the same directory refuses before writing anything.
    before = {p.name: p.read_bytes() for p in keys.iterdir()}
    again = cli("frost", "dealer", "-t", 2, "-n", 3, "-d", keys)
    assert again.code == 1 and "already exist" in again.err
    assert {p.name: p.read_bytes() for p in keys.iterdir()} == before


def test_package_checks_signers_against_the_public_key_package(cli: CliRunner, tmp_path: Path) -> None:
    """Issue 10 (6b): fewer than t commitments, or one from outside the group, is refused."""
    keys, other = tmp_path / "keys", tmp_path / "other"
    assert cli("frost", "dealer", "-t", 3, "-n", 4, "-d", keys).code == 0
    assert cli("frost", "dealer", "-t", 2, "-n", 5, "-d", other).code == 0
    for i in (1, 2, 3):
        assert (
            cli("frost", "commit", "-k", keys / f"key-package-{i}.json", "-d", tmp_path / f"p{i}").code == 0
        )
    assert cli("frost", "commit", "-k", other / "key-package-5.json", "-d", tmp_path / "p5").code == 0
    public = keys / "public-key-package.json"
    c = {i: tmp_path / f"p{i}" / f"commitment-{i}.json" for i in (1, 2, 3, 5)}
    package = ["frost", "package", "--message-hex", "00", "--public", public, "-o", tmp_path / "pkg.json"]
    too_few = cli(*package, c[1], c[2])
    assert too_few.code == 1 and "fewer than the group's threshold 3" in too_few.err, too_few.err
    outsider = cli(*package, c[1], c[2], c[5])
    assert outsider.code == 1 and "participant(s) [5], who are not in the group" in outsider.err
    assert not (tmp_path / "pkg.json").exists()
    good = cli("--json", *package, c[1], c[2], c[3])
    assert good.code == 0 and good.json()["checked_against_group"] is True
    # Without --public nothing is checked here, and the command says so.
    unchecked = cli("frost", "package", c[1], c[2], "--message-hex", "00", "-o", tmp_path / "u.json")
    assert unchecked.code == 0 and "not checked against the group" in unchecked.err
    # ... but each signer still refuses a package below its threshold, before using its nonces.
    [nonces] = (tmp_path / "p1").glob("nonces-*.json")
    refused = cli(
        "frost", "sign", "-k", keys / "key-package-1.json", "--nonces", nonces,
        "-p", tmp_path / "u.json", "-o", tmp_path / "s.json",
    )  # fmt: skip
    assert refused.code == 1 and "fewer than the threshold 3" in refused.err
    assert nonces.exists()


def test_aggregate_names_an_outsiders_share(cli: CliRunner, tmp_path: Path) -> None:
    """Issue 10 (6b): a share from a participant who is not in the signing package, in place of
    a signer's share, is named as the outsider's, not only reported as a missing share."""
    keys = ceremony(cli, tmp_path, "ed25519", [1, 3], t=2, n=4)
    # Participant 4 signs another package (with 1) in good faith; its share is then handed in
    # for the first package instead of participant 3's.
    work = tmp_path / "second"
    for i in (1, 4):
        assert cli("frost", "commit", "-k", keys / f"key-package-{i}.json", "-d", work / f"p{i}").code == 0
    commitments = [work / "p1" / "commitment-1.json", work / "p4" / "commitment-4.json"]
    assert cli("frost", "package", *commitments, "--message-hex", "aa", "-o", work / "pkg.json").code == 0
    [nonces] = (work / "p4").glob("nonces-*.json")
    signed = cli(
        "frost", "sign", "-k", keys / "key-package-4.json", "--nonces", nonces,
        "-p", work / "pkg.json", "-o", work / "share-4.json",
    )  # fmt: skip
    assert signed.code == 0, signed.err
    out = cli(
        "frost", "aggregate", tmp_path / "share-1.json", work / "share-4.json", "-p", tmp_path / "pkg.json",
        "--public", keys / "public-key-package.json", "-o", tmp_path / "sig.json",
    )  # fmt: skip
    assert out.code == 1
    assert "signature share from participant 4, who is not a signer in this signing package" in out.err
    assert "no signature share from participant(s) [3]" in out.err
    assert not (tmp_path / "sig.json").exists()
