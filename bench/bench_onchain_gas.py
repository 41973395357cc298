"""Gas per action of the on-chain recovery module (``RecoveryModule.vy``), as a Markdown table.

Usage::

    python bench/bench_onchain_gas.py

Runs on titanoboa's in-process chain (no node, no network; about 15 s, most of it compiling).
Each figure is what a transaction would pay on mainnet rules (Cancun): the intrinsic 21,000 (53,000
for a deployment, plus 2 per initcode word), the calldata (16 per non-zero byte, 4 per zero byte),
the execution gas titanoboa measures, less the refund (capped at a fifth). Every access is cold at
the start of each transaction, as on a real chain (the access counters are reset before each).

Guardians sign Ethereum keys (``eip712:0x…``); the vault: ``--guardians`` guardians (5), a policy
``family`` of all of them needing ``k`` approvals, a one-hour recovery period, a one-day window.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
from typing import Any

import boa
from boa.util.abi import abi_encode

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
    Service,
    SignedMessage,
    Veto,
)

HOUR = 3600
VAULT = hashlib.sha256(b"bench vault").digest()
CONSTRUCTOR = (
    "(bytes32,((address,uint256,string)[],(string,address[],uint256,bool,uint64,uint64,uint256)[],uint64,uint64),"
    "uint256,uint64,uint64,address,bytes)"
)


def key(name: str) -> PrivateKey:
    return PrivateKey.from_seed(KeyKind.EIP712, hashlib.sha256(f"bench {name}".encode()).digest())


OWNER, NEW_OWNER = key("owner"), key("new owner")
_nonces = itertools.count(1)


def calldata_gas(data: bytes) -> int:
    return sum(4 if byte == 0 else 16 for byte in data)


def transaction_gas(computation: Any, calldata: bytes, *, create: bool = False) -> int:
    """What the transaction pays: intrinsic + calldata + execution - refund (capped at a fifth)."""
    intrinsic = 21_000 + calldata_gas(calldata)
    if create:
        intrinsic += 32_000 + 2 * ((len(calldata) + 31) // 32)
    used = intrinsic + int(computation.get_gas_used())
    return used - min(int(computation.get_gas_refund()), used // 5)


class Bench:
    """One vault on a fresh chain state, and the gas of each transaction sent to it."""

    def __init__(self, guardians: int, threshold: int) -> None:
        self.guardians = [key(f"guardian {i}") for i in range(guardians)]
        self.config = config(self.guardians, threshold)
        self.now = int(boa.env.evm.patch.timestamp)
        self.service = chain.next_service()
        create = self.sign(OWNER, CreateVault(self.config), self.service)
        args = (
            VAULT,
            chain.config_args(self.config),
            create.message.nonce,
            create.message.not_before,
            create.message.expiry,
            "0x" + OWNER.public_key.data.hex(),
            create.signature,
        )
        boa.env._reset_access_counters()
        self.module = deployer(chain.CONTRACT).deploy(*args)
        initcode = bytes(deployer(chain.CONTRACT).compiler_data.bytecode) + abi_encode(CONSTRUCTOR, args)
        self.deploy_gas = transaction_gas(self.module._computation, initcode, create=True)

    def sign(self, signer: PrivateKey, action: Action, service: Service | None = None) -> SignedMessage:
        message = Message(VAULT, action, next(_nonces), self.now - 60, self.now + HOUR)
        return messages.sign(service or self.service, message, signer)

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


def measure(guardians: int, threshold: int) -> list[tuple[str, int]]:
    """Each scenario on its own fresh module (titanoboa's anchors do not mix with resetting the
    access counters, so nothing is rolled back: the chain just grows)."""
    bench = Bench(guardians, threshold)
    rows = [(f"deploy (CreateVault; {guardians} guardians, 1 policy)", bench.deploy_gas)]
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
