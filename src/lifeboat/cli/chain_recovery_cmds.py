"""``lifeboat chain recovery``: the on-chain recovery module's address and calls, computed offline.

Both commands only compute; they send nothing. ``address`` says where a vault's module will live
(the EIP-712 domain its owner signs the ``CreateVault`` for); ``calldata`` turns signed messages
(the wire form of "Recovery messages, version 1", as ``lifeboat.recovery.messages.encode_signed``
writes them) into the transaction data a wallet or any Ethereum tool sends: the factory's
``create`` for a ``CreateVault``, the module's ``relay_change`` for a ``ProposeChange``, the
module's ``relay`` for a batch of anything else (a quorum of approvals in one transaction).
The contract and the encoding are described in docs/onchain-recovery-module.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lifeboat.cli.output import emit, stdout
from lifeboat.errors import InputError, UsageError
from lifeboat.fs import read_bounded

if TYPE_CHECKING:
    from lifeboat.recovery import messages

recovery_app = typer.Typer(
    help="The on-chain recovery module: a vault's module address, and the calls that relay signed messages.",
    no_args_is_help=True,
)


def register(chain_app: typer.Typer) -> None:
    """Add ``recovery`` to the ``lifeboat chain`` group."""
    chain_app.add_typer(recovery_app, name="recovery")


def _hex(text: str, length: int, what: str) -> bytes:
    body = text.strip().lower().removeprefix("0x")
    try:
        value = bytes.fromhex(body)
    except ValueError:
        raise UsageError(f"{what} is not hex") from None
    if len(value) != length:
        raise UsageError(f"{what} is {length} bytes ({2 * length} hex digits), not {len(value)}")
    return value


def _read_signed(path: Path) -> messages.SignedMessage:
    from lifeboat.recovery import messages
    from lifeboat.recovery.refusals import Refusal

    try:
        return messages.decode_signed(read_bounded(path, messages.MAX_WIRE_BYTES, what="signed message"))
    except Refusal as error:
        raise InputError(f"{path}: {error}") from None


@recovery_app.command("address")
def address_command(
    vault: Annotated[str, typer.Option("--vault", help="The vault id, 64 hex digits.")],
    owner: Annotated[str, typer.Option("--owner", help="The owner's key, eip712:0x….")],
    factory: Annotated[str, typer.Option("--factory", help="The RecoveryModuleFactory's address.")],
    implementation: Annotated[
        str, typer.Option("--implementation", help="The factory's IMPLEMENTATION() address.")
    ],
    chain_id: Annotated[int, typer.Option("--chain-id", help="The chain's id (1: Ethereum).")],
) -> None:
    """The address of a vault's module, and the EIP-712 domain its owner signs the CreateVault for."""
    from lifeboat.onchain import recovery_module
    from lifeboat.recovery import messages
    from lifeboat.recovery.keys import PublicKey
    from lifeboat.recovery.refusals import Refusal

    try:
        owner_key = PublicKey.parse(owner)
    except Refusal as error:
        raise UsageError(f"--owner: {error}") from None
    address = recovery_module.proxy_address(
        _hex(factory, 20, "--factory"),
        _hex(implementation, 20, "--implementation"),
        _hex(vault, 32, "--vault"),
        owner_key,
    )
    service = messages.Service(chain_id, address)
    emit(
        {"module": "0x" + address.hex(), "service": service.to_json()},
        lambda: stdout.print(
            f"module 0x{address.hex()} (sign the CreateVault for chainId {chain_id} and it)"
        ),
    )


@recovery_app.command("calldata")
def calldata_command(
    message_files: Annotated[
        list[Path],
        typer.Argument(help="Signed messages (wire JSON), applied in this order.", metavar="FILE…"),
    ],
) -> None:
    """The transaction data that applies signed messages: send it to the module (or the factory)."""
    from lifeboat.onchain import recovery_module
    from lifeboat.recovery import messages
    from lifeboat.recovery.config import check_config
    from lifeboat.recovery.refusals import Refusal

    batch = [_read_signed(path) for path in message_files]
    services = {signed.service for signed in batch}
    if len(services) != 1:
        raise UsageError("the messages are signed for different modules; relay each module's apart")
    (service,) = services
    first = batch[0]
    if isinstance(first.message.action, messages.CreateVault):
        try:
            check_config(first.message.action.config, first.signer)
        except Refusal as error:
            raise InputError(f"{message_files[0]}: {error}") from None
        recovery_module.check_keys(first.message.action.config, first.signer)
    data = recovery_module.calldata(batch)
    target = "the factory" if isinstance(first.message.action, messages.CreateVault) else "the module"
    to = "0x" + service.verifying_contract.hex()
    emit(
        {"to": target, "module": to, "chainId": service.chain_id, "data": "0x" + data.hex()},
        lambda: stdout.print(f"to {target} ({to}, chain {service.chain_id}):\n0x{data.hex()}"),
    )
