"""PDF: the text layer of each page (pdfminer.six); pages without one are rendered
(pypdfium2) and read by OCR. One Section per page, meta `page` (1-based) and `ocr`."""

from __future__ import annotations

import io
import re
import threading
import time
from typing import Any

import numpy as np
import pypdfium2 as pdfium
from pdfminer.converter import TextConverter
from pdfminer.layout import LAParams
from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser

from dataloft.ingest.extract import ocr
from dataloft.ingest.extract.base import Extracted, ExtractionError, Section, register
from dataloft.ingest.extract.sniff import is_pdf

# OCR costs one to a few seconds a page on a CPU; past this many scanned pages, or this
# much OCR time, the rest of a huge scan is left unread rather than the whole file failing
# at the extraction sandbox's wall-clock limit (120 s by default).
MAX_OCR_PAGES = 200
OCR_BUDGET_S = 75.0
# Render scale for OCR: 2.0 is 144 dpi, plenty for body text; capped in pixels so a
# poster-sized page does not become a gigapixel bitmap.
OCR_SCALE = 2.0
OCR_MAX_SIDE_PX = 3000
# A page whose text layer has no letter or digit (blank, or only a stray page furniture
# glyph) is treated as scanned.
_HAS_WORD_CHAR = re.compile(r"\w")
# pdfium is not thread-safe; extraction may run on several worker threads.
_pdfium_lock = threading.Lock()


def _encrypted(exc: Exception) -> ExtractionError:
    return ExtractionError("encrypted", "the PDF is password-protected; upload it without a "
                           f"password ({type(exc).__name__})")


def _text_layer(data: bytes) -> list[str | None] | None:
    """Text per page; None for a page (or the whole file) pdfminer cannot read."""
    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)), password="")
    except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
        raise _encrypted(exc) from exc
    except MemoryError:
        raise  # the sandbox reports it as resource_limit; pdfium would only try harder
    except Exception:  # pdfminer cannot parse it; pdfium, more forgiving, may still
        return None
    manager = PDFResourceManager(caching=True)
    out = io.StringIO()
    interpreter = PDFPageInterpreter(manager, TextConverter(manager, out, laparams=LAParams()))
    pages: list[str | None] = []
    try:
        for page in PDFPage.create_pages(document):
            try:
                interpreter.process_page(page)
                pages.append(out.getvalue().replace("\x0c", "").strip())
            except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
                raise _encrypted(exc) from exc
            except MemoryError:
                raise
            except Exception:
                pages.append(None)
            out.seek(0)
            out.truncate()
    except (ExtractionError, MemoryError):
        raise
    except Exception:
        return pages or None
    return pages


def _open_pdfium(data: bytes) -> Any:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise _encrypted(exc) from exc
        raise ExtractionError("corrupted_file", f"the PDF is damaged: {exc}") from exc


def _pdfium_text(page: Any) -> str:
    textpage = page.get_textpage()
    try:
        return str(textpage.get_text_range()).replace("\r\n", "\n").strip()
    finally:
        textpage.close()


def _ocr_page(page: Any) -> str:
    width, height = page.get_size()
    scale = min(OCR_SCALE, OCR_MAX_SIDE_PX / max(width, height, 1.0))
    bitmap = page.render(scale=scale)
    try:
        image = np.asarray(bitmap.to_pil().convert("RGB"))
    finally:
        bitmap.close()
    return "\n".join(ocr.read_lines(image))


def _fill_gaps(data: bytes, pages: list[str | None] | None) -> list[tuple[str, bool]]:
    """(text, by_ocr) per page: pdfium's text where pdfminer failed, OCR where no text."""
    out: list[tuple[str, bool]] = []
    ocr_pages_left = MAX_OCR_PAGES
    ocr_deadline = time.monotonic() + OCR_BUDGET_S
    with _pdfium_lock:
        document = _open_pdfium(data)
        try:
            count = len(document) if pages is None else len(pages)
            for index in range(count):
                text = pages[index] if pages is not None else None
                if text is not None and _HAS_WORD_CHAR.search(text):
                    out.append((text, False))
                    continue
                if index >= len(document):
                    continue
                page = document[index]
                try:
                    text = _pdfium_text(page) if text is None else text
                    if _HAS_WORD_CHAR.search(text):
                        out.append((text, False))
                    elif ocr_pages_left > 0 and time.monotonic() < ocr_deadline:
                        ocr_pages_left -= 1
                        out.append((_ocr_page(page), True))
                    else:
                        out.append(("", False))
                finally:
                    page.close()
        finally:
            document.close()
    return out


@register("pdf", (".pdf",), ("application/pdf", "application/x-pdf"), magic=is_pdf)
def extract_pdf(data: bytes, _name: str) -> Extracted:
    pages = _text_layer(data)
    if pages and all(p is not None and _HAS_WORD_CHAR.search(p) for p in pages):
        filled = [(p or "", False) for p in pages]  # every page has text: no pdfium needed
    else:
        filled = _fill_gaps(data, pages)
    sections = [Section(text, {"page": n, "ocr": True} if by_ocr else {"page": n})
                for n, (text, by_ocr) in enumerate(filled, 1) if text.strip()]
    if not sections:
        scanned = any(by_ocr for _, by_ocr in filled)
        raise ExtractionError("empty_content", "the PDF has no text layer and OCR found no "
                              "text in it" if scanned else "the PDF contains no text")
    yield from sections
