"""Run smtpproto's fuzz targets under atheris (coverage-guided libFuzzer).

    python -m pip install -e ".[test,fuzz]"
    python fuzz/run.py server  [libFuzzer flags, e.g. -max_total_time=1800 corpus_dir]
    python fuzz/run.py client | message | roundtrip

The targets are the functions in :mod:`smtpproto.testing` (``fuzz_server``,
``fuzz_client``, ``fuzz_message``, ``fuzz_message_roundtrip``); each raises
only on a bug, so any exception libFuzzer reports is a finding.  A crash
input is written to ``crash-<sha1>`` in the working directory; turn it into a
regression test in ``tests/test_fuzz_regressions.py``.

``--seeds DIR`` copies seed inputs into a fresh corpus directory first (for
the message targets, ``../shared/corpus`` is a good seed set).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import atheris

# hypothesis (imported by smtpproto.testing) never runs inside a target:
# importing it first keeps it out of the instrumentation, which would take
# most of the start-up time.  smtpproto.message is imported here because the
# message targets import it lazily, after this block: left to them, the codec
# would run uninstrumented and libFuzzer would see almost no coverage.
import hypothesis.strategies  # noqa: E402,F401

with atheris.instrument_imports(include=["smtpproto"]):
    import smtpproto.message  # noqa: F401
    from smtpproto import testing

TARGETS = {
    "server": testing.fuzz_server,
    "client": testing.fuzz_client,
    "message": testing.fuzz_message,
    "roundtrip": testing.fuzz_message_roundtrip,
}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{'|'.join(TARGETS)}}} [--seeds DIR] [libFuzzer flags]")
    target = TARGETS[argv[1]]
    rest = argv[2:]
    if rest[:1] == ["--seeds"] and len(rest) >= 2:
        seeds, rest = rest[1], rest[2:]
        corpus = tempfile.mkdtemp(prefix=f"fuzz-{argv[1]}-")
        for root, _dirs, files in os.walk(seeds):
            for name in files:
                if not name.endswith((".json", ".md", ".txt")) and "LICENSE" not in name:
                    src = os.path.join(root, name)
                    shutil.copy(src, os.path.join(corpus, f"{len(os.listdir(corpus))}-{name}"))
        rest.append(corpus)
    atheris.Setup([argv[0], *rest], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
