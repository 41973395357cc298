"""``lifeboat chain ...``: the on-chain pillar from the command line.

Commands that only compute (orders, settlements, claim trees) need no chain. Commands that call
contracts work against Lifeboat's in-process chain by default and against any JSON-RPC endpoint
given with ``--rpc URL``.
"""

from __future__ import annotations

import typer

from lifeboat.cli import chain_claims_cmds

chain_app = typer.Typer(
    help="On-chain recovery: pause orders signed by a FROST group, settlements, claim trees, contracts.",
    no_args_is_help=True,
)
chain_claims_cmds.register(chain_app)


def register(app: typer.Typer) -> None:
    app.add_typer(chain_app, name="chain")
