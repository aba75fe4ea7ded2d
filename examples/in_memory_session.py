"""A client and a server Connection talking to each other in memory.

No sockets, no threads: bytes go from one object to the other by hand, which is
exactly what an adapter does with a real transport.  Run it to see the SMTP
transcript and the events each side produced:

    python examples/in_memory_session.py
"""

from __future__ import annotations

from smtpproto import (
    NEED_DATA,
    PAUSED,
    Capabilities,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Mail,
    MessageData,
    Quit,
    Rcpt,
    Reply,
    Role,
)

MESSAGE = b"""From: alice@example.org
To: bob@example.net
Subject: hello from smtpproto

.this line starts with a dot (it gets dot-stuffed on the wire)
Bye.
"""


def main() -> None:
    client = Connection(Role.CLIENT)
    server = Connection(Role.SERVER)
    received = bytearray()

    def wire(direction: str, data: bytes) -> None:
        for line in data.splitlines(keepends=True):
            print(f"{direction} {line!r}")

    def to_server(data: bytes) -> None:
        wire("C:", data)
        server.receive_data(data)

    def to_client(data: bytes) -> None:
        wire("S:", data)
        client.receive_data(data)

    def server_turn() -> None:
        """Run the server until it needs input: a tiny accept-everything policy."""
        while True:
            event = server.next_event()
            if event is NEED_DATA:
                return
            if event is PAUSED:
                owed = server.reply_owed
                assert owed is not None
                to_client(server.send(answer(owed)))
                continue
            print(f"   server event: {event!r}")
            if isinstance(event, ConnectionClosed):
                return
            if isinstance(event, MessageData):
                received.extend(event.data)

    def answer(event: Event) -> Reply:
        if isinstance(event, Ehlo):
            caps = Capabilities.build(size=10_000_000, pipelining=True, eightbitmime=True,
                                      enhancedstatuscodes=True)
            return Reply(code=250, lines=["mx.example.net", *caps.to_lines()])
        if isinstance(event, Data):
            return Reply(code=354, lines=["End data with <CR><LF>.<CR><LF>"])
        if isinstance(event, Quit):
            return Reply(code=221, lines=["Bye"], enhanced_status="2.0.0")
        if isinstance(event, EndOfMessage):
            return Reply(code=250, lines=["Ok: queued"], enhanced_status="2.0.0")
        return Reply(code=250, lines=["Ok"], enhanced_status="2.0.0")

    def client_turn() -> list[Event]:
        replies: list[Event] = []
        while True:
            event = client.next_event()
            if event is NEED_DATA or event is PAUSED:
                return replies
            print(f"   client event: {event!r}")
            replies.append(event)
            if isinstance(event, ConnectionClosed):
                return replies

    to_client(server.send(Reply(code=220, lines=["mx.example.net ESMTP smtpproto demo"])))
    client_turn()
    to_server(client.send(Ehlo(domain="client.example.org")))
    server_turn()
    client_turn()
    print(f"   client learned: {dict(client.extensions)}")
    # PIPELINING was advertised: MAIL, RCPT and DATA go out as one group.
    to_server(client.send(Mail(reverse_path="alice@example.org"))
              + client.send(Rcpt(forward_path="bob@example.net"))
              + client.send(Data()))
    server_turn()
    client_turn()
    to_server(client.send(MessageData(data=MESSAGE)) + client.send(EndOfMessage()))
    server_turn()
    client_turn()
    to_server(client.send(Quit()))
    server_turn()
    client_turn()
    print(f"final states: client {client.state.name}, server {server.state.name}")
    print("message as the server received it:")
    print(received.decode())
    assert bytes(received) == MESSAGE.replace(b"\n", b"\r\n")


if __name__ == "__main__":
    main()
