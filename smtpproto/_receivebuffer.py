"""The receive buffer: bytes are consumed from the front.

Like h11's, it remembers how far it has already searched for a line end, so
feeding a long line a byte at a time costs linear, not quadratic, time; consumed
bytes are dropped lazily (the array is compacted only when the dead prefix is
at least half of it), so pipelined input is not memmoved once per line.

A chunk that arrives while the buffer is empty is kept as the ``bytes`` object
it came in, with an offset: the lines in it (a client's pipelined replies, a
server's pipelined commands) are sliced out where they are, and DATA content
of whole chunks is never copied on its way through.  Only when more bytes
arrive behind a remainder is that remainder copied into the array.
"""

from __future__ import annotations

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    __slots__ = ("_data", "_start", "_searched", "_searched_for", "_whole", "_pos")

    def __init__(self) -> None:
        self._data = bytearray()
        self._start = 0  # first live byte of _data
        self._searched = 0  # absolute index in _data up to which no terminator was found
        self._searched_for = b"\n"  # ... that terminator (another one starts again)
        # Fast path: the live bytes are _whole[_pos:], a chunk as received
        # (then _data is empty).  _whole is never left fully consumed.
        self._whole: bytes | None = None
        self._pos = 0

    def __len__(self) -> int:
        if self._whole is not None:
            return len(self._whole) - self._pos
        return len(self._data) - self._start

    def __bool__(self) -> bool:
        return self._whole is not None or len(self._data) > self._start

    def _spill(self) -> None:
        """Move the fast-path bytes into the array."""
        whole = self._whole
        if whole is not None:
            self._data += memoryview(whole)[self._pos:] if self._pos else whole
            self._whole = None
            self._pos = 0

    def append(self, data: bytes) -> None:
        if not data:
            return
        if self._whole is None and self._start == len(self._data):
            self._data.clear()
            self._start = self._searched = 0
            self._whole = data
            self._pos = 0
            return
        self._spill()
        self._data += data

    def sole(self) -> bytes | None:
        """The live bytes when they are the rest of one chunk as received, else
        None (a cheap test for "one whole command line came in one read")."""
        whole = self._whole
        if whole is None or not self._pos:
            return whole
        return whole[self._pos:]

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
            pos = self._pos
            i = whole.find(terminator, pos)
            if i >= 0:
                return i + len(terminator) - pos
            self._spill()
            self._searched = len(self._data)
            self._searched_for = terminator
            return -1
        if terminator != self._searched_for:
            # Where one terminator is not, another may be: search from the start.
            self._searched_for = terminator
            self._searched = self._start
        begin = max(self._start, self._searched - len(terminator) + 1)
        i = self._data.find(terminator, begin)
        if i < 0:
            self._searched = len(self._data)
            return -1
        return i + len(terminator) - self._start

    def take_line(self) -> bytes | None:
        """Remove and return the first line with its LF, or None when no LF
        has arrived yet (then the bytes searched are not searched again)."""
        whole = self._whole
        if whole is not None:
            pos = self._pos
            i = whole.find(b"\n", pos) + 1
            if i:
                if i == len(whole):
                    self._whole = None
                    self._pos = 0
                    return whole[pos:] if pos else whole
                self._pos = i
                return whole[pos:i]
        n = self.find(b"\n")
        return None if n < 0 else self.take(n)

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` live bytes."""
        whole = self._whole
        if whole is not None:
            pos = self._pos
            end = pos + n
            if end >= len(whole):
                self._whole = None
                self._pos = 0
                return whole[pos:] if pos else whole
            self._pos = end
            return whole[pos:end]
        with memoryview(self._data) as view:
            out = bytes(view[self._start : self._start + n])
        self._consume(n)
        return out

    def peek(self, n: int) -> bytes:
        """The first ``n`` live bytes, left in place."""
        whole = self._whole
        if whole is not None:
            pos = self._pos
            if not pos and n >= len(whole):
                return whole
            return whole[pos:pos + n]
        with memoryview(self._data) as view:
            return bytes(view[self._start : self._start + n])

    def clear(self) -> None:
        """Drop every live byte."""
        self._whole = None
        self._pos = 0
        self._data.clear()
        self._start = self._searched = 0

    def discard(self, n: int) -> None:
        whole = self._whole
        if whole is not None:
            end = self._pos + n
            if end >= len(whole):
                self._whole = None
                self._pos = 0
            else:
                self._pos = end
            return
        self._consume(n)

    def endswith(self, suffix: bytes) -> bool:
        whole = self._whole
        if whole is not None:
            return len(whole) - self._pos >= len(suffix) and whole.endswith(suffix)
        return len(self) >= len(suffix) and self._data.endswith(suffix)
