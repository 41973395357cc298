"""``lifeboat chain ...``: the on-chain pillar from the command line.

Commands that only compute (orders, settlements, claim trees) need no chain. Commands that call
contracts work against Lifeboat's in-process chain by default (titanoboa's EVM, its transactions
kept in ``devchain.json`` in the Lifeboat home, or ``--devchain FILE``) and against any JSON-RPC
endpoint given with ``--rpc URL``, sending from the Ethereum key in ``--key-file``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from lifeboat.cli import chain_claims_cmds, chain_recovery_cmds
from lifeboat.cli.output import emit, info, settings, stdout
from lifeboat.errors import UsageError
from lifeboat.fs import PUBLIC_MODE, read_bounded, write_atomic

chain_app = typer.Typer(
    help="On-chain recovery: pause orders signed by a FROST group, settlements, claim trees, contracts.",
    no_args_is_help=True,
)
chain_claims_cmds.register(chain_app)
chain_recovery_cmds.register(chain_app)

RpcOpt = Annotated[
    str | None,
    typer.Option(
        "--rpc",
        help="A JSON-RPC endpoint (default: Lifeboat's in-process chain).",
        metavar="URL",
        envvar="LIFEBOAT_RPC_URL",
    ),
]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="With --rpc: the sender's Ethereum key (a recovery key file of kind eip712).",
        metavar="FILE",
    ),
]
DevchainOpt = Annotated[
    Path | None,
    typer.Option(
        "--devchain", help="The in-process chain's file (default: devchain.json in the home).", metavar="FILE"
    ),
]
SenderOpt = Annotated[
    str | None,
    typer.Option("--from", help="In-process chain: the sending address (no key needed).", metavar="ADDRESS"),
]
ContractArg = Annotated[str, typer.Argument(help="The guarded contract's address.", metavar="CONTRACT")]
SelectorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--selector",
        help="A function to pause: 'withdraw(uint256)' or 0x2e1a7d4d (repeatable; none: everything).",
        metavar="FUNCTION",
    ),
]
ActionOpt = Annotated[str, typer.Option("--action", help="pause or shutdown.")]
LifetimeOpt = Annotated[
    str, typer.Option("--lifetime", help="How long the order stays valid (at most 7d).", metavar="DURATION")
]
CommitmentsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--commitment",
        help="A signer's commitment file (repeatable): with them the signing package is written too.",
        metavar="FILE",
    ),
]
PublicOpt = Annotated[
    Path | None,
    typer.Option("--public", help="The group's public key package (checks the signers).", metavar="FILE"),
]
PackageOutOpt = Annotated[
    Path | None, typer.Option("--package-out", help="Where to write the signing package.", metavar="FILE")
]


@contextlib.contextmanager
def connect(
    rpc: str | None, key_file: Path | None, devchain: Path | None, sender: str | None
) -> Iterator[Any]:
    """The chain a command works on (see the module docstring)."""
    from lifeboat.home import default_home
    from lifeboat.onchain import chain
    from lifeboat.onchain.orders import address

    if rpc is not None:
        if devchain is not None or sender is not None:
            raise UsageError("--devchain and --from are for the in-process chain; with --rpc give --key-file")
        if key_file is None:
            raise UsageError("--rpc needs --key-file: the Ethereum key that signs the transactions")
        from lifeboat.recovery.keyfile import read_key_file
        from lifeboat.recovery.keys import KeyKind

        key = read_key_file(key_file)
        if key.kind is not KeyKind.EIP712:
            raise UsageError(
                f"{key_file} holds a {key.kind.value} key; transactions need an eip712 (Ethereum) key"
            )
        with chain.open_rpc(rpc, key.secret) as connection:
            yield connection
        return
    if key_file is not None:
        raise UsageError("--key-file is for --rpc; the in-process chain takes --from ADDRESS")
    path = devchain
    if path is None:
        path = chain.default_devchain(settings.home or default_home())
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if sender is not None:
        address(sender, "--from address")
    with chain.open_devchain(path, sender or chain.DEFAULT_SENDER) as connection:
        yield connection


def _read(path: Path, what: str, limit: int = 4 * 1024 * 1024) -> bytes:
    return read_bounded(path, limit, what=what)


def _duration(text: str, what: str) -> int:
    from lifeboat.cli.recovery_cmds import parse_duration

    return parse_duration(text, what)


@chain_app.command("deploy-vault")
def deploy_vault_command(
    group: Annotated[
        Path,
        typer.Option("--group", help="The operators' FROST(secp256k1) public key package.", metavar="FILE"),
    ],
    governance: Annotated[
        str | None, typer.Option("--governance", help="Governance (default: the sender).", metavar="ADDRESS")
    ] = None,
    pause_guardian: Annotated[
        str | None,
        typer.Option("--pause-guardian", help="The pause guardian (default: none).", metavar="ADDRESS"),
    ] = None,
    unpause_delay: Annotated[
        str, typer.Option("--unpause-delay", help="Delay before governance may unpause (1h..365d).")
    ] = "2d",
    rpc: RpcOpt = None,
    key_file: KeyFileOpt = None,
    devchain: DevchainOpt = None,
    sender: SenderOpt = None,
) -> None:
    """Deploy a LedgerVault guarded by the circuit breaker (the test subject of docs/onchain.md)."""
    from lifeboat.onchain import breaker
    from lifeboat.onchain.orders import address

    key = breaker.group_key(_read(group, "public key package"), str(group))
    delay = _duration(unpause_delay, "--unpause-delay")
    with connect(rpc, key_file, devchain, sender) as chain:
        gov = "0x" + address(governance, "--governance address").hex() if governance else chain.sender
        guardian = (
            "0x" + address(pause_guardian, "--pause-guardian address").hex()
            if pause_guardian
            else "0x" + "00" * 20
        )
        vault = chain.deploy("LedgerVault", gov, guardian, delay, key)
        data = {
            "contract": str(vault.address),
            "chainId": chain.chain_id,
            "governance": gov,
            "pause_guardian": guardian,
        }
    emit(data, lambda: stdout.print(f"LedgerVault deployed at {data['contract']} (chain {data['chainId']})"))


@chain_app.command("status")
def status_command(
    contract: ContractArg,
    selectors: Annotated[
        list[str] | None,
        typer.Option(
            "--selector", help="Also say whether this function is paused (repeatable).", metavar="FUNCTION"
        ),
    ] = None,
    rpc: RpcOpt = None,
    key_file: KeyFileOpt = None,
    devchain: DevchainOpt = None,
    sender: SenderOpt = None,
) -> None:
    """Show a guarded contract's breaker: roles, what is paused, shutdown, the group key."""
    from lifeboat.onchain.orders import address, selector

    address(contract)
    wanted = {text: selector(text) for text in selectors or ()}
    with connect(rpc, key_file, devchain, sender) as chain:
        vault = chain.at("LedgerVault", contract)
        data: dict[str, Any] = {
            "contract": contract,
            "chainId": chain.chain_id,
            "time": chain.now(),
            "governance": str(vault.governance()),
            "pause_guardian": str(vault.pause_guardian()),
            "unpause_delay": vault.unpause_delay(),
            "paused_all": vault.paused_all(),
            "shut_down": vault.is_shut_down(),
            "group_public_key": "0x" + bytes(vault.group_public_key()).hex(),
            "total_supply": str(vault.total_supply()),
            "accounts": vault.account_count(),
            "paused": {text: vault.paused(value) for text, value in wanted.items()},
        }

    def human() -> None:
        for name, value in data.items():
            stdout.print(f"{name:>17}: {value}")

    emit(data, human)


@chain_app.command("export")
def export_command(
    contract: ContractArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON Lines file to write.", metavar="FILE")],
    rpc: RpcOpt = None,
    key_file: KeyFileOpt = None,
    devchain: DevchainOpt = None,
    sender: SenderOpt = None,
) -> None:
    """Write a LedgerVault's live state as records (JSON Lines, key field 'key') for `state snapshot`."""
    from lifeboat.onchain import watch
    from lifeboat.onchain.orders import address

    address(contract)
    with connect(rpc, key_file, devchain, sender) as chain:
        count = watch.write_records(watch.vault_records(chain.at("LedgerVault", contract)), output)
    emit(
        {"records": count, "output": str(output)},
        lambda: stdout.print(f"{count} records written to {output}"),
    )


def _write_order(order: Any, output: Path, package: bytes | None, package_out: Path | None) -> dict[str, Any]:
    write_atomic(output, order.encode(), mode=PUBLIC_MODE, overwrite=True)
    data: dict[str, Any] = {"order": str(output), "digest": "0x" + order.digest.hex(), **order.to_json()}
    if package is not None:
        target = package_out or output.with_name(output.stem + "-package.json")
        write_atomic(target, package, mode=PUBLIC_MODE, overwrite=True)
        data["signing_package"] = str(target)
    return data


def _signer_steps(data: dict[str, Any]) -> None:
    package = data.get("signing_package", "package.json")
    if "signing_package" not in data:
        stdout.print(
            f"  coordinator: lifeboat frost package COMMITMENT... --message-hex {data['digest'][2:]} "
            f"--public PUBLIC -o {package}"
        )
    stdout.print(f"  each signer: lifeboat frost sign -k KEY --nonces NONCES -p {package} -o share-N.json")
    stdout.print(
        f"  coordinator: lifeboat frost aggregate share-*.json -p {package} --public PUBLIC -o sig.json"
    )
    stdout.print(f"  anyone:      lifeboat chain submit {data['order']} --signature sig.json")


def _make_alarm_order(
    report: Any,
    chain_id: int,
    contract: str,
    action: str,
    selectors: list[str] | None,
    now: int,
    lifetime: str,
    commitments: list[Path] | None,
    public: Path | None,
) -> Any:
    from lifeboat.onchain import watch
    from lifeboat.onchain.orders import address, selector
    from lifeboat.threshold import serialize

    pkp = None
    if public is not None:
        _, pkp = serialize.decode_public_key_package(_read(public, "public key package"), str(public))
    return watch.alarm(
        report,
        chain_id=chain_id,
        contract=address(contract),
        action=action,
        selectors=tuple(selector(s) for s in selectors or ()),
        now=now,
        lifetime=_duration(lifetime, "--lifetime"),
        commitments=[_read(p, "commitment") for p in commitments or ()],
        public=pkp,
    )


@chain_app.command("order")
def order_command(
    contract: ContractArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The order file to write.", metavar="FILE")],
    action: ActionOpt = "pause",
    selectors: SelectorOpt = None,
    lifetime: LifetimeOpt = "1h",
    chain_id: Annotated[
        int | None, typer.Option("--chain-id", help="Make the order offline for this chain (no connection).")
    ] = None,
    commitments: CommitmentsOpt = None,
    public: PublicOpt = None,
    package_out: PackageOutOpt = None,
    rpc: RpcOpt = None,
    key_file: KeyFileOpt = None,
    devchain: DevchainOpt = None,
    sender: SenderOpt = None,
) -> None:
    """Make an emergency order (pause or shutdown) for the operators' FROST group to sign."""
    if chain_id is not None:
        alarm = _make_alarm_order(
            None, chain_id, contract, action, selectors, int(time.time()), lifetime, commitments, public
        )
    else:
        with connect(rpc, key_file, devchain, sender) as chain:
            chain.at("LedgerVault", contract)
            alarm = _make_alarm_order(
                None, chain.chain_id, contract, action, selectors, chain.now(), lifetime, commitments, public
            )
    data = _write_order(alarm.order, output, alarm.package, package_out)

    def human() -> None:
        stdout.print(f"{action} order for {contract} written to {output}; the group signs {data['digest']}")
        _signer_steps(data)

    emit(data, human)


@chain_app.command("submit")
def submit_command(
    order_file: Annotated[Path, typer.Argument(help="The order file.", metavar="ORDER")],
    signature: Annotated[
        Path, typer.Option("--signature", help="The group signature from 'frost aggregate'.", metavar="FILE")
    ],
    rpc: RpcOpt = None,
    key_file: KeyFileOpt = None,
    devchain: DevchainOpt = None,
    sender: SenderOpt = None,
) -> None:
    """Carry out a signed emergency order on its contract (anyone may submit it)."""
    from lifeboat.onchain import breaker
    from lifeboat.onchain.errors import OrderError
    from lifeboat.onchain.orders import decode_order

    order = decode_order(_read(order_file, "order", 64 * 1024), str(order_file))
    with connect(rpc, key_file, devchain, sender) as chain:
        if order.chain_id != chain.chain_id:
            raise OrderError(f"{order_file} is for chain {order.chain_id}; this chain is {chain.chain_id}")
        contract = "0x" + order.contract.hex()
        vault = chain.at("LedgerVault", contract)
        key = bytes(vault.group_public_key())
        sig = breaker.order_signature(order, _read(signature, "signature"), str(signature), key=key)
        chain.call(f"the {order.action} order", vault.execute_order, *order.call_arguments(sig))
        data = {
            "contract": contract,
            "action": order.action,
            "paused_all": vault.paused_all(),
            "shut_down": vault.is_shut_down(),
        }
    emit(data, lambda: stdout.print(f"{order.action} order carried out on {contract}"))


def _alarm_human(data: dict[str, Any], action: str, contract: str, output: Path) -> None:
    stdout.print(f"INVARIANTS VIOLATED: {', '.join(data['violations'])}")
    stdout.print(f"{action} order for {contract} written to {output}; the group signs {data['digest']}")
    _signer_steps(data)


@chain_app.command("watch")
def watch_command(
    source: Annotated[
        str,
        typer.Argument(
            help="Live state: records.jsonl, records.csv, sqlite:///db, postgresql://..., or vault:0xADDRESS.",
            metavar="SOURCE",
        ),
    ],
    invariants: Annotated[
        Path, typer.Option("--invariants", help="The TOML file of invariants.", metavar="FILE")
    ],
    contract: Annotated[str, typer.Option("--contract", help="The contract to pause.", metavar="ADDRESS")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the order on a violation.", metavar="FILE")
    ],
    key: Annotated[str, typer.Option("--key", help="The records' key field.")] = "key",
    table: Annotated[str | None, typer.Option("--table", help="SQL source: the table.")] = None,
    interval: Annotated[
        str, typer.Option("--interval", help="Time between checks.", metavar="DURATION")
    ] = "30s",
    once: Annotated[
        bool, typer.Option("--once", help="Check once and exit (0 healthy, 1 order written).")
    ] = False,
    chain_id: Annotated[
        int | None, typer.Option("--chain-id", help="The contract's chain (default: the connected chain's).")
    ] = None,
    action: ActionOpt = "pause",
    selectors: SelectorOpt = None,
    lifetime: LifetimeOpt = "1h",
    commitments: CommitmentsOpt = None,
    public: PublicOpt = None,
    package_out: PackageOutOpt = None,
    rpc: RpcOpt = None,
    key_file: KeyFileOpt = None,
    devchain: DevchainOpt = None,
    sender: SenderOpt = None,
) -> None:
    """Check live state against invariants every interval; on a violation write the pause order and exit 1."""
    import tempfile

    from lifeboat.onchain import watch
    from lifeboat.onchain.orders import address
    from lifeboat.state.invariants import load_invariants

    checks = load_invariants(invariants)
    address(contract, "--contract address")
    pause = _duration(interval, "--interval")
    if pause <= 0:
        raise UsageError("--interval must be at least one second")
    on_chain = source.startswith("vault:")
    while True:
        if on_chain or chain_id is None:
            with connect(rpc, key_file, devchain, sender) as chain, tempfile.TemporaryDirectory() as scratch:
                now, target_chain = chain.now(), chain_id or chain.chain_id
                location = source
                if on_chain:
                    vault_address = source.removeprefix("vault:")
                    address(vault_address, "vault address")
                    location = str(Path(scratch) / "live.jsonl")
                    watch.write_records(
                        watch.vault_records(chain.at("LedgerVault", vault_address)), Path(location)
                    )
                report = watch.check_source(
                    location, key if not on_chain else watch.VAULT_KEY_FIELD, checks, table=table
                )
        else:
            now, target_chain = int(time.time()), chain_id
            report = watch.check_source(source, key, checks, table=table)
        if not report.passed:
            alarm = _make_alarm_order(
                report, target_chain, contract, action, selectors, now, lifetime, commitments, public
            )
            data = _write_order(alarm.order, output, alarm.package, package_out)
            data["violations"] = [r.name for r in report.results if not r.passed]
            data["report"] = report.to_json()

            emit(data, lambda: _alarm_human(data, action, contract, output))  # noqa: B023 - runs at once
            raise typer.Exit(1)
        if once:
            emit({"healthy": True, "time": now}, lambda: stdout.print("all invariants hold"))
            return
        info(f"all invariants hold; next check in {interval}")
        try:
            time.sleep(pause)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
