# pragma version ~=0.4.3
"""
@title A ledger vault guarded by the circuit breaker
@notice Accounts deposit ETH, move balances between themselves and withdraw. Every entry point
        passes the circuit breaker first. `transfer` carries a deliberate bug (a self-transfer
        credits without debiting, as a function that reads both balances before writing either
        does): the end-to-end test and `lifeboat drill --scenario chain` exploit it to break
        conservation and drain the vault, which is what the watch must catch.
        This is a test subject for the on-chain pillar, not a contract to deploy with real funds.
"""

from . import circuit_breaker

initializes: circuit_breaker

exports: (
    circuit_breaker.pause,
    circuit_breaker.request_unpause,
    circuit_breaker.unpause,
    circuit_breaker.shutdown,
    circuit_breaker.set_roles,
    circuit_breaker.set_group_public_key,
    circuit_breaker.execute_order,
    circuit_breaker.order_digest,
    circuit_breaker.domain_separator,
    circuit_breaker.governance,
    circuit_breaker.pause_guardian,
    circuit_breaker.unpause_delay,
    circuit_breaker.paused_all,
    circuit_breaker.paused,
    circuit_breaker.unpause_eta,
    circuit_breaker.is_shut_down,
    circuit_breaker.group_public_key,
    circuit_breaker.used_nonce,
)

event Deposit:
    account: indexed(address)
    amount: uint256

event Withdrawal:
    account: indexed(address)
    amount: uint256

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    amount: uint256

balance_of: public(HashMap[address, uint256])
# what the vault owes in all: deposits less withdrawals
total_supply: public(uint256)
account_count: public(uint256)
account_at: public(HashMap[uint256, address])
known: HashMap[address, bool]


@deploy
def __init__(governance: address, pause_guardian: address, unpause_delay: uint256, group_public_key: Bytes[33]):
    circuit_breaker.__init__(governance, pause_guardian, unpause_delay, group_public_key)


@internal
def _remember(account: address):
    if not self.known[account]:
        self.known[account] = True
        self.account_at[self.account_count] = account
        self.account_count += 1


@external
@payable
def deposit():
    circuit_breaker.check(method_id("deposit()", output_type=bytes4))
    assert msg.value > 0, "vault: nothing deposited"
    self._remember(msg.sender)
    self.balance_of[msg.sender] += msg.value
    self.total_supply += msg.value
    log Deposit(account=msg.sender, amount=msg.value)


@external
def withdraw(amount: uint256):
    circuit_breaker.check(method_id("withdraw(uint256)", output_type=bytes4))
    assert self.balance_of[msg.sender] >= amount, "vault: balance too low"
    self.balance_of[msg.sender] -= amount
    self.total_supply -= amount
    send(msg.sender, amount)
    log Withdrawal(account=msg.sender, amount=amount)


@external
def transfer(receiver: address, amount: uint256):
    circuit_breaker.check(method_id("transfer(address,uint256)", output_type=bytes4))
    sender_balance: uint256 = self.balance_of[msg.sender]
    receiver_balance: uint256 = self.balance_of[receiver]
    assert sender_balance >= amount, "vault: balance too low"
    self._remember(receiver)
    # the bug: with receiver == msg.sender the second write undoes the first
    self.balance_of[msg.sender] = sender_balance - amount
    self.balance_of[receiver] = receiver_balance + amount
    log Transfer(sender=msg.sender, receiver=receiver, amount=amount)
