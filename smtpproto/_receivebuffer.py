"""The receive buffer: one ``bytearray`` that is consumed from the front.

Like h11's, it remembers how far it has already searched for a line end, so
feeding a long line a byte at a time costs linear, not quadratic, time; consumed
bytes are dropped lazily (the array is compacted only when the dead prefix is
at least half of it), so pipelined input is not memmoved once per line.
"""

from __future__ import annotations

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    __slots__ = ("_data", "_start", "_searched")

    def __init__(self) -> None:
        self._data = bytearray()
        self._start = 0  # first live byte
        self._searched = 0  # absolute index up to which no terminator was found

    def __len__(self) -> int:
        return len(self._data) - self._start

    def __bool__(self) -> bool:
        return len(self._data) > self._start

    def append(self, data: bytes) -> None:
        self._data += data

    def _consume(self, n: int) -> None:
        self._start += n
        self._searched = max(self._searched, self._start)
        if self._start == len(self._data):
            self._data.clear()
            self._start = self._searched = 0
        elif self._start > 4096 and self._start * 2 > len(self._data):
            del self._data[: self._start]
            self._searched -= self._start
            self._start = 0

    def find(self, terminator: bytes) -> int:
        """Offset (relative to the live start) just past the first
        ``terminator``, or -1; never rescans bytes already searched."""
        begin = max(self._start, self._searched - len(terminator) + 1)
        i = self._data.find(terminator, begin)
        if i < 0:
            self._searched = len(self._data)
            return -1
        return i + len(terminator) - self._start

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` live bytes."""
        out = bytes(self._data[self._start : self._start + n])
        self._consume(n)
        return out

    def take_all(self) -> bytes:
        out = bytes(self._data[self._start :])
        self._data.clear()
        self._start = self._searched = 0
        return out

    def peek(self, n: int) -> bytes:
        return bytes(self._data[self._start : self._start + n])

    def discard(self, n: int) -> None:
        self._consume(n)

    def endswith(self, suffix: bytes) -> bool:
        return len(self) >= len(suffix) and self._data.endswith(suffix)
