"""Gas per action of the on-chain recovery module (``RecoveryModule.vy``), as a Markdown table.

Usage::

    python bench/bench_onchain_gas.py

Runs on titanoboa's in-process chain (no node, no network; about 10 s, most of it compiling).
Each figure is what a transaction would pay on mainnet rules (Cancun): the intrinsic 21,000, the
calldata (16 per non-zero byte, 4 per zero byte),
the execution gas titanoboa measures, less the refund (capped at a fifth). Every access is cold at
the start of each transaction, as on a real chain (the access counters are reset before each).

Guardians sign Ethereum keys (``eip712:0x…``); each vault: ``--guardians`` guardians (5), a policy
``family`` of all of them needing ``--threshold`` approvals (3), a one-hour recovery period, a
one-day window. Each vault's module is an EIP-1167 proxy the factory creates (the implementation
and the factory are deployed once per chain: their figures are listed, not per vault).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import warnings
from typing import Any

import boa

from lifeboat.onchain import recovery_module as chain
from lifeboat.onchain.contracts import deployer
from lifeboat.recovery import messages
from lifeboat.recovery.config import Guardian, Policy, VaultConfig
from lifeboat.recovery.keys import KeyKind, PrivateKey
from lifeboat.recovery.messages import (
    Action,
    Approve,
    CreateVault,
    Execute,
    Lock,
    Message,
    OpenRequest,
    ProposeChange,
    SignedMessage,
    Veto,
)

HOUR = 3600


def key(name: str) -> PrivateKey:
    return PrivateKey.from_seed(KeyKind.EIP712, hashlib.sha256(f"bench {name}".encode()).digest())


OWNER, NEW_OWNER = key("owner"), key("new owner")
_nonces = itertools.count(1)


def calldata_gas(data: bytes) -> int:
    return sum(4 if byte == 0 else 16 for byte in data)


def transaction_gas(computation: Any, calldata: bytes) -> int:
    """What the transaction pays: intrinsic + calldata + execution - refund (capped at a fifth)."""
    intrinsic = 21_000 + calldata_gas(calldata)
    used = intrinsic + int(computation.get_gas_used())
    return used - min(int(computation.get_gas_refund()), used // 5)


class Bench:
    """One vault's module, made by the factory, and the gas of each transaction sent to it."""

    factory: Any = None

    def __init__(self, guardians: int, threshold: int) -> None:
        if Bench.factory is None:
            Bench.factory = chain.deploy_factory()
        self.guardians = [key(f"guardian {i}") for i in range(guardians)]
        self.config = config(self.guardians, threshold)
        self.now = int(boa.env.evm.patch.timestamp)
        self.vault = hashlib.sha256(f"bench vault {next(_nonces)}".encode()).digest()
        self.service = chain.module_service(Bench.factory, self.vault, OWNER.public_key)
        create = self.sign(OWNER, CreateVault(self.config))
        args = (
            self.vault,
            chain.config_args(self.config),
            create.message.nonce,
            create.message.not_before,
            create.message.expiry,
            "0x" + OWNER.public_key.data.hex(),
            create.signature,
        )
        boa.env._reset_access_counters()
        address = Bench.factory.create(*args)
        self.deploy_gas = transaction_gas(
            Bench.factory._computation, Bench.factory.create.prepare_calldata(*args)
        )
        self.module = chain.module_at(address)

    def sign(self, signer: PrivateKey, action: Action) -> SignedMessage:
        message = Message(self.vault, action, next(_nonces), self.now - 60, self.now + HOUR)
        return messages.sign(self.service, message, signer)

    def later(self, seconds: int) -> None:
        self.now += seconds
        boa.env.time_travel(seconds=seconds)

    def gas(self, call: Any, *args: Any) -> int:
        boa.env._reset_access_counters()
        call(*args)
        return transaction_gas(self.module._computation, call.prepare_calldata(*args))

    def relay(self, batch: list[SignedMessage]) -> int:
        return self.gas(self.module.relay, [chain.message_args(s) for s in batch])

    def open_and_approve(self, rid: bytes, approvals: int) -> int:
        """Open ``rid`` and approve it by ``approvals`` guardians in all, in one transaction."""
        batch = [self.sign(self.guardians[0], OpenRequest(rid, NEW_OWNER.public_key, "family"))]
        batch += [
            self.sign(g, Approve(rid, NEW_OWNER.public_key, "family")) for g in self.guardians[1:approvals]
        ]
        return self.relay(batch)


def config(guardians: list[PrivateKey], threshold: int) -> VaultConfig:
    keys = tuple(g.public_key for g in guardians)
    return VaultConfig(
        guardians=tuple(Guardian(k, 1, f"guardian {i}") for i, k in enumerate(keys)),
        policies=(
            Policy("family", keys, threshold, recovery_period=HOUR, expiry_window=86400, veto_guardians=1),
        ),
        security_period=HOUR,
        lock_period=HOUR,
    )


def rid(n: int) -> bytes:
    return hashlib.sha256(f"bench request {n}".encode()).digest()


def once_per_chain() -> list[tuple[str, int]]:
    """The implementation's and the factory's deployments (intrinsic 53,000, 2 per initcode word)."""
    rows = []
    implementation = deployer(chain.CONTRACT)
    for label, contract_deployer, args in (
        ("deploy the implementation (once per chain)", implementation, ()),
        ("deploy the factory (once per chain)", deployer(chain.FACTORY), (boa.env.eoa,)),
    ):
        boa.env._reset_access_counters()
        contract = contract_deployer.deploy(*args)
        initcode = bytes(contract_deployer.compiler_data.bytecode) + (
            bytes(12) + bytes.fromhex(str(args[0])[2:]) if args else b""
        )
        gas = transaction_gas(contract._computation, initcode) + 32_000 + 2 * ((len(initcode) + 31) // 32)
        rows.append((label, gas))
    return rows


def measure(guardians: int, threshold: int) -> list[tuple[str, int]]:
    """Each scenario on its own fresh module (titanoboa's anchors do not mix with resetting the
    access counters, so nothing is rolled back: the chain just grows)."""
    rows = once_per_chain()
    bench = Bench(guardians, threshold)
    rows += [(f"create the vault's module (factory; {guardians} guardians, 1 policy)", bench.deploy_gas)]
    for approvals in sorted({1, 2, 3, threshold}):
        label = "open request (one message)" if approvals == 1 else f"relay open + {approvals - 1} approvals"
        rows.append((label, Bench(guardians, threshold).open_and_approve(rid(1), approvals)))
    bench = Bench(guardians, threshold)
    bench.open_and_approve(rid(1), 1)
    approval = bench.sign(bench.guardians[1], Approve(rid(1), NEW_OWNER.public_key, "family"))
    rows.append(("approve (one message)", bench.relay([approval])))
    rows.append(("veto by the owner", bench.relay([bench.sign(OWNER, Veto(rid(1)))])))
    bench = Bench(guardians, threshold)
    bench.open_and_approve(rid(1), threshold)
    bench.later(HOUR)
    rows.append(("execute (the owner changes)", bench.relay([bench.sign(NEW_OWNER, Execute(rid(1)))])))
    bench = Bench(guardians, threshold)
    rows.append(("lock", bench.relay([bench.sign(bench.guardians[0], Lock())])))
    change = config(bench.guardians[:3], 2)
    bench = Bench(guardians, threshold)
    signed = bench.sign(OWNER, ProposeChange(change))
    proposal = bench.gas(bench.module.relay_change, chain.message_args(signed), chain.config_args(change))
    rows.append(("propose change (3 guardians, 1 policy)", proposal))
    bench.later(HOUR)
    rows.append(("advance (the change takes effect)", bench.gas(bench.module.advance)))
    bench = Bench(guardians, threshold)
    boa.env.set_balance(bench.module.address, 10**18)
    with boa.env.prank("0x" + OWNER.public_key.data.hex()):
        receiver = "0x" + NEW_OWNER.public_key.data.hex()
        rows.append(("account execute (send 1 wei)", bench.gas(bench.module.execute, receiver, 1, b"")))
    return rows


def main() -> None:
    warnings.filterwarnings("ignore", message="casted bytecode does not match")  # modules are proxies
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guardians", type=int, default=5)
    parser.add_argument("--threshold", type=int, default=3)
    options = parser.parse_args()
    rows = measure(options.guardians, options.threshold)
    print(f"| action ({options.guardians} guardians, {options.threshold} of them needed) | gas |")
    print("| --- | ---: |")
    for label, gas in rows:
        print(f"| {label} | {gas:,} |")


if __name__ == "__main__":
    main()
