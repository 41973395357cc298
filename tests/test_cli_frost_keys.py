"""File-based DKG, repair and refresh ceremonies through the CLI, ending in a real signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import CliRunner


def sign_with(
    cli: CliRunner, tmp_path: Path, keys: dict[int, Path], public: Path, tag: str
) -> dict[str, object]:
    """Run commit, package, sign, aggregate, verify for the given key packages."""
    work = tmp_path / f"sign-{tag}"
    for i, key in keys.items():
        assert cli("frost", "commit", "-k", key, "-d", work / f"p{i}").code == 0
    commitments = [work / f"p{i}" / f"commitment-{i}.json" for i in keys]
    assert cli("frost", "package", *commitments, "--message-hex", "abcd", "-o", work / "pkg.json").code == 0
    for i, key in keys.items():
        [nonces] = (work / f"p{i}").glob("nonces-*.json")
        r = cli(
            "frost", "sign", "-k", key, "--nonces", nonces, "-p", work / "pkg.json", "-o", work / f"s{i}.json"
        )
        assert r.code == 0, r.err
    shares = [work / f"s{i}.json" for i in keys]
    out = cli(
        "--json",
        "frost",
        "aggregate",
        *shares,
        "-p",
        work / "pkg.json",
        "--public",
        public,
        "-o",
        work / "sig.json",
    )
    assert out.code == 0, out.err
    verified = cli("--json", "frost", "verify", work / "sig.json", "--public", public)
    assert verified.code == 0, verified.out
    result: dict[str, object] = json.loads((work / "sig.json").read_text())
    return result


def dkg_parts_1_2(cli: CliRunner, base: Path, suite: str, t: int, n: int) -> dict[int, Path]:
    """Parts 1 and 2 for participants 1..n, each in ``base/p<i>``; the round-one files."""
    for i in range(1, n + 1):
        assert (
            cli(
                "frost", "dkg", "part1", "--suite", suite, "-i", i, "-t", t, "-n", n, "-d", base / f"p{i}"
            ).code
            == 0
        )
    round1 = {i: base / f"p{i}" / f"dkg-round1-{i}.json" for i in range(1, n + 1)}
    for i in range(1, n + 1):
        others = [round1[j] for j in round1 if j != i]
        r = cli(
            "frost",
            "dkg",
            "part2",
            "-s",
            base / f"p{i}" / f"dkg-round1-secret-{i}.json",
            *others,
            "-d",
            base / f"p{i}",
        )
        assert r.code == 0, r.err
        assert not (base / f"p{i}" / f"dkg-round1-secret-{i}.json").exists()
    return round1


def dkg(cli: CliRunner, tmp_path: Path, suite: str, t: int, n: int) -> tuple[dict[int, Path], Path]:
    base = tmp_path / "dkg"
    round1 = dkg_parts_1_2(cli, base, suite, t, n)
    keys = {}
    for i in range(1, n + 1):
        flags: list[str | Path] = [x for j in round1 if j != i for x in ("--round1", round1[j])]
        received = [base / f"p{j}" / f"dkg-round2-{j}-to-{i}.json" for j in round1 if j != i]
        r = cli(
            "frost",
            "dkg",
            "part3",
            "-s",
            base / f"p{i}" / f"dkg-round2-secret-{i}.json",
            *flags,
            *received,
            "-d",
            base / f"p{i}",
        )
        assert r.code == 0, r.err
        keys[i] = base / f"p{i}" / f"key-package-{i}.json"
    publics = {(base / f"p{i}" / "public-key-package.json").read_text() for i in keys}
    assert len(publics) == 1  # everyone derived the same public key package
    return keys, base / "p1" / "public-key-package.json"


@pytest.mark.parametrize("suite", ["ed25519", "secp256k1", "secp256k1-tr"])
def test_dkg_then_sign(cli: CliRunner, tmp_path: Path, suite: str) -> None:
    keys, public = dkg(cli, tmp_path, suite, 2, 3)
    sign_with(cli, tmp_path, {1: keys[1], 3: keys[3]}, public, "a")


def test_dkg_names_a_bad_proof(cli: CliRunner, tmp_path: Path) -> None:
    base = tmp_path / "d"
    for i in (1, 2, 3):
        cli("frost", "dkg", "part1", "-i", i, "-t", 2, "-n", 3, "-d", base)
    doc = json.loads((base / "dkg-round1-3.json").read_text())
    mu = doc["proof_of_knowledge"]["mu"]
    doc["proof_of_knowledge"]["mu"] = mu[:-2] + ("00" if mu[-2:] != "00" else "01")
    (base / "dkg-round1-3.json").write_text(json.dumps(doc))
    r = cli(
        "frost",
        "dkg",
        "part2",
        "-s",
        base / "dkg-round1-secret-1.json",
        base / "dkg-round1-2.json",
        base / "dkg-round1-3.json",
        "-d",
        base,
    )
    assert r.code == 1 and "3" in r.err
    assert (base / "dkg-round1-secret-1.json").exists()  # not consumed on failure


def test_repair_lost_share(cli: CliRunner, tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    cli("frost", "dealer", "-t", 2, "-n", 3, "-d", keys_dir)
    lost = keys_dir / "key-package-3.json"
    original = json.loads(lost.read_text())["signing_share"]
    lost.unlink()
    for helper in (1, 2):
        r = cli(
            "frost",
            "repair",
            "step1",
            "-k",
            keys_dir / f"key-package-{helper}.json",
            "--helpers",
            "1,2",
            "--participant",
            3,
            "-d",
            tmp_path / f"h{helper}",
        )
        assert r.code == 0, r.err
    for helper in (1, 2):
        deltas = [tmp_path / f"h{j}" / f"repair-delta-{j}-to-{helper}.json" for j in (1, 2)]
        assert cli("frost", "repair", "step2", *deltas, "-d", tmp_path / f"h{helper}").code == 0
    sigmas = [tmp_path / f"h{j}" / f"repair-sigma-{j}-for-3.json" for j in (1, 2)]
    r = cli(
        "frost",
        "repair",
        "step3",
        *sigmas,
        "--public",
        keys_dir / "public-key-package.json",
        "-d",
        tmp_path / "p3",
    )
    assert r.code == 0, r.err
    repaired = tmp_path / "p3" / "key-package-3.json"
    assert json.loads(repaired.read_text())["signing_share"] == original
    sign_with(
        cli,
        tmp_path,
        {1: keys_dir / "key-package-1.json", 3: repaired},
        keys_dir / "public-key-package.json",
        "r",
    )


def test_refresh_dealer_removes_a_participant(cli: CliRunner, tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    made = cli("--json", "frost", "dealer", "-t", 2, "-n", 3, "-d", keys_dir).json()
    r = cli(
        "frost",
        "refresh",
        "dealer",
        "--public",
        keys_dir / "public-key-package.json",
        "--remove",
        "2",
        "-d",
        tmp_path / "rf",
    )
    assert r.code == 0, r.err
    new_public = tmp_path / "rf" / "public-key-package.json"
    assert set(json.loads(new_public.read_text())["verifying_shares"]) == {"1", "3"}
    new_keys = {}
    for i in (1, 3):
        out = tmp_path / f"new-{i}.json"
        a = cli(
            "frost",
            "refresh",
            "apply",
            "-k",
            keys_dir / f"key-package-{i}.json",
            "--share",
            tmp_path / "rf" / f"refreshing-share-{i}.json",
            "--public",
            new_public,
            "-o",
            out,
        )
        assert a.code == 0, a.err
        new_keys[i] = out
    sig = sign_with(cli, tmp_path, new_keys, new_public, "n")
    assert sig["group_public_key"] == made["group_public_key"]


def test_refresh_distributed(cli: CliRunner, tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    made = cli("--json", "frost", "dealer", "-t", 2, "-n", 3, "--suite", "secp256k1", "-d", keys_dir).json()
    public = keys_dir / "public-key-package.json"
    base = tmp_path / "rd"
    for i in (1, 2, 3):
        assert (
            cli(
                "frost",
                "refresh",
                "part1",
                "-k",
                keys_dir / f"key-package-{i}.json",
                "-n",
                3,
                "-d",
                base / f"p{i}",
            ).code
            == 0
        )
    round1 = {i: base / f"p{i}" / f"refresh-round1-{i}.json" for i in (1, 2, 3)}
    for i in (1, 2, 3):
        others = [round1[j] for j in round1 if j != i]
        r = cli(
            "frost",
            "refresh",
            "part2",
            "-s",
            base / f"p{i}" / f"refresh-round1-secret-{i}.json",
            *others,
            "-d",
            base / f"p{i}",
        )
        assert r.code == 0, r.err
    new_keys = {}
    for i in (1, 2, 3):
        flags: list[str | Path] = [x for j in round1 if j != i for x in ("--round1", round1[j])]
        received = [base / f"p{j}" / f"refresh-round2-{j}-to-{i}.json" for j in round1 if j != i]
        r = cli(
            "frost", "refresh", "part3", "-s", base / f"p{i}" / f"refresh-round2-secret-{i}.json",
            "-k", keys_dir / f"key-package-{i}.json", "--public", public, *flags, *received, "-d", base / f"p{i}",
        )  # fmt: skip
        assert r.code == 0, r.err
        new_keys[i] = base / f"p{i}" / f"key-package-{i}.json"
    new_public = base / "p1" / "public-key-package.json"
    sig = sign_with(cli, tmp_path, {2: new_keys[2], 3: new_keys[3]}, new_public, "d")
    assert sig["group_public_key"] == made["group_public_key"]
    assert (
        json.loads(new_keys[2].read_text())["signing_share"]
        != json.loads((keys_dir / "key-package-2.json").read_text())["signing_share"]
    )


def test_refresh_refuses_duplicate_and_misdirected_files(cli: CliRunner, tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    cli("frost", "dealer", "-t", 2, "-n", 3, "-d", keys_dir)
    base = tmp_path / "rd"
    for i in (1, 2, 3):
        cli("frost", "refresh", "part1", "-k", keys_dir / f"key-package-{i}.json", "-n", 3, "-d", base)
    secret1 = base / "refresh-round1-secret-1.json"
    twice = cli(
        "frost",
        "refresh",
        "part2",
        "-s",
        secret1,
        base / "refresh-round1-2.json",
        base / "refresh-round1-2.json",
        "-d",
        base,
    )
    assert twice.code == 1 and "two round-one files come from participant 2" in twice.err
    assert secret1.exists()
    for i in (1, 2, 3):
        others = [base / f"refresh-round1-{j}.json" for j in (1, 2, 3) if j != i]
        assert (
            cli(
                "frost",
                "refresh",
                "part2",
                "-s",
                base / f"refresh-round1-secret-{i}.json",
                *others,
                "-d",
                base,
            ).code
            == 0
        )
    flags = [x for j in (2, 3) for x in ("--round1", base / f"refresh-round1-{j}.json")]
    misdirected = cli(
        "frost", "refresh", "part3", "-s", base / "refresh-round2-secret-1.json", "-k", keys_dir / "key-package-1.json",
        "--public", keys_dir / "public-key-package.json", *flags,
        base / "refresh-round2-2-to-1.json", base / "refresh-round2-3-to-2.json", "-d", tmp_path / "out",
    )  # fmt: skip
    assert misdirected.code == 1 and "not for 1" in misdirected.err


def _part3_of_1(cli: CliRunner, base: Path, round1: list[Path]) -> Any:
    flags = [x for path in round1 for x in ("--round1", path)]
    received = [base / f"p{j}" / f"dkg-round2-{j}-to-1.json" for j in (2, 3)]
    return cli(
        "frost",
        "dkg",
        "part3",
        "-s",
        base / "p1" / "dkg-round2-secret-1.json",
        *flags,
        *received,
        "-d",
        base / "p1",
    )


def test_dkg_part3_refuses_round_one_files_part2_did_not_check(cli: CliRunner, tmp_path: Path) -> None:
    base = tmp_path / "d"
    dkg_parts_1_2(cli, base, "ed25519", 2, 3)
    secret = base / "p1" / "dkg-round2-secret-1.json"
    doc = json.loads(secret.read_text())
    assert doc["version"] == 2 and len(doc["round1_digest"]) == 64
    # Participant 3 runs part1 again: its new round-one file is valid, but part2 did not check it.
    assert cli("frost", "dkg", "part1", "-i", 3, "-t", 2, "-n", 3, "-d", tmp_path / "again").code == 0
    r = _part3_of_1(cli, base, [base / "p2" / "dkg-round1-2.json", tmp_path / "again" / "dkg-round1-3.json"])
    assert r.code == 1 and "not the ones part2 checked" in r.err
    assert secret.exists()  # not consumed on failure

    # A malformed digest is refused when the file is read.
    for bad in ("00" * 31, "AB" * 32, " " * 64, None):
        (tmp_path / "bad.json").write_text(json.dumps({**doc, "round1_digest": bad}))
        r = cli(
            "frost",
            "dkg",
            "part3",
            "-s",
            tmp_path / "bad.json",
            "--round1",
            base / "p2" / "dkg-round1-2.json",
            base / "p2" / "dkg-round2-2-to-1.json",
            "-d",
            tmp_path,
        )
        assert r.code == 1 and "round1_digest" in r.err, r.err

    # A version-1 secret (written before the digest) is still read; part3 then checks the
    # proofs itself and gets the same key as from the version-2 file.
    old = {k: v for k, v in doc.items() if k != "round1_digest"}
    (tmp_path / "v1.json").write_text(json.dumps({**old, "version": 1}))
    round1 = [base / f"p{j}" / f"dkg-round1-{j}.json" for j in (2, 3)]
    flags = [x for path in round1 for x in ("--round1", path)]
    received = [base / f"p{j}" / f"dkg-round2-{j}-to-1.json" for j in (2, 3)]
    r = cli(
        "frost", "dkg", "part3", "-s", tmp_path / "v1.json", *flags, *received, "-d", tmp_path / "from-v1"
    )
    assert r.code == 0, r.err
    r = _part3_of_1(cli, base, round1)
    assert r.code == 0, r.err
    assert (tmp_path / "from-v1" / "key-package-1.json").read_text() == (
        base / "p1" / "key-package-1.json"
    ).read_text()
