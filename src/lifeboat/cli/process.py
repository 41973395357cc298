"""The ``lifeboat`` executable's entry point: settle the C allocator, then run the CLI.

Backups encode packs of about 16 MiB on worker threads, and each step (compression,
encryption, erasure coding, shard assembly) needs buffers of several MiB. With glibc's default of
one malloc arena per thread, each worker keeps the buffers it freed to itself, and peak memory
grows with the number of threads: on the 1 GiB benchmark, 274 MiB, against 201 MiB (and 14%
less time) with a single arena. That is worth it for the commands that write packs. glibc fixes its arena limit from the environment when the process
starts (``mallopt`` later did not give the same result), so the entry point sets
``MALLOC_ARENA_MAX=1`` and re-executes itself once, before importing anything heavy. A value the
user set is left alone; other systems and C libraries are not touched. In-process use (the
library, the tests) is unaffected.
"""

from __future__ import annotations

import os
import sys

#: glibc reads these at start-up: one arena for all threads; large buffers kept in the heap.
ALLOCATOR_ENV = {"MALLOC_ARENA_MAX": "1"}


#: Commands that write packs. ``check`` and ``restore`` read with many threads at once and ran
#: 5-25% slower with one arena, for 10-15% less memory, so they keep glibc's default.
PACK_WRITERS = frozenset({"backup", "forget"})


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
    if command_of(sys.argv[1:]) not in PACK_WRITERS or any(name in os.environ for name in ALLOCATOR_ENV):
        return
    env = {**os.environ, **ALLOCATOR_ENV}
    try:
        os.execve(sys.executable, [sys.executable, "-m", "lifeboat", *sys.argv[1:]], env)  # noqa: S606 - our own interpreter, argv passed through unchanged
    except OSError:
        return  # run as we are: only memory use differs


def run() -> None:
    """Console-script entry point (``lifeboat``) and ``python -m lifeboat``."""
    _reexec_with_allocator_settings()
    from lifeboat.cli.main import run as run_cli

    run_cli()
