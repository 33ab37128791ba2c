"""Optical character recognition with RapidOCR (ONNX models shipped in its wheel).

The engine loads lazily (about 0.3 s) on the first scanned page or image and is shared
after that; a lock serialises calls because one engine instance is not documented as
thread-safe. Nothing is ever downloaded.

Two things are added to what the engine answers:
- word spacing: its recogniser often drops the spaces of small print
  ("Invoicetotalis 4321"); the line's own pixels say where words end (a run of blank
  columns much wider than the gaps between letters), and the engine's per-character
  positions say which characters such a gap falls between;
- reading order: text boxes whose vertical extents overlap are one line, read left to
  right; lines top to bottom.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from statistics import median
from typing import Any

import numpy as np

_lock = threading.Lock()
_engine: Any = None

# Lines OCR is less sure of than this are noise (speckles, stamps) more often than text.
MIN_CONFIDENCE = 0.5
# A blank run is a word gap when it is wider than the typical (median) gap between letters
# by this share of the line's ink height, and by at least WORD_GAP_MIN_PX. Measured on sans,
# serif and condensed faces from 14 to 40 px, PNG and JPEG: letter gaps (even around a
# narrow "1") stay under it, word gaps pass it.
WORD_GAP_OF_HEIGHT = 0.12
WORD_GAP_MIN_PX = 2.0
# Below this contrast (grey levels) a line's crop is not trusted to show its gaps.
MIN_CONTRAST = 40


def _get_engine() -> Any:
    global _engine
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR

        _engine = RapidOCR()
    return _engine


@dataclass
class _Box:
    x0: float
    y0: float
    y1: float
    text: str


def _blank_runs(gray: np.ndarray, box: list[list[float]]) -> tuple[list[tuple[float, int]], int]:
    """(centre x, width) of each blank column run between ink in the box, and the ink's
    height in pixels."""
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    x0, x1 = max(int(min(xs)), 0), min(int(max(xs)) + 1, gray.shape[1])
    y0, y1 = max(int(min(ys)), 0), min(int(max(ys)) + 1, gray.shape[0])
    crop = gray[y0:y1, x0:x1]
    if crop.size == 0 or int(crop.max()) - int(crop.min()) < MIN_CONTRAST:
        return [], 0
    ink = crop < (int(crop.min()) + int(crop.max())) / 2
    if ink.mean() > 0.5:  # light text on a dark ground
        ink = ~ink
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if len(rows) == 0 or len(cols) < 2:
        return [], 0
    runs = [(x0 + (a + b) / 2, int(b - a - 1)) for a, b in zip(cols[:-1], cols[1:], strict=True)
            if b - a > 1]
    return runs, int(rows[-1] - rows[0] + 1)


def _spaced(gray: np.ndarray, box: list[list[float]], text: str,
            char_boxes: list[list[list[float]]] | None) -> str:
    """`text` with a space wherever the line's pixels show a word gap it has none for."""
    if not char_boxes or len(char_boxes) != len(text) or len(text) < 2:
        return text
    runs, height = _blank_runs(gray, box)
    if not runs:
        return text
    threshold = median(w for _, w in runs) + max(WORD_GAP_MIN_PX, WORD_GAP_OF_HEIGHT * height)
    gaps = [x for x, width in runs if width >= threshold]
    centres = [(b[0][0] + b[1][0]) / 2 for b in char_boxes]
    out = [text[0]]
    for i in range(1, len(text)):
        # Digits are set on equal advances, so a narrow one ("1") stands apart from its
        # neighbours like a word: no space is ever put inside a run of digits.
        pair = text[i - 1] + text[i]
        if (" " not in pair and not pair.isdigit() and not _cjk(pair)
                and any(centres[i - 1] < x < centres[i] for x in gaps)):
            out.append(" ")
        out.append(text[i])
    return "".join(out)


def _cjk(chars: str) -> bool:
    # Scripts written without spaces between words get none inserted.
    return any("\u2e80" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" for c in chars)


def _reading_order(boxes: list[_Box]) -> list[str]:
    """Boxes grouped into lines (vertical extents overlapping by half the smaller box),
    lines top to bottom, boxes in a line left to right."""
    lines: list[list[_Box]] = []
    for box in sorted(boxes, key=lambda b: (b.y0 + b.y1) / 2):
        if lines:
            last = lines[-1]
            top, bottom = min(b.y0 for b in last), max(b.y1 for b in last)
            overlap = min(bottom, box.y1) - max(top, box.y0)
            if overlap >= 0.5 * min(bottom - top, box.y1 - box.y0):
                last.append(box)
                continue
        lines.append([box])
    return [" ".join(b.text for b in sorted(line, key=lambda b: b.x0)) for line in lines]


def read_lines(image: np.ndarray) -> list[str]:
    """The text lines OCR finds in an RGB image, in reading order, words spaced."""
    with _lock:
        result, _ = _get_engine()(image, return_word_box=True)
    gray = image.mean(axis=2) if image.ndim == 3 else image
    boxes = []
    for row in result or []:
        box, text, score = row[0], row[1], row[2]
        if not text or not text.strip() or float(score) < MIN_CONFIDENCE:
            continue
        spaced = _spaced(gray, box, text, row[3] if len(row) > 3 else None)
        ys = [p[1] for p in box]
        boxes.append(_Box(min(p[0] for p in box), min(ys), max(ys), " ".join(spaced.split())))
    return _reading_order(boxes)
