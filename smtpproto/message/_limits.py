"""Resource caps for the parser (SECURITY-CASES H-11, Postfix ``header_size_limit``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps applied while parsing; exceeding one yields a defect, never an exception.

    - ``max_header_bytes``: size of one part's header section (102400, as
      Postfix's ``header_size_limit``).  Checked before any header value is
      decoded, so hostile header sections cannot reach the slower parsers.
    - ``max_depth``: nesting of multiparts and message/rfc822 parts.
    - ``max_parts``: total number of parts (the root counts as one).
    - ``max_encoded_nesting``: how many times a base64/quoted-printable
      message/rfc822 may contain another such encoded message.
    - ``max_boundary_line``: longest line still considered a boundary candidate;
      longer lines are body text (bounds buffering while streaming).
    """

    max_header_bytes: int = 100 * 1024
    max_depth: int = 32
    max_parts: int = 1000
    max_encoded_nesting: int = 4
    max_boundary_line: int = 2048

    def __post_init__(self) -> None:
        for name in ("max_header_bytes", "max_depth", "max_parts", "max_boundary_line"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_encoded_nesting < 0:
            raise ValueError("max_encoded_nesting must not be negative")
