"""Round trips with Trezor's reference ``shamir`` CLI (python-shamir-mnemonic), both ways."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import CliRunner
from conftest_tools import require_tool
from lifeboat.secrets import slip39

pytestmark = pytest.mark.interop

SECRET = "00112233445566778899aabbccddeeff0011223344556677889900aabbccddee"


def shamir_create(args: list[str]) -> list[list[str]]:
    shamir = require_tool("shamir")
    out = subprocess.run([shamir, "create", *args], check=True, capture_output=True, text=True).stdout
    groups: list[list[str]] = []
    for line in out.splitlines():
        if re.match(r"Group \d+ of \d+", line):
            groups.append([])
        elif groups and len(line.split()) >= 20:
            groups[-1].append(line.strip())
    return groups


def shamir_recover(shares: list[str], passphrase: str | None) -> str:
    shamir = require_tool("shamir")
    stdin = "\n".join(shares) + "\n"
    args = ["recover"]
    if passphrase is not None:
        args.append("-p")
        stdin += f"{passphrase}\n{passphrase}\n"
    out = subprocess.run([shamir, *args], input=stdin, check=True, capture_output=True, text=True).stdout
    match = re.search(r"Your master secret is: ([0-9a-f]+)", out)
    assert match, out
    return match.group(1)


def test_trezor_shares_recover_in_lifeboat(cli: CliRunner, tmp_path: Path) -> None:
    groups = shamir_create(
        ["custom", "-t", "2", "-g", "2", "3", "-g", "3", "5", "-S", SECRET, "-p", "TREZOR"]
    )
    assert [len(g) for g in groups] == [3, 5]
    chosen = [groups[0][2], groups[0][0], groups[1][4], groups[1][1], groups[1][3]]
    assert slip39.combine(chosen, "TREZOR").hex() == SECRET
    # And through the CLI, from a file, with the passphrase from the environment.
    shares = tmp_path / "trezor.txt"
    shares.write_text("\n".join(chosen) + "\n")
    passfile = tmp_path / "pass"
    passfile.write_text("TREZOR\n")
    result = cli("--json", "shares", "recover", shares, "--passphrase-file", passfile, "--reveal")
    assert result.code == 0, result.err
    assert result.json()["secret"] == SECRET


def test_lifeboat_shares_recover_in_trezor(cli: CliRunner, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.hex"
    secret_file.write_text(SECRET)
    passfile = tmp_path / "pass"
    passfile.write_text("TREZOR")
    made = cli(
        "--json",
        "shares",
        "create",
        "2:2of3,2of2",
        "--secret-hex-file",
        secret_file,
        "--passphrase-file",
        passfile,
        "--reveal",
    )
    assert made.code == 0, made.err
    groups = made.json()["shares"]
    assert shamir_recover([groups[1][1], groups[0][2], groups[1][0], groups[0][0]], "TREZOR") == SECRET


def test_non_extendable_and_single_share_sets_round_trip() -> None:
    for args in (["single", "-X", "-S", SECRET[:32]], ["3of5", "-E", "2", "-S", SECRET[:32]]):
        groups = shamir_create(args)
        shares = [m for g in groups for m in g]
        threshold = 1 if args[0] == "single" else 3
        assert slip39.combine(shares[:threshold]).hex() == SECRET[:32]
    made = slip39.split(bytes.fromhex(SECRET[:32]), slip39.Scheme.parse("3of5"), extendable=False)
    assert shamir_recover(made.shares()[2:], None) == SECRET[:32]


def test_guardians_recover_their_envelopes_with_stock_age_and_shamir(cli: CliRunner, tmp_path: Path) -> None:
    """The command line README and docs/formats.md give guardians who have only age and shamir."""
    age, keygen, shamir = require_tool("age"), require_tool("age-keygen"), require_tool("shamir")
    for name in ("alice", "bob", "carol"):
        key = tmp_path / f"{name}.key"
        subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
        recipient = subprocess.run([keygen, "-y", str(key)], check=True, capture_output=True, text=True)
        assert cli("guardians", "add", name, recipient.stdout.strip()).code == 0
    secret_file = tmp_path / "secret.hex"
    secret_file.write_text(SECRET)
    out = tmp_path / "out"
    made = cli(
        "shares", "create", "2of3", "--secret-hex-file", secret_file, "--shares-dir", out,
        "-g", "alice", "-g", "bob", "-g", "carol",
    )  # fmt: skip
    assert made.code == 0, made.err
    [alice] = out.glob("*-alice.age")
    [carol] = out.glob("*-carol.age")
    line = (
        f"{{ age -d -i alice.key {shlex.quote(str(alice))}; age -d -i carol.key {shlex.quote(str(carol))}; }}"
        " | grep -v '^#' | shamir recover"
    )
    path = os.pathsep.join([os.path.dirname(age), os.path.dirname(shamir), os.environ.get("PATH", "")])
    run = subprocess.run(
        ["sh", "-c", line],
        cwd=tmp_path,
        env={**os.environ, "PATH": path},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    match = re.search(r"Your master secret is: ([0-9a-f]+)", run.stdout)
    assert match, run.stdout + run.stderr
    assert match.group(1) == SECRET
    assert "Invalid" not in run.stdout + run.stderr  # shamir saw nothing but the two shares
