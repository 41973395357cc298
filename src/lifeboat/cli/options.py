"""Option types that several command modules share, in a module of their own so that loading one
command module for its help does not load the others (lifeboat.cli.lazy)."""

from __future__ import annotations

from typing import Annotated

import typer

RevealShares = Annotated[
    bool,
    typer.Option(
        "--reveal",
        help="Print every share (its words) on standard output, also those sealed to guardians.",
    ),
]
PlaintextRest = Annotated[
    bool,
    typer.Option(
        "--plaintext-rest",
        help="With fewer --guardian than shares: write the shares left over as plaintext files "
        "(0600) in --shares-dir. Refused without this flag.",
    ),
]
