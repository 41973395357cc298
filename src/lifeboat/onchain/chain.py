"""Where contracts run: Lifeboat's in-process chain, kept in a file, or any JSON-RPC endpoint.

The in-process chain ("devchain") is titanoboa's EVM. A command opens it by replaying the
transactions recorded in its file (docs/formats.md, "Devchain file, version 1") and, if it sent
transactions of its own, appends them and writes the file back atomically. Replaying is exact:
the same senders, calldata, values and block times give the same addresses and state. Senders on
the devchain need no keys (as a development node's unlocked accounts); each is given ether on its
first transaction. On a JSON-RPC endpoint (``--rpc URL``) transactions are signed with a key file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from lifeboat.errors import StorageError
from lifeboat.fs import PUBLIC_MODE, read_bounded, write_atomic
from lifeboat.onchain import contracts
from lifeboat.onchain.errors import ChainError

FORMAT: Final = "lifeboat-devchain"
VERSION: Final = 1
#: The devchain's chain id (the one development chains commonly use).
DEVCHAIN_ID: Final = 31337
#: The devchain's first block time: 2026-01-01T00:00:00Z.
GENESIS_TIME: Final = 1_767_225_600
#: Ether given to a devchain sender on its first transaction, in wei.
SENDER_ALLOWANCE: Final = 10**30
#: The sender of devchain commands that name none (an address with no key behind it).
DEFAULT_SENDER: Final = "0x" + "11" * 20
MAX_FILE_BYTES: Final = 256 * 1024 * 1024


@dataclass
class _Transaction:
    sender: str
    to: str | None  # None: a deployment, ``data`` being the init code
    data: bytes
    value: int
    timestamp: int
    block: int
    created: str | None = None  # a deployment: the contract's address

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.sender,
            "to": self.to,
            "created": self.created,
            "data": "0x" + self.data.hex(),
            "value": str(self.value),
            "timestamp": self.timestamp,
            "block": self.block,
        }


def _recording_env_class() -> type:
    import boa

    class RecordingEnv(boa.Env):  # type: ignore[misc]
        """A titanoboa environment that keeps every successful state-changing transaction."""

        def __init__(self) -> None:
            super().__init__()
            self.recorded: list[_Transaction] = []
            self.funded: set[str] = set()
            self.replaying = False

        def _fund(self, sender: Any) -> None:
            text = str(sender).lower()
            if text not in self.funded:
                self.funded.add(text)
                self.set_balance(sender, self.get_balance(sender) + SENDER_ALLOWANCE)

        def _record(
            self, sender: Any, to: str | None, data: bytes, value: int, created: str | None = None
        ) -> None:
            if not self.replaying:
                patch = self.evm.patch
                self.recorded.append(
                    _Transaction(
                        str(sender).lower(),
                        to,
                        bytes(data),
                        value,
                        int(patch.timestamp),
                        int(patch.block_number),
                        created,
                    )
                )

        def deploy(
            self, sender: Any = None, gas: Any = None, value: int = 0, bytecode: bytes = b"", **kwargs: Any
        ) -> Any:
            sender = self._get_sender(sender)
            self._fund(sender)
            address, computation = super().deploy(
                sender=sender, gas=gas, value=value, bytecode=bytecode, **kwargs
            )
            if not computation.is_error:
                self._record(sender, None, bytecode, value, str(address).lower())
            return address, computation

        def execute_code(self, to_address: Any = None, sender: Any = None, **kwargs: Any) -> Any:
            modifying = kwargs.get("is_modifying", True) and not kwargs.get("simulate", False)
            sender = self._get_sender(sender)
            if modifying:
                self._fund(sender)
            computation = super().execute_code(to_address=to_address, sender=sender, **kwargs)
            if modifying and not computation.is_error and kwargs.get("override_bytecode") is None:
                self._record(sender, str(to_address).lower(), kwargs.get("data", b""), kwargs.get("value", 0))
            return computation

    return RecordingEnv


@dataclass
class Connection:
    """An open chain: titanoboa's environment (made current), who sends, and what to save."""

    env: Any
    sender: str
    devchain: Path | None = None
    names: dict[str, str] = field(default_factory=dict)  # devchain: address -> contract name
    _saved: int = 0

    @property
    def chain_id(self) -> int:
        return int(self.env.evm.patch.chain_id) if self.devchain else int(self.env.get_chain_id())

    def now(self) -> int:
        if self.devchain:
            return int(self.env.evm.patch.timestamp)
        return int(self.env._rpc.fetch("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def deploy(self, name: str, *args: Any, value: int = 0) -> Any:
        """Deploy contract ``name`` from ``contracts/`` with constructor arguments ``args``."""
        with self._errors(f"deploying {name}"):
            contract = contracts.deployer(name).deploy(*args, value=value, sender=self.sender)
        self.names[str(contract.address).lower()] = name
        return contract

    def at(self, name: str, address: str) -> Any:
        """Contract ``name`` at ``address``; refuses an address with no code."""
        if not self.env.get_code(address):
            raise ChainError(f"there is no contract at {address} on this chain")
        known = self.names.get(address.lower())
        if known is not None and known != name:
            raise ChainError(f"{address} is a {known}, not a {name}")
        return contracts.deployer(name).at(address)

    def call(self, what: str, function: Any, *args: Any, value: int = 0) -> Any:
        """A transaction from the sender; a revert becomes a ChainError naming its reason."""
        with self._errors(what):
            if value:
                return function(*args, value=value, sender=self.sender)
            return function(*args, sender=self.sender)

    def send(self, to: str, value: int) -> None:
        """Plain ether from the sender to ``to``."""
        with self._errors(f"sending {value} wei to {to}"):
            self.env.raw_call(to, sender=self.sender, value=value)

    def advance(self, seconds: int) -> None:
        """Move the devchain's clock forward (a JSON-RPC chain keeps its own time)."""
        if self.devchain is None:
            raise ChainError("only Lifeboat's in-process chain can be moved in time")
        if seconds < 0:
            raise ChainError("time only moves forward")
        self.env.time_travel(seconds=seconds)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        import boa

        try:
            yield
        except boa.BoaError as e:
            raise ChainError(f"{what} reverted: {revert_reason(e)}") from None

    def save(self) -> None:
        """Write the devchain file back if this connection sent anything."""
        if self.devchain is None or len(self.env.recorded) == self._saved:
            return
        body = {
            "format": FORMAT,
            "version": VERSION,
            "chainId": self.chain_id,
            "contracts": dict(sorted(self.names.items())),
            "transactions": [t.to_json() for t in self.env.recorded],
        }
        write_atomic(self.devchain, orjson.dumps(body) + b"\n", mode=PUBLIC_MODE, overwrite=True)
        self._saved = len(self.env.recorded)


def revert_reason(error: BaseException) -> str:
    """The reason string of a titanoboa revert (``vault: balance too low``), or its first line."""
    stack = getattr(error, "stack_trace", None)
    frame = getattr(stack, "last_frame", None)
    reason = getattr(frame, "pretty_vm_reason", None)
    if reason:
        return str(reason)
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _read_devchain(path: Path) -> dict[str, Any]:
    try:
        data = read_bounded(path, MAX_FILE_BYTES, what="devchain file")
    except StorageError:
        raise
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ChainError(f"{path} is not a devchain file (not JSON: {e})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ChainError(f"{path} is not a devchain file")
    if body.get("version") != VERSION:
        raise ChainError(f"{path} is devchain version {body.get('version')!r}; this Lifeboat reads {VERSION}")
    if not isinstance(body.get("transactions"), list) or not isinstance(body.get("contracts"), dict):
        raise ChainError(f"{path}: 'transactions' must be a list and 'contracts' an object")
    return body


def _replay(env: Any, transactions: list[Any], path: Path) -> list[_Transaction]:
    done: list[_Transaction] = []
    env.replaying = True
    try:
        for number, item in enumerate(transactions):
            where = f"{path}: transaction {number}"
            try:
                tx = _Transaction(
                    sender=str(item["from"]),
                    to=None if item["to"] is None else str(item["to"]),
                    data=bytes.fromhex(str(item["data"]).removeprefix("0x")),
                    value=int(item["value"]),
                    timestamp=int(item["timestamp"]),
                    block=int(item["block"]),
                    created=None if item.get("created") is None else str(item["created"]).lower(),
                )
            except (KeyError, TypeError, ValueError):
                raise ChainError(f"{where} is malformed") from None
            env.evm.patch.timestamp = tx.timestamp
            env.evm.patch.block_number = tx.block
            diverged = False
            if tx.to is None:
                created, computation = env.deploy(sender=tx.sender, bytecode=tx.data, value=tx.value)
                diverged = str(created).lower() != tx.created or not env.get_code(created)
            else:
                computation = env.execute_code(
                    to_address=tx.to, sender=tx.sender, data=tx.data, value=tx.value
                )
            if computation.is_error or diverged:
                raise ChainError(f"{where} fails on replay; the devchain file was edited or is damaged")
            done.append(tx)
    finally:
        env.replaying = False
    return done


@contextlib.contextmanager
def open_devchain(path: Path, sender: str = DEFAULT_SENDER) -> Iterator[Connection]:
    """Lifeboat's in-process chain kept in ``path`` (created on first use), saved on success."""
    import boa

    env = _recording_env_class()()
    env.evm.patch.chain_id = DEVCHAIN_ID
    env.evm.patch.timestamp = GENESIS_TIME
    names: dict[str, str] = {}
    if path.exists():
        body = _read_devchain(path)
        if body.get("chainId") != DEVCHAIN_ID:
            raise ChainError(f"{path}: chain id {body.get('chainId')!r}, expected {DEVCHAIN_ID}")
        names = {str(k).lower(): str(v) for k, v in body["contracts"].items()}
        env.recorded = _replay(env, body["transactions"], path)
    elif not path.parent.is_dir():
        raise StorageError(f"cannot create the devchain {path}: its directory does not exist")
    connection = Connection(env, sender.lower(), path, names, len(env.recorded))
    with boa.swap_env(env):
        yield connection
        connection.save()


@contextlib.contextmanager
def open_rpc(url: str, private_key: bytes) -> Iterator[Connection]:
    """A JSON-RPC endpoint; transactions are signed with ``private_key`` (a secp256k1 scalar)."""
    import boa
    from eth_account import Account

    account = Account.from_key(private_key)
    try:
        env = boa.NetworkEnv.from_url(url)
    except Exception as e:
        raise ChainError(f"cannot reach the JSON-RPC endpoint {url}: {e}") from None
    env.add_account(account, force_eoa=True)
    with boa.swap_env(env):
        yield Connection(env, str(account.address).lower())


def default_devchain(home: Path) -> Path:
    return home / "devchain.json"


def environ_rpc() -> str | None:
    return os.environ.get("LIFEBOAT_RPC_URL") or None
