"""Real files of every supported format, generated in the tests, byte by byte or with the
same libraries users' tools write them with."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

import docx
import openpyxl
import pptx
from PIL import Image, ImageDraw, ImageFont

OCR_SENTENCE = "The orange submarine docks at noon"

# --- builders ------------------------------------------------------------------------


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def make_text_pdf(pages: list[list[str]], encrypt: bool = False) -> bytes:
    """A minimal valid PDF with a Helvetica text layer: one list of lines per page.

    `encrypt` adds a Standard security handler whose user password is not empty (its /U
    cannot match the empty password), which is what a reader without the password sees."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    kids = []
    number = 4
    for lines in pages:
        ops = " ".join(f"{_pdf_string(line)} Tj T*" for line in lines)
        content = f"BT /F1 16 Tf 20 TL 72 720 Td {ops} ET".encode("latin-1")
        objects[number + 1] = (b"<< /Length %d >>\nstream\n" % len(content) + content
                               + b"\nendstream")
        objects[number] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                           b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
                           % (number + 1))
        kids.append(number)
        number += 2
    objects[2] = (b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids)
                  + b"] /Count %d >>" % len(kids))
    trailer_extra = b""
    if encrypt:
        objects[number] = (b"<< /Filter /Standard /V 1 /R 2 /O <" + b"ab" * 32 + b"> /U <"
                           + b"cd" * 32 + b"> /P -4 >>")
        trailer_extra = b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (number, b"01" * 16, b"01" * 16)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for n in sorted(objects):
        offsets[n] = len(out)
        out += b"%d 0 obj\n" % n + objects[n] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for n in range(1, size):
        out += b"%010d 00000 n \n" % offsets[n]
    out += (b"trailer\n<< /Size %d /Root 1 0 R" % size + trailer_extra
            + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return bytes(out)


def make_image_pdf(sentence: str = OCR_SENTENCE) -> bytes:
    """A scanned page: the sentence drawn large in black on white, no text layer. The
    page is a short strip (8.5 x 2.5 in) so that OCR stays quick in tests."""
    image = Image.new("RGB", (1700, 500), "white")
    draw = ImageDraw.Draw(image)
    draw.text((120, 200), sentence, fill="black", font=ImageFont.load_default(size=56))
    out = io.BytesIO()
    image.save(out, "PDF", resolution=200.0)
    return out.getvalue()


def make_image(lines: list[str], fmt: str = "PNG", size: int = 20) -> bytes:
    """Printed text, one line per entry, in small print (at this size the OCR engine on its
    own runs the words together), as an image file of `fmt`."""
    image = Image.new("RGB", (80 + 18 * max(len(x) for x in lines), 60 + 50 * len(lines)),
                      "white")
    draw = ImageDraw.Draw(image)
    for n, line in enumerate(lines):
        draw.text((40, 30 + 50 * n), line, fill="black", font=ImageFont.load_default(size=size))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def make_small_print_pdf(sentence: str) -> bytes:
    """A scanned page of small print (about 19 px high as the PDF path renders it for OCR)."""
    image = Image.new("RGB", (1700, 300), "white")
    ImageDraw.Draw(image).text((120, 120), sentence, fill="black",
                               font=ImageFont.load_default(size=26))
    out = io.BytesIO()
    image.save(out, "PDF", resolution=200.0)
    return out.getvalue()


def make_pixel_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG of a few dozen bytes declaring a width x height canvas (1-bit grey)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def make_blank_pdf() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 300), "white").save(out, "PDF", resolution=100.0)
    return out.getvalue()


def make_docx(sentence: str = "The quarterly numbers grew steadily.") -> bytes:
    document = docx.Document()
    document.add_heading("Quarterly report", level=1)
    document.add_paragraph(sentence)
    document.add_heading("Details", level=2)
    document.add_paragraph("first item", style="List Bullet")
    document.add_paragraph("second item", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("Region", "Amount"), ("North", "1200"), ("South", "800")]):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


SALES = [  # region, amount, status, closed on, priority flag
    ("north", 1200, "closed", date(2024, 1, 5), True),
    ("south", 800, "won", date(2024, 2, 6), False),
    ("east", 1500, "open", date(2024, 3, 7), True),
    ("west", 2500, "won", date(2024, 4, 8), False),
    ("central", 999, "closed", date(2024, 5, 9), True),
]


def make_xlsx(sentence: str = "Spreadsheet marker row") -> bytes:
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Deals"
    first.append(["region", "amount", "status", "closed_on", "priority", "note"])
    for region, amount, status, closed, flag in SALES[:3]:
        first.append([region, amount, status, datetime(closed.year, closed.month, closed.day),
                      flag, "deal ledger"])
    second = workbook.create_sheet("More deals")
    second.append(["region", "amount", "status", "closed_on", "priority", "note"])
    for region, amount, status, closed, flag in SALES[3:]:
        second.append([region, amount, status, datetime(closed.year, closed.month, closed.day),
                       flag, "deal ledger"])
    second.append(["marker", 1, "open", datetime(2024, 6, 1), False, sentence])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def make_pptx(sentence: str = "Revenue doubled in the northern region.") -> bytes:
    deck = pptx.Presentation()
    for title, bullets in (("Company overview", ["We build boats", "Founded 1990"]),
                           ("Results", [sentence, "Costs stayed flat"])):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for line in bullets[1:]:
            body.add_paragraph().text = line
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def make_rtf(sentence: str = "The violet kite flies over the harbour.") -> bytes:
    return ("{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Times New Roman;}}\n"
            "\\f0\\fs24 {\\b Meeting notes}\\par\n" + sentence + "\\par\n"
            "Caf\\'e9 au lait for everyone.\\par\n}").encode("ascii")


def make_html(sentence: str = "Lanterns glow along the canal at dusk.") -> bytes:
    return f"""<!DOCTYPE html><html><head><title>Travel guide</title>
<style>body {{ color: red }}</style><script>var hidden = "never indexed";</script></head>
<body><h1>Travel guide</h1><p>{sentence}</p><h2>Packing list</h2>
<ul><li>passport</li><li>umbrella<ul><li>small one</li></ul></li></ul>
<ol><li>book hotel</li><li>buy tickets</li></ol>
<table><tr><th>City</th><th>Nights</th></tr><tr><td>Venice</td><td>3</td></tr></table>
</body></html>""".encode()


def make_xml(sentence: str = "Copper kettles whistle in the morning.") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<catalog xmlns="urn:example"><book id="b1"><title>Kitchen tales</title>
<summary>{sentence}</summary></book><book id="b2"><title>Second</title></book></catalog>
""".encode()


def make_yaml(sentence: str = "Glaciers carve valleys slowly.") -> bytes:
    return f"""service: geology
description: {sentence}
owners:
  - name: Ada
    since: 2021-03-04
limits: {{cpu: 2, memory: 4Gi}}
""".encode()


def make_code(sentence: str = "Compute the fibonacci numbers quickly") -> bytes:
    return f'''# {sentence}
def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
'''.encode()


def make_csv(rows: list[tuple[Any, ...]] | None = None, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["region", "amount", "status", "closed_on", "priority", "note"])
    for region, amount, status, closed, flag in rows or SALES:
        writer.writerow([region, amount, status, closed.isoformat(), "yes" if flag else "no",
                         "sales ledger"])
    return out.getvalue().encode()


def sales_objects(note: str = "journal ledger") -> list[dict[str, Any]]:
    return [{"region": r, "amount": a, "status": s, "closed_on": c.isoformat(), "priority": f,
             "note": note} for r, a, s, c, f in SALES]


def make_json_array() -> bytes:
    return json.dumps(sales_objects()).encode()


def make_jsonl() -> bytes:
    return "\n".join(json.dumps(o) for o in sales_objects()).encode() + b"\n"
