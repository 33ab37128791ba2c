"""Native libraries that share a process must load in any order. usearch 2.26.2 to 2.26.6
segfaults when onnxruntime (OCR) is imported after it; the test suite did exactly that (the
index contract, then the in-process extraction tests) and died. pyproject pins usearch
below 2.26.2; this guards a future upgrade. Each order runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = ("usearch.compiled", "onnxruntime", "rapidocr_onnxruntime", "numpy", "wordllama",
           "duckdb", "pypdfium2")


@pytest.mark.parametrize("first", ["usearch.compiled", "onnxruntime"])
def test_usearch_and_onnxruntime_load_in_either_order(first: str) -> None:
    order = [first, *(m for m in MODULES if m != first)]
    code = "; ".join(f"import {m}" for m in order)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert done.returncode == 0, (order, done.returncode, done.stderr.decode()[-2000:])
