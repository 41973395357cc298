"""Sealed files through the CLI: seal, split the key, unseal; wrong shares and damage are refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pyrage

from conftest import CliRunner


def make_file(tmp_path: Path, size: int = 3 * 1024 * 1024 + 17) -> Path:
    path = tmp_path / "wallet.json"
    path.write_bytes(os.urandom(size))
    return path


def test_seal_then_unseal(cli: CliRunner, tmp_path: Path) -> None:
    original = make_file(tmp_path)
    sealed = cli("--json", "seal", original, "--scheme", "2of3", "--shares-dir", tmp_path / "keys")
    assert sealed.code == 0, sealed.err
    lbx = Path(sealed.json()["sealed_file"])
    assert lbx == tmp_path / "wallet.json.lbx"
    assert sealed.json()["share_set"]["secret_kind"] == "sealed-file-key"
    assert stat.S_IMODE(lbx.stat().st_mode) == 0o600
    shares = sorted((tmp_path / "keys").glob("*.txt"))
    out = tmp_path / "restored.json"
    opened = cli("--json", "unseal", lbx, shares[2], shares[0], "-o", out)
    assert opened.code == 0, opened.err
    assert out.read_bytes() == original.read_bytes()
    # The key shares are a recorded set: a drill works on them like on any other.
    assert cli("shares", "drill", shares[0], shares[1]).code == 0


def test_unseal_refuses_wrong_shares_and_damage(cli: CliRunner, tmp_path: Path) -> None:
    original = make_file(tmp_path, 200_000)
    assert cli("seal", original, "--shares-dir", tmp_path / "k1").code == 0
    other = tmp_path / "other.bin"
    other.write_bytes(b"other")
    assert cli("seal", other, "--shares-dir", tmp_path / "k2").code == 0
    lbx = tmp_path / "wallet.json.lbx"
    right = sorted((tmp_path / "k1").glob("*.txt"))
    wrong = sorted((tmp_path / "k2").glob("*.txt"))
    out = tmp_path / "out.json"

    result = cli("unseal", lbx, wrong[0], wrong[1], "-o", out)
    assert result.code == 1 and "shares of another file" in result.err
    assert not out.exists()

    data = bytearray(lbx.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged = tmp_path / "damaged.lbx"
    damaged.write_bytes(bytes(data))
    result = cli("unseal", damaged, right[0], right[1], "-o", out)
    assert result.code == 1 and result.err.startswith("lifeboat: error:")
    assert not out.exists()

    truncated = tmp_path / "truncated.lbx"
    truncated.write_bytes(lbx.read_bytes()[:-100])
    result = cli("unseal", truncated, right[0], right[1], "-o", out)
    assert result.code == 1 and not out.exists()

    assert cli("unseal", lbx, right[0], "-o", out).code == 1  # too few shares
    assert not out.exists()
    again = cli("seal", original, "--shares-dir", tmp_path / "k3")
    assert again.code == 1 and "already exists" in again.err
    assert not (tmp_path / "k3").exists() or not list((tmp_path / "k3").iterdir())


def test_seal_key_shares_to_guardians(cli: CliRunner, tmp_path: Path) -> None:
    keys = []
    for name in ("ann", "ben"):
        identity = pyrage.x25519.Identity.generate()
        key = tmp_path / f"{name}.key"
        key.write_text(str(identity) + "\n")
        keys.append(key)
        assert cli("guardians", "add", name, str(identity.to_public())).code == 0
    original = make_file(tmp_path, 10_000)
    made = cli(
        "seal", original, "--scheme", "2of2", "--shares-dir", tmp_path / "env", "-g", "ann", "-g", "ben"
    )
    assert made.code == 0, made.err
    envelopes = sorted((tmp_path / "env").glob("*.age"))
    out = tmp_path / "back"
    opened = cli("unseal", tmp_path / "wallet.json.lbx", *envelopes, "-i", keys[0], "-i", keys[1], "-o", out)
    assert opened.code == 0, opened.err
    assert out.read_bytes() == original.read_bytes()


def test_unseal_needs_lbx_suffix_or_output(cli: CliRunner, tmp_path: Path) -> None:
    plain = tmp_path / "x.bin"
    plain.write_bytes(b"x")
    result = cli("unseal", plain, "-")
    assert result.code == 2 and "--output" in result.err
