"""Run every ```python block of docs/codec.md, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "codec.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_doc_has_examples() -> None:
    assert len(blocks()) >= 8


def test_doc_examples_run() -> None:
    namespace: dict[str, object] = {"__name__": "codec_doc"}
    for index, code in enumerate(blocks()):
        try:
            exec(compile(code, f"{DOC.name}[block {index}]", "exec"), namespace)  # noqa: S102
        except Exception as exc:  # pragma: no cover - the failure report
            pytest.fail(f"docs/codec.md block {index} failed: {exc!r}\n{code}")


def test_doc_has_benchmark_figures() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "BENCHMARK-FIGURES" not in text
    assert "python benchmarks/bench_codec.py" in text
