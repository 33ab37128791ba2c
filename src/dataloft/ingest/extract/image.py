"""Images (PNG, JPEG, WebP, TIFF, BMP, GIF): read by the same offline OCR as scanned PDF
pages. One Section per frame with text: a multi-page TIFF gives one per page, an animated
GIF or WebP only its first frame. Meta: `image` (the file name), `page` (1-based) where
the image has several pages, and `ocr`.

A pixel bomb (a small file declaring a huge canvas) is refused from its header, before any
pixel is decoded, with `resource_limit`."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from dataloft.ingest.extract import ocr
from dataloft.ingest.extract.base import Extracted, ExtractionError, Section, register

# 50 megapixels: a 300 dpi scan of an A2 sheet; a decoded RGB frame of that size is 150 MB,
# well inside the extraction child's memory limit.
MAX_PIXELS = 50_000_000
# OCR reads text of ordinary sizes best; a larger frame is scaled down to this longest side.
OCR_MAX_SIDE_PX = 3000
MAX_PAGES = 200
OCR_BUDGET_S = 75.0
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00",
              b"MM\x00*", b"BM")


def is_image(data: bytes) -> bool:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    # "BM" alone is two common letters: a BMP also names its header size at offset 14.
    if data.startswith(b"BM"):
        return (len(data) > 18 and data[14] in (12, 40, 52, 56, 64, 108, 124)
                and not any(data[15:18]))
    return data.startswith(SIGNATURES)


def _check_size(image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ExtractionError("resource_limit", f"the image is {width} x {height} pixels "
                              f"({width * height / 1e6:.0f} megapixels), over the limit of "
                              f"{MAX_PIXELS // 1_000_000} megapixels")


def _bomb(exc: Exception) -> ExtractionError:
    return ExtractionError("resource_limit", "the image is too large to read (over the limit "
                           f"of {MAX_PIXELS // 1_000_000} megapixels): {exc}")


def _rgb(frame: Image.Image) -> np.ndarray:
    """The frame as RGB on white (transparent text would otherwise be black on black),
    scaled down first where it is larger than OCR reads well (and than memory needs)."""
    width, height = frame.size
    if max(width, height) > OCR_MAX_SIDE_PX:
        scale = OCR_MAX_SIDE_PX / max(width, height)
        frame = frame.resize((max(1, round(width * scale)), max(1, round(height * scale))))
    if frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info):
        rgba = frame.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        frame = flat
    return np.asarray(frame.convert("RGB"))


def _frames(image: Image.Image) -> Iterator[Image.Image]:
    if image.format in ("GIF", "WEBP", "PNG"):  # animations: the first frame is the picture
        yield image
        return
    for n, frame in enumerate(ImageSequence.Iterator(image)):
        if n >= MAX_PAGES:
            return
        _check_size(frame)
        yield frame


@register("image", (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"),
          ("image/png", "image/jpeg", "image/webp", "image/tiff", "image/bmp", "image/gif"),
          magic=is_image)
def extract_image(data: bytes, name: str) -> Extracted:
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except UnidentifiedImageError as exc:
        raise ExtractionError("corrupted_file", "the image is damaged or not an image "
                              "Pillow can read") from exc
    except Image.DecompressionBombError as exc:
        raise _bomb(exc) from exc
    _check_size(image)
    label = name.rsplit("/", 1)[-1] or "image"
    pages = getattr(image, "n_frames", 1) > 1 and image.format == "TIFF"
    deadline = time.monotonic() + OCR_BUDGET_S
    sections = []
    try:
        for n, frame in enumerate(_frames(image), 1):
            if time.monotonic() > deadline:
                break
            text = "\n".join(ocr.read_lines(_rgb(frame)))
            if text.strip():
                meta = {"image": label, "page": n, "ocr": True} if pages else \
                    {"image": label, "ocr": True}
                sections.append(Section(text, meta))
    except Image.DecompressionBombError as exc:
        raise _bomb(exc) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or malformed pixel data
        raise ExtractionError("corrupted_file", f"the image is damaged: {exc}") from exc
    if not sections:
        raise ExtractionError("empty_content", "OCR found no text in the image")
    yield from sections
