"""Process-wide settings the CLI makes for the repository commands (the CLI owns the process).

The store encodes packs of about 16 MiB into shards, and each step (compression, encryption,
erasure coding, shard assembly) needs a buffer of several MiB. glibc serves such sizes with fresh
``mmap`` pages and gives them back on ``free``, so every pack pays for touching tens of MiB of
new pages: measured here, that doubled the time to encode a pack (63 ms against 30 ms). Raising
the mmap and trim thresholds makes glibc reuse the heap instead; peak memory stays the same,
since the same buffers are live at the same time. Elsewhere (other C libraries, other systems)
this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's ceiling for the mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
_MMAP_THRESHOLD = 32 * 1024 * 1024
_TRIM_THRESHOLD = 256 * 1024 * 1024

_tuned = False


def tune_allocator() -> bool:
    """Keep large buffers in the heap between packs (glibc only); True if the settings took."""
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return _tuned
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    )
    return _tuned
