"""The receive buffer: bytes are consumed from the front.

Like h11's, it remembers how far it has already searched for a line end, so
feeding a long line a byte at a time costs linear, not quadratic, time; consumed
bytes are dropped lazily (the array is compacted only when the dead prefix is
at least half of it), so pipelined input is not memmoved once per line.  A chunk
that arrives while the buffer is empty is kept as the ``bytes`` object it came
in, so DATA content of whole chunks is never copied on its way through.
"""

from __future__ import annotations

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    __slots__ = ("_data", "_start", "_searched", "_whole")

    def __init__(self) -> None:
        self._data = bytearray()
        self._start = 0  # first live byte of _data
        self._searched = 0  # absolute index in _data up to which no terminator was found
        # Fast path: the only live bytes, as received (then _data is empty).
        self._whole: bytes | None = None

    def __len__(self) -> int:
        if self._whole is not None:
            return len(self._whole)
        return len(self._data) - self._start

    def __bool__(self) -> bool:
        return self._whole is not None or len(self._data) > self._start

    def _spill(self) -> None:
        """Move the fast-path bytes into the array."""
        if self._whole is not None:
            self._data += self._whole
            self._whole = None

    def append(self, data: bytes) -> None:
        if not data:
            return
        if self._whole is None and self._start == len(self._data):
            self._data.clear()
            self._start = self._searched = 0
            self._whole = data
            return
        self._spill()
        self._data += data

    def sole(self) -> bytes | None:
        """The live bytes when they are one chunk exactly as received, else None
        (a cheap test for "one whole command line came in one read")."""
        return self._whole

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
        whole = self._whole
        if whole is not None:
            # One chunk, unsearched: look in it where it is (the common case,
            # a command that came in one read) and copy only when it must wait.
            i = whole.find(terminator)
            if i >= 0:
                return i + len(terminator)
            self._spill()
            self._searched = len(self._data)
            return -1
        self._spill()
        begin = max(self._start, self._searched - len(terminator) + 1)
        i = self._data.find(terminator, begin)
        if i < 0:
            self._searched = len(self._data)
            return -1
        return i + len(terminator) - self._start

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` live bytes."""
        whole = self._whole
        if whole is not None:
            if n >= len(whole):
                self._whole = None
                return whole
            self._whole = None
            self._data += memoryview(whole)[n:]
            return whole[:n]
        with memoryview(self._data) as view:
            out = bytes(view[self._start : self._start + n])
        self._consume(n)
        return out

    def peek(self, n: int) -> bytes:
        """The first ``n`` live bytes, left in place."""
        whole = self._whole
        if whole is not None:
            return whole if n >= len(whole) else whole[:n]
        with memoryview(self._data) as view:
            return bytes(view[self._start : self._start + n])

    def clear(self) -> None:
        """Drop every live byte."""
        self._whole = None
        self._data.clear()
        self._start = self._searched = 0

    def discard(self, n: int) -> None:
        whole = self._whole
        if whole is not None:
            self._whole = None
            if n < len(whole):
                self._data += memoryview(whole)[n:]
            return
        self._consume(n)

    def endswith(self, suffix: bytes) -> bool:
        if self._whole is not None:
            return self._whole.endswith(suffix)
        return len(self) >= len(suffix) and self._data.endswith(suffix)
