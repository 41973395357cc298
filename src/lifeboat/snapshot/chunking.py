"""FastCDC chunks of a stream through one reusable buffer (:class:`StreamChunker`).

pyfastcdc's own ``cut_stream`` allocates a fresh buffer of twice the largest chunk (16 MiB
with the default sizes) for every stream, and after each chunk moves the unread rest of it to
the front as soon as less than a largest chunk is left: with 1 MiB chunks it copies most bytes
once more in memory. A backup walks many files, so :class:`StreamChunker` keeps one smaller
buffer (a largest chunk and an eighth, or an average chunk if more) for all of them and moves
the unread rest only when the next cut point might depend on bytes not read yet.

The cut points are exactly ``cut_stream``'s. FastCDC finds the end of a chunk by looking at
most ``max_size`` bytes ahead: with ``remaining`` bytes available it scans positions
``min_size .. min(remaining, max_size)``, with the "small" mask up to ``min(avg_size,
remaining)`` and the "large" mask after that, and returns the first position where the
rolling hash matches (or the end of what it scanned). ``cut_stream`` always has at least
``max_size`` bytes in hand, or the end of the stream, when it cuts. A cut made with fewer bytes
in hand is the same cut if the hash matched before the end of them and at least ``avg_size``
bytes were there (so the masks switched at the same place): every position before it was
scanned alike and none matched. Any other cut made short of the end of the stream is discarded
and made again after a refill.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from pyfastcdc import FastCDC

__all__ = ["StreamChunker"]

#: Reads into the buffer given, returns the number of bytes read (0 or None at the end).
ReadInto = Callable[[memoryview], "int | None"]

#: The buffer holds one largest chunk and this fraction of one more (pyfastcdc's cut_stream holds
#: two largest chunks): after a refill, every chunk whose cut point the rolling hash found is
#: taken, so only the last, partial chunk moves to the front (about an average chunk).
_BUFFER_SLACK: Final = 8


class StreamChunker:
    """Cuts streams into FastCDC chunks with one buffer, reused from one stream to the next.

    Not thread-safe: one stream at a time. The chunks yielded by :meth:`chunks` are views of
    the buffer, valid only until the next one is asked for (copy what must be kept).
    """

    def __init__(self, fastcdc: FastCDC) -> None:
        self._fastcdc = fastcdc
        self._min = fastcdc.min_size
        self._avg = fastcdc.avg_size
        self._max = fastcdc.max_size
        self._buffer = bytearray(self._max + max(self._max // _BUFFER_SLACK, self._avg))
        self._view = memoryview(self._buffer)

    @property
    def buffer_size(self) -> int:
        """Bytes of the one buffer (9 MiB with the default chunk sizes)."""
        return len(self._buffer)

    def chunks(self, readinto: ReadInto) -> Iterator[memoryview]:
        """The chunks of the stream read by ``readinto``, in order, as views of the buffer."""
        view = self._view
        capacity = len(view)
        start = end = 0  # the unread bytes are view[start:end]
        eof = False
        while True:
            if not eof:
                if start:
                    view[: end - start] = view[start:end]  # memmove: the views may overlap
                    end -= start
                    start = 0
                while end < capacity:
                    count = readinto(view[end:])
                    if not count:
                        eof = True
                        break
                    end += count
            if start == end:
                return
            for chunk in self._fastcdc.cut_buf(view[start:end]):
                length: int = chunk.length
                remaining = end - start
                if not (eof or remaining >= self._max or (length < remaining and remaining >= self._avg)):
                    break  # the cut might move with more bytes in hand: refill first
                yield view[start : start + length]
                start += length
