"""The ``lifeboat`` executable's entry point: settle the C allocator, then run the CLI.

Backups, restores and checks handle packs of about 16 MiB on several threads, and each step
(compression, encryption, erasure coding, decoding) needs buffers of several MiB. With glibc's
default of one malloc arena per thread, each thread keeps the buffers it freed to itself, and
peak memory grows with the number of threads: on the 1 GiB benchmark a backup took 274 MiB
against 201 MiB (and 14% less time) with a single arena, and ``check --read-data`` up to 297 MiB
against 150 with two. glibc fixes its arena limit from the environment when the process starts
(``mallopt`` later did not give the same result), so for those commands the entry point sets
``MALLOC_ARENA_MAX`` and re-executes itself once, before importing anything heavy. A value the
user set is left alone; other systems and C libraries are not touched. In-process use (the
library, the tests) is unaffected.
"""

from __future__ import annotations

import os
import sys

#: glibc reads this at start-up: how many malloc arenas all threads share.
ARENA_VARIABLE = "MALLOC_ARENA_MAX"

#: The commands that move packs, and the arenas each gets: one where that costs no time (the
#: pack writers, restore), two for the readers that decode on several threads at once (with one,
#: ``check --read-data`` ran about 25% slower).
ARENAS = {"backup": 1, "forget": 1, "prune": 1, "restore": 1, "check": 2, "repair": 2}


def command_of(argv: list[str]) -> str | None:
    """The subcommand in ``argv`` (after the global options; ``--home`` and ``--store-timeout`` take a value)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--home", "--store-timeout"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _reexec_with_allocator_settings() -> None:
    if not sys.platform.startswith("linux") or not sys.executable:
        return
    arenas = ARENAS.get(command_of(sys.argv[1:]) or "")
    if arenas is None or ARENA_VARIABLE in os.environ:
        return
    env = {**os.environ, ARENA_VARIABLE: str(arenas)}
    try:
        os.execve(sys.executable, [sys.executable, "-m", "lifeboat", *sys.argv[1:]], env)  # noqa: S606 - our own interpreter, argv passed through unchanged
    except OSError:
        return  # run as we are: only memory use differs


def run() -> None:
    """Console-script entry point (``lifeboat``) and ``python -m lifeboat``."""
    _reexec_with_allocator_settings()
    from lifeboat.cli.main import run as run_cli

    run_cli()
