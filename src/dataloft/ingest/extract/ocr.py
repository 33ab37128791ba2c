"""Optical character recognition with RapidOCR (ONNX models shipped in its wheel).

The engine loads lazily (about 0.3 s) on the first scanned page and is shared after that;
a lock serialises calls because one engine instance is not documented as thread-safe.
Nothing is ever downloaded.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

_lock = threading.Lock()
_engine: Any = None

# Lines OCR is less sure of than this are noise (speckles, stamps) more often than text.
MIN_CONFIDENCE = 0.5


def _get_engine() -> Any:
    global _engine
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR

        _engine = RapidOCR()
    return _engine


def read_lines(image: np.ndarray) -> list[str]:
    """The text lines OCR finds in an RGB image, in RapidOCR's reading order."""
    with _lock:
        result, _ = _get_engine()(image)
    return [text.strip() for _box, text, score in result or []
            if text and text.strip() and float(score) >= MIN_CONFIDENCE]
