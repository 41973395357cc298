"""``lifeboat chain``: the breaker's commands on the in-process chain kept in a devchain file.

Every command runs in a new process image as far as the chain goes: each invocation replays the
devchain file, so these tests also show that the file keeps the chain exactly.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

import boa
import pytest

from conftest import CliRunner
from lifeboat.onchain.chain import open_devchain
from lifeboat.onchain.orders import decode_order


@pytest.fixture
def group(cli: CliRunner, tmp_path: Path) -> Path:
    assert (
        cli("frost", "dealer", "--suite", "secp256k1", "-t", "2", "-n", "3", "-d", tmp_path / "keys").code
        == 0
    )
    return tmp_path / "keys"


@pytest.fixture
def vault(cli: CliRunner, group: Path) -> str:
    result = cli("--json", "chain", "deploy-vault", "--group", group / "public-key-package.json")
    assert result.code == 0, result.err
    address: str = result.json()["contract"]
    return address


def _sign(cli: CliRunner, group: Path, package: Path, tmp_path: Path) -> Path:
    shares = []
    for i in (1, 2):
        nonces = glob.glob(str(tmp_path / f"s{i}" / f"nonces-{i}-*.json"))
        share = tmp_path / f"share-{i}.json"
        result = cli(
            "frost",
            "sign",
            "-k",
            group / f"key-package-{i}.json",
            "--nonces",
            nonces[0],
            "-p",
            package,
            "-o",
            share,
        )
        assert result.code == 0, result.err
        shares.append(share)
    signature = tmp_path / "sig.json"
    result = cli(
        "frost",
        "aggregate",
        *shares,
        "-p",
        package,
        "--public",
        group / "public-key-package.json",
        "-o",
        signature,
    )
    assert result.code == 0, result.err
    return signature


def _commit(cli: CliRunner, group: Path, tmp_path: Path) -> list[str]:
    args = []
    for i in (1, 2):
        assert (
            cli("frost", "commit", "-k", group / f"key-package-{i}.json", "-d", tmp_path / f"s{i}").code == 0
        )
        args += ["--commitment", str(tmp_path / f"s{i}" / f"commitment-{i}.json")]
    return args


def test_order_sign_submit_pauses_once(cli: CliRunner, group: Path, vault: str, tmp_path: Path) -> None:
    commitments = _commit(cli, group, tmp_path)
    order_file = tmp_path / "order.json"
    result = cli(
        "--json", "chain", "order", vault, "--selector", "withdraw(uint256)", "-o", order_file,
        *commitments, "--public", group / "public-key-package.json",
    )  # fmt: skip
    assert result.code == 0, result.err
    made = result.json()
    assert made["selectors"] == ["0x2e1a7d4d"] and made["chainId"] == 31337
    signature = _sign(cli, group, Path(made["signing_package"]), tmp_path)
    result = cli("--json", "chain", "submit", order_file, "--signature", signature)
    assert result.code == 0, result.err
    status = cli(
        "--json", "chain", "status", vault, "--selector", "withdraw(uint256)", "--selector", "deposit()"
    )
    assert status.json()["paused"] == {"withdraw(uint256)": True, "deposit()": False}
    again = cli("chain", "submit", order_file, "--signature", signature)
    assert again.code == 1 and "order: nonce already used" in again.err


def test_submit_refuses_a_signature_of_another_order(
    cli: CliRunner, group: Path, vault: str, tmp_path: Path
) -> None:
    commitments = _commit(cli, group, tmp_path)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    made = cli("--json", "chain", "order", vault, "-o", first, *commitments).json()
    assert cli("chain", "order", vault, "-o", second).code == 0
    signature = _sign(cli, group, Path(made["signing_package"]), tmp_path)
    result = cli("chain", "submit", second, "--signature", signature)
    assert result.code != 0 and "not this order's digest" in result.err
    status = cli("--json", "chain", "status", vault).json()
    assert status["paused_all"] is False


def test_order_for_another_chain_is_refused(cli: CliRunner, group: Path, vault: str, tmp_path: Path) -> None:
    order_file = tmp_path / "order.json"
    assert cli("chain", "order", vault, "--chain-id", "1", "-o", order_file).code == 0
    assert decode_order(order_file.read_bytes()).chain_id == 1
    signature = tmp_path / "missing.json"
    result = cli("chain", "submit", order_file, "--signature", signature)
    assert result.code != 0 and "for chain 1; this chain is 31337" in result.err


def test_watch_on_the_vault_writes_the_order_on_a_violation(
    cli: CliRunner, group: Path, vault: str, tmp_path: Path, home: Path
) -> None:
    invariants = Path(__file__).parents[1] / "examples" / "vault-invariants.toml"
    order_file = tmp_path / "order.json"
    args = (
        "chain",
        "watch",
        f"vault:{vault}",
        "--invariants",
        invariants,
        "--contract",
        vault,
        "-o",
        order_file,
    )
    healthy = cli("--json", *args, "--once")
    assert healthy.code == 0 and healthy.json()["healthy"] is True
    assert not order_file.exists()
    with open_devchain(home / "devchain.json") as chain:  # the exploit, straight through titanoboa
        contract = chain.at("LedgerVault", vault)
        attacker = str(boa.env.generate_address("attacker"))
        boa.env.set_balance(attacker, 10**18)
        contract.deposit(value=10**18, sender=attacker)
        contract.transfer(attacker, 10**18, sender=attacker)
    flagged = cli("--json", *args, "--once", *_commit(cli, group, tmp_path))
    assert flagged.code == 1
    data = flagged.json()
    assert data["violations"] == ["conservation"]
    order = decode_order(order_file.read_bytes())
    assert order.action == "pause" and order.selectors == ()
    signature = _sign(cli, group, Path(data["signing_package"]), tmp_path)
    assert cli("chain", "submit", order_file, "--signature", signature).code == 0
    assert cli("--json", "chain", "status", vault).json()["paused_all"] is True


def test_export_writes_records_the_state_pillar_reads(cli: CliRunner, vault: str, tmp_path: Path) -> None:
    output = tmp_path / "live.jsonl"
    result = cli("--json", "chain", "export", vault, "-o", output)
    assert result.code == 0 and result.json()["records"] == 2  # supply and reserve, no accounts yet
    keys = [json.loads(line)["key"] for line in output.read_text().splitlines()]
    assert keys == ["reserve:ETH", "supply:ETH"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("chain", "status", "0x1234"), "0x and 40 hex digits"),
        (("chain", "status", "0x" + "ab" * 20), "there is no contract at"),
        (("chain", "order", "0x" + "ab" * 20, "--chain-id", "1", "-o", "o.json", "--action", "drain"), "unknown order action"),
        (("chain", "order", "0x" + "ab" * 20, "--chain-id", "1", "-o", "o.json", "--lifetime", "8d"), "lifetime"),
        (("chain", "order", "0x" + "ab" * 20, "--chain-id", "1", "-o", "o.json", "--selector", "withdraw"), "not a function selector"),
        (("chain", "status", "0x" + "ab" * 20, "--rpc", "http://127.0.0.1:9"), "--rpc needs --key-file"),
        (("chain", "status", "0x" + "ab" * 20, "--key-file", "k"), "--key-file is for --rpc"),
    ],
)  # fmt: skip
def test_bad_input_is_refused(cli: CliRunner, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.code != 0
    assert message in result.err


def test_damaged_devchain_is_refused(cli: CliRunner, vault: str, home: Path) -> None:
    path = home / "devchain.json"
    body = json.loads(path.read_text())
    body["transactions"][0]["data"] = "0x00"
    path.write_text(json.dumps(body))
    result = cli("chain", "status", vault)
    assert result.code != 0 and "fails on replay" in result.err
    path.write_text("{")
    assert "not a devchain file" in cli("chain", "status", vault).err


def test_example_vault_invariants_are_the_ones_the_drill_uses() -> None:
    from lifeboat.onchain import watch

    example = Path(__file__).parents[1] / "examples" / "vault-invariants.toml"
    assert example.read_text(encoding="utf-8") == watch.VAULT_INVARIANTS
