"""Codec benchmark: smtpproto.message side by side with the standard library's ``email``.

    python benchmarks/bench_codec.py            # full run (100 MB streaming test)
    python benchmarks/bench_codec.py --quick    # smaller sizes, fewer repetitions

Workloads, each on the corpus (../shared/corpus, or $SMTPPROTO_CORPUS) and on a
generated set of multipart messages:

* parse                 — bytes to a message object;
* parse + walk + decode — and then every leaf part's transfer-decoded body, plus the
                          decoded text of text/* parts;
* serialize             — a parsed message back to bytes, and building a multipart
                          message from values to bytes;
* streaming memory      — peak traced memory (tracemalloc) while feeding a large
                          message in 64 KiB chunks to an incremental parser with a body
                          sink (ours) / to ``email.parser.BytesFeedParser`` (stdlib).

Times are the best of several repetitions; ratios are ``email time / our time``, so a
ratio above 1 means smtpproto is faster. This is a script, not a test.
"""

from __future__ import annotations

import argparse
import email
import email.parser
import email.policy
import gc
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smtpproto.message import MessageParser, parse  # noqa: E402
from smtpproto.message._builder import Attachment, build_bytes  # noqa: E402

COMPAT32 = email.policy.compat32
DEFAULT = email.policy.default


def corpus_files() -> list[bytes]:
    env = os.environ.get("SMTPPROTO_CORPUS")
    root = Path(env) if env else ROOT.parent / "shared" / "corpus"
    if not root.is_dir():
        return []
    return [
        p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".eml", ".raw")
    ]


def generated_messages(count: int) -> list[bytes]:
    """Deterministic multipart messages of varied shape and size."""
    out = []
    for i in range(count):
        text = ("Line %d of the plain text part, with some words in it.\n" % i) * (5 + i % 40)
        html = "<html><body>" + "<p>Paragraph %d — naïve café</p>\n" % i * (3 + i % 30) + "</body></html>"
        attachments = [
            Attachment(bytes((i * 7 + k) % 256 for k in range(2000 + 300 * (i % 20))),
                       filename=f"file-{i}.bin"),
        ]
        if i % 3 == 0:
            attachments.append(Attachment(("résumé %d\n" % i).encode() * 50,
                                          filename=f"résumé-{i}.txt", content_type="text/plain"))
        inline = [Attachment(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
                             filename="logo.png", content_id=f"logo{i}@example.com")] if i % 2 else []
        out.append(build_bytes(
            from_=("Sender Ñame", "sender@example.com"),
            to=[(f"Recipient {k}", f"r{k}@example.org") for k in range(1 + i % 4)],
            subject=f"Generated message {i}: grüße",
            text=text, html=html, attachments=attachments, inline=inline,
            date="Tue, 02 Jan 2024 03:04:05 +0000", message_id=f"<gen{i}@example.com>",
            seed=i,
        ))
    return out


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# ----------------------------------------------------------------------------- workloads


def ours_parse(msgs: list[bytes]) -> None:
    for data in msgs:
        parse(data)


def std_parse(policy: email.policy.Policy) -> Callable[[list[bytes]], None]:
    def run(msgs: list[bytes]) -> None:
        for data in msgs:
            email.message_from_bytes(data, policy=policy)
    return run


def ours_decode(msgs: list[bytes]) -> None:
    for data in msgs:
        for part in parse(data).walk():
            if not part.is_multipart and not part.parts:
                part.decoded_body()
                if part.maintype == "text":
                    part.text()


def std_decode(policy: email.policy.Policy) -> Callable[[list[bytes]], None]:
    def run(msgs: list[bytes]) -> None:
        for data in msgs:
            msg = email.message_from_bytes(data, policy=policy)
            for part in msg.walk():
                if part.is_multipart():
                    continue
                try:
                    payload = part.get_payload(decode=True)
                    if part.get_content_maintype() == "text":
                        if isinstance(part, EmailMessage):
                            part.get_content()
                        elif payload is not None:
                            payload.decode(part.get_content_charset() or "ascii", "replace")
                except (LookupError, KeyError, ValueError, AssertionError):
                    pass  # the stdlib raises on some corpus files; ours never does
    return run


def ours_serialize(parsed: list[object]) -> Callable[[], None]:
    def run() -> None:
        for m in parsed:
            m.to_bytes()  # type: ignore[attr-defined]
    return run


def std_exact(parsed: list[email.message.Message], msgs: list[bytes]) -> int:
    n = 0
    for p, m in zip(parsed, msgs):
        try:
            n += p.as_bytes() == m
        except Exception:  # noqa: BLE001 - stdlib generator fails on some inputs
            pass
    return n


def ours_edit_serialize(parsed: list[object]) -> Callable[[], None]:
    def run() -> None:
        for m in parsed:
            m["X-Bench"] = "edited"  # type: ignore[index]
            m.to_bytes()  # type: ignore[attr-defined]
    return run


def std_edit_serialize(parsed: list[email.message.Message]) -> Callable[[], None]:
    def run() -> None:
        for m in parsed:
            del m["X-Bench"]
            m["X-Bench"] = "edited"
            try:
                m.as_bytes()
            except Exception:  # noqa: BLE001 - stdlib generator fails on some inputs
                pass
    return run


def std_serialize(parsed: list[email.message.Message]) -> Callable[[], None]:
    def run() -> None:
        for m in parsed:
            try:
                m.as_bytes()
            except Exception:  # noqa: BLE001 - stdlib generator fails on some inputs
                pass
    return run


BUILD_COUNT = 200


def ours_build() -> None:
    for i in range(BUILD_COUNT):
        build_bytes(
            from_=("Sender", "sender@example.com"), to=["a@example.org", "b@example.org"],
            subject=f"Build {i} grüße", text="Hello there.\n" * 20, html="<p>Hello</p>" * 20,
            attachments=[Attachment(b"\x00\x01binary" * 200, filename=f"f{i}.bin")], seed=i,
        )


def std_build() -> None:
    for i in range(BUILD_COUNT):
        msg = EmailMessage()
        msg["From"] = "Sender <sender@example.com>"
        msg["To"] = "a@example.org, b@example.org"
        msg["Subject"] = f"Build {i} grüße"
        msg.set_content("Hello there.\n" * 20)
        msg.add_alternative("<p>Hello</p>" * 20, subtype="html")
        msg.add_attachment(b"\x00\x01binary" * 200, maintype="application",
                           subtype="octet-stream", filename=f"f{i}.bin")
        msg.as_bytes()


# ----------------------------------------------------------------------------- streaming


def big_message_chunks(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A multipart message whose base64 attachment is about *size* bytes, made lazily."""
    yield (
        b"From: a@example.com\r\nTo: b@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="=_big"\r\n\r\n'
        b"--=_big\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        b"--=_big\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
    block = line * (chunk // len(line))
    sent = 0
    while sent < size:
        yield block
        sent += len(block)
    yield b"--=_big--\r\n"


def stream_ours(size: int) -> tuple[float, int, int]:
    received = [0]

    def sink(part: object, data: bytes) -> None:
        received[0] += len(data)

    tracemalloc.start()
    start = time.perf_counter()
    parser = MessageParser(body_sink=sink)
    for chunk in big_message_chunks(size):
        parser.feed(chunk)
    parser.close()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak, received[0]


def stream_std(size: int) -> tuple[float, int]:
    tracemalloc.start()
    start = time.perf_counter()
    parser = email.parser.BytesFeedParser(policy=COMPAT32)
    for chunk in big_message_chunks(size):
        parser.feed(chunk)
    parser.close()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak


# ----------------------------------------------------------------------------- report


def row(label: str, ours: float, others: dict[str, float]) -> None:
    ratios = "  ".join(f"{name} {t * 1000:8.1f} ms (x{t / ours:5.2f})" for name, t in others.items())
    print(f"  {label:<24} ours {ours * 1000:8.1f} ms   {ratios}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    args = ap.parse_args()
    repeat = 3 if args.quick else 5
    stream_size = (10 if args.quick else 100) * 1024 * 1024
    print(f"Python {sys.version.split()[0]}; best of {repeat}; ratio = email time / ours "
          "(> 1: smtpproto faster)")

    sets = {"corpus": corpus_files(), "generated": generated_messages(60 if args.quick else 200)}
    for name, msgs in sets.items():
        if not msgs:
            print(f"\n[{name}] skipped: corpus not found (set SMTPPROTO_CORPUS)")
            continue
        total = sum(map(len, msgs))
        print(f"\n[{name}] {len(msgs)} messages, {total / 1e6:.1f} MB")
        row("parse", best_of(lambda: ours_parse(msgs), repeat), {
            "compat32": best_of(lambda: std_parse(COMPAT32)(msgs), repeat),
            "default": best_of(lambda: std_parse(DEFAULT)(msgs), repeat),
        })
        row("parse+walk+decode", best_of(lambda: ours_decode(msgs), repeat), {
            "compat32": best_of(lambda: std_decode(COMPAT32)(msgs), repeat),
            "default": best_of(lambda: std_decode(DEFAULT)(msgs), repeat),
        })
        ours_parsed = [parse(m) for m in msgs]
        std32 = [email.message_from_bytes(m, policy=COMPAT32) for m in msgs]
        stddef = [email.message_from_bytes(m, policy=DEFAULT) for m in msgs]
        exact = sum(p.to_bytes() == m for p, m in zip(ours_parsed, msgs))
        std32_exact, stddef_exact = std_exact(std32, msgs), std_exact(stddef, msgs)
        row("serialize unchanged", best_of(ours_serialize(ours_parsed), repeat), {
            "compat32": best_of(std_serialize(std32), repeat),
            "default": best_of(std_serialize(stddef), repeat),
        })
        row("edit 1 field+serialize", best_of(ours_edit_serialize(ours_parsed), repeat), {
            "compat32": best_of(std_edit_serialize(std32), repeat),
            "default": best_of(std_edit_serialize(stddef), repeat),
        })
        print(f"  {'byte-exact round trip':<24} ours {exact}/{len(msgs)}   "
              f"compat32 {std32_exact}/{len(msgs)}   default {stddef_exact}/{len(msgs)}")

    print(f"\n[build] {BUILD_COUNT} multipart messages (text+html+attachment) from values")
    row("build + serialize", best_of(ours_build, repeat), {"default": best_of(std_build, repeat)})

    mb = stream_size / 1024 / 1024
    print(f"\n[stream] {mb:.0f} MiB base64 attachment fed in 64 KiB chunks")
    elapsed, peak, received = stream_ours(stream_size)
    print(f"  ours   MessageParser(body_sink=...)  {elapsed:6.2f} s   peak {peak / 2**20:7.2f} MiB"
          f"   ({received / 2**20:.0f} MiB to the sink; goal < 10 MiB)")
    std_size = stream_size if args.quick else stream_size // 5
    elapsed, peak = stream_std(std_size)
    print(f"  email  BytesFeedParser ({std_size / 2**20:.0f} MiB)   {elapsed:6.2f} s   "
          f"peak {peak / 2**20:7.2f} MiB (keeps the whole message)")


if __name__ == "__main__":
    main()
