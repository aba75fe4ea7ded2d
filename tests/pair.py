"""Test helpers: drive connections in memory, collect events."""

from __future__ import annotations

from typing import Iterable

from smtpproto import NEED_DATA, PAUSED, Connection, Event, Role
from smtpproto._connection import NextEvent


def events(conn: Connection, data: bytes | Iterable[bytes] = b"") -> list[NextEvent]:
    """Feed data (one or more chunks) and collect events until NEED_DATA/PAUSED
    (the sentinel is included as the last element)."""
    chunks = [data] if isinstance(data, bytes) else list(data)
    out: list[NextEvent] = []
    for chunk in chunks:
        if chunk:
            conn.receive_data(chunk)
        # Drain after every chunk so buffered state is exercised.
        while True:
            ev = conn.next_event()
            out.append(ev)
            if ev is NEED_DATA or ev is PAUSED:
                break
            if ev.__class__.__name__ == "ConnectionClosed":
                return out
    return out


def strip(evs: list[NextEvent]) -> list[NextEvent]:
    """Drop NEED_DATA sentinels (their number depends on chunking) and merge
    adjacent MessageData events (their boundaries depend on chunking too)."""
    from smtpproto import MessageData

    out: list[NextEvent] = []
    for ev in evs:
        if ev is NEED_DATA:
            continue
        if isinstance(ev, MessageData) and out and isinstance(out[-1], MessageData):
            out[-1] = MessageData(data=out[-1].data + ev.data)
            continue
        out.append(ev)
    return out


def splits(data: bytes, *, exhaustive_limit: int = 256) -> Iterable[list[bytes]]:
    """Whole, byte by byte, and every two-way split (for short inputs) (F-02)."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    if len(data) <= exhaustive_limit:
        for i in range(1, len(data)):
            yield [data[:i], data[i:]]
    else:
        step = max(1, len(data) // 64)
        for i in range(1, len(data), step):
            yield [data[:i], data[i:]]


class Pair:
    """A client and a server connection wired together in memory; the server
    accepts everything with a canned reply unless told otherwise."""

    def __init__(self, client: Connection | None = None, server: Connection | None = None) -> None:
        self.client = client or Connection(Role.CLIENT)
        self.server = server or Connection(Role.SERVER)
        self.wire: list[tuple[str, bytes]] = []

    def to_server(self, data: bytes) -> None:
        self.wire.append(("C", data))
        self.server.receive_data(data)

    def to_client(self, data: bytes) -> None:
        self.wire.append(("S", data))
        self.client.receive_data(data)

    def client_send(self, event: Event) -> bytes:
        data = self.client.send(event)
        if data:
            self.to_server(data)
        return data

    def server_send(self, event: Event) -> bytes:
        data = self.server.send(event)
        self.to_client(data)
        return data

    def server_events(self) -> list[NextEvent]:
        return events(self.server)

    def client_events(self) -> list[NextEvent]:
        return events(self.client)
