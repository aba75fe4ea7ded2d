"""Bridges to the standard library ``email`` package.

Both directions go through bytes, the one representation the two libraries
share exactly: our ``to_bytes()`` is the original input, and ``email``'s
bytes generator is its own canonical output.
"""

from __future__ import annotations

import email.generator
import email.message
import email.parser
import email.policy
import io
from typing import Any

from ._message import Message

__all__ = ["to_email_message", "from_email_message"]


def to_email_message(message: Message, policy: Any = None) -> email.message.Message:
    """Parse ``message.to_bytes()`` with :class:`email.parser.BytesParser`.

    ``policy`` defaults to ``email.policy.compat32`` (which returns
    :class:`email.message.Message`); pass ``email.policy.default`` to get an
    :class:`email.message.EmailMessage`.
    """
    pol = email.policy.compat32 if policy is None else policy
    result: email.message.Message = email.parser.BytesParser(policy=pol).parsebytes(
        message.to_bytes())
    return result


def from_email_message(message: email.message.Message) -> Message:
    """Serialise an ``email`` message with CRLF line endings and parse the bytes."""
    from ._parser import parse
    out = io.BytesIO()
    policy = message.policy.clone(linesep="\r\n")
    try:
        email.generator.BytesGenerator(out, policy=policy, mangle_from_=False).flatten(
            message, unixfrom=False)
        data = out.getvalue()
    except (UnicodeError, TypeError, ValueError):
        # compat32 messages holding non-ASCII str headers cannot be written as
        # bytes; fall back to text output with the original bytes restored.
        data = message.as_string(policy=policy).encode("utf-8", "surrogateescape")
    return parse(data)
