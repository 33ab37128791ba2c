"""Extractors over real files of every format (built by tests/support/files.py)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from dataloft.ingest.extract import (
    REGISTRY,
    ExtractionError,
    Row,
    Section,
    choose,
    content_type_for,
    extract,
    infer_schema,
    register,
    table_schemas,
)
from tests.support.files import (  # noqa: E402
    OCR_SENTENCE,
    SALES,
    make_blank_pdf,
    make_code,
    make_csv,
    make_docx,
    make_html,
    make_image,
    make_image_pdf,
    make_json_array,
    make_jsonl,
    make_pixel_bomb,
    make_pptx,
    make_rtf,
    make_small_print_pdf,
    make_text_pdf,
    make_xlsx,
    make_xml,
    make_yaml,
)
from tests.support.scaling import growth  # noqa: E402

# --- helpers -------------------------------------------------------------------------


def _text(items: list[Section | Row]) -> str:
    return "\n\n".join(i.text for i in items if isinstance(i, Section))


def _rows(items: list[Section | Row]) -> list[Row]:
    return [i for i in items if isinstance(i, Row)]


def _fails(code: str | set[str], name: str | None, data: bytes, ctype: str | None = None
           ) -> ExtractionError:
    with pytest.raises(ExtractionError) as info:
        extract(name, ctype, data)
    codes = {code} if isinstance(code, str) else code
    assert info.value.code in codes, (info.value.code, info.value.message)
    assert info.value.message
    return info.value


# --- documents -----------------------------------------------------------------------


def test_text_and_markdown() -> None:
    fmt, items = extract("notes.txt", "text/plain", b"Plain words\r\nsecond line")
    assert fmt == "text" and _text(items) == "Plain words\nsecond line"
    fmt, items = extract("readme.md", None, b"# Title\n\nBody text\n\n## Part\n\n- a\n- b\n")
    assert fmt == "markdown" and "# Title" in _text(items) and "## Part" in _text(items)


def test_docx_keeps_headings_lists_and_tables() -> None:
    fmt, items = extract("report.docx", None, make_docx())
    text = _text(items)
    assert fmt == "docx"
    assert "# Quarterly report" in text and "## Details" in text
    assert "- first item\n- second item" in text
    assert "| Region | Amount |\n| --- | --- |\n| North | 1200 |" in text
    assert text.index("# Quarterly report") < text.index("## Details") < text.index("| Region")


def test_pptx_one_section_per_slide() -> None:
    fmt, items = extract("deck.pptx", None, make_pptx())
    assert fmt == "pptx"
    sections = [i for i in items if isinstance(i, Section)]
    assert [s.meta["slide"] for s in sections] == [1, 2]
    assert sections[0].text.startswith("# Company overview")
    assert "- We build boats" in sections[0].text
    assert "Revenue doubled in the northern region." in sections[1].text


def test_text_pdf_one_section_per_page() -> None:
    data = make_text_pdf([["First page sentence about owls."], ["Second page about bears."]])
    fmt, items = extract("paper.pdf", "application/pdf", data)
    assert fmt == "pdf"
    assert [(s.meta["page"], s.text) for s in items if isinstance(s, Section)] == [
        (1, "First page sentence about owls."), (2, "Second page about bears.")]


def test_image_only_pdf_goes_through_ocr() -> None:
    fmt, items = extract("scan.pdf", None, make_image_pdf())
    assert fmt == "pdf"
    (section,) = items
    assert isinstance(section, Section)
    assert section.meta == {"page": 1, "ocr": True}
    assert OCR_SENTENCE.lower() in " ".join(section.text.split()).lower()


def test_scanned_pdf_ocr_keeps_the_spaces_between_words() -> None:
    # Small print: the OCR engine alone reads this line as "Invoicetotalis4321dueonreceipt".
    _, items = extract("scan.pdf", None, make_small_print_pdf("Invoice total is 4321 due soon"))
    (section,) = items
    assert isinstance(section, Section)
    assert section.text == "Invoice total is 4321 due soon"


def test_a_multi_page_tiff_gives_a_section_per_page() -> None:
    from PIL import Image

    pages = [Image.open(io.BytesIO(make_image([line], "PNG"))) for line in
             ("First page of the fax", "Second page of the fax")]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:])
    fmt, items = extract("fax.tif", None, out.getvalue())
    assert fmt == "image"
    assert [(s.meta, s.text) for s in items if isinstance(s, Section)] == [
        ({"image": "fax.tif", "page": 1, "ocr": True}, "First page of the fax"),
        ({"image": "fax.tif", "page": 2, "ocr": True}, "Second page of the fax")]


def test_image_formats_are_claimed_by_their_bytes() -> None:
    from dataloft.ingest.extract.image import is_image

    for fmt in ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"):
        data = make_image(["x"], fmt)
        assert is_image(data) and choose("notes.txt", "text/plain", data).name == "image", fmt
    assert not is_image(b"BMW service notes, plain text, nothing binary at all")
    assert choose("bmw.txt", None, b"BMW service notes, plain text").name == "text"


def test_a_pixel_bomb_is_refused_before_decoding() -> None:
    bomb = make_pixel_bomb()
    assert len(bomb) < 200
    _fails("resource_limit", "bomb.png", bomb)


def test_ocr_reading_order_is_lines_top_to_bottom_boxes_left_to_right() -> None:
    from dataloft.ingest.extract.ocr import _Box, _reading_order

    boxes = [_Box(300, 12, 30, "right"), _Box(10, 50, 70, "second line"),
             _Box(10, 10, 32, "left"), _Box(150, 14, 31, "middle")]
    assert _reading_order(boxes) == ["left middle right", "second line"]


def test_blank_scanned_pdf_is_empty_content() -> None:
    _fails("empty_content", "blank.pdf", make_blank_pdf())


def test_rtf_html_xml_yaml_code() -> None:
    fmt, items = extract("notes.rtf", None, make_rtf())
    assert fmt == "rtf"
    assert "The violet kite flies over the harbour." in _text(items)
    assert "Café au lait" in _text(items) and "\\par" not in _text(items)

    fmt, items = extract("guide.html", None, make_html())
    text = _text(items)
    assert fmt == "html" and items[0].meta == {"title": "Travel guide"}
    assert "# Travel guide" in text and "## Packing list" in text
    assert "- passport\n- umbrella\n  - small one" in text
    assert "1. book hotel\n2. buy tickets" in text
    assert "| City | Nights |\n| --- | --- |\n| Venice | 3 |" in text
    assert "never indexed" not in text and "color" not in text

    fmt, items = extract("catalog.xml", None, make_xml())
    text = _text(items)
    assert fmt == "xml"
    assert "book (id=b1)" in text and "summary: Copper kettles whistle in the morning." in text

    fmt, items = extract("config.yaml", None, make_yaml())
    text = _text(items)
    assert fmt == "yaml"
    assert "description: Glaciers carve valleys slowly." in text
    assert "since: 2021-03-04" in text and "cpu: 2" in text

    fmt, items = extract("fib.py", None, make_code())
    (section,) = items
    assert fmt == "code" and isinstance(section, Section)
    assert section.meta == {"language": "python"} and section.verbatim
    assert section.text == make_code().decode()


@pytest.mark.parametrize(("name", "language"), [
    ("main.go", "go"), ("lib.rs", "rust"), ("App.tsx", "tsx"), ("x.kt", "kotlin"),
    ("q.sql", "sql"), ("run.sh", "shell"), ("Dockerfile", "dockerfile"), ("a.h", "c"),
])
def test_code_languages(name: str, language: str) -> None:
    fmt, items = extract(name, None, b"some code here\n")
    assert fmt == "code" and items[0].meta == {"language": language}


# --- tables --------------------------------------------------------------------------


def test_csv_rows_are_typed_per_column() -> None:
    fmt, items = extract("sales.csv", "text/csv", make_csv())
    rows = _rows(items)
    assert fmt == "csv" and len(rows) == len(SALES)
    assert rows[0].fields == {"region": "north", "amount": 1200, "status": "closed",
                              "closed_on": "2024-01-05", "priority": True, "note": "sales ledger"}
    assert rows[1].fields["priority"] is False
    assert rows[0].meta == {"table": "sales", "row": 1}
    assert infer_schema(items) == {"region": "string", "amount": "integer", "status": "string",
                                   "closed_on": "date", "priority": "boolean", "note": "string"}


def test_tsv_and_other_delimiters() -> None:
    for delimiter, name in (("\t", "sales.tsv"), (";", "sales.csv"), ("|", "data.txt.csv")):
        fmt, items = extract(name, None, make_csv(delimiter=delimiter))
        rows = _rows(items)
        assert fmt == "csv" and len(rows) == len(SALES), delimiter
        assert rows[2].fields["amount"] == 1500 and rows[2].fields["region"] == "east"


def test_csv_hard_cases() -> None:
    text = ('\ufeffid;name;;name;price;zip;when;note\n'
            '1;"Smith; John";x;dup;1.5;02134;2024-01-05T10:30:00Z;"line one\nline two"\n'
            '2;Ann;;;2;00501;2024-01-06;\n'
            '3;Bob;y;z;;12345;;extra;spill\n'
            ';;;;;;;\n')
    for encoding in ("utf-8", "utf-16", "utf-16-le"):
        data = text.encode(encoding) if encoding != "utf-16-le" else text[1:].encode(encoding)
        rows = _rows(extract("hard.csv", None, data)[1])
        assert len(rows) == 3, encoding
        first, second, third = (r.fields for r in rows)
        assert list(first) == ["id", "name", "column_3", "name_2", "price", "zip", "when", "note"]
        assert first["name"] == "Smith; John" and first["note"] == "line one\nline two"
        assert first["id"] == 1 and first["price"] == 1.5 and second["price"] == 2
        assert first["zip"] == "02134"  # a leading zero is an identifier, not a number
        assert first["when"] == "2024-01-05T10:30:00+00:00" and second["when"] == "2024-01-06"
        assert "price" not in third and "note" not in second  # empty cells are omitted
        assert third["column_9"] == "spill"  # ragged row: the extra cell gets a name
    schema = infer_schema(extract("hard.csv", None, text.encode())[1])
    assert schema["price"] == "number" and schema["when"] == "datetime"
    assert schema["zip"] == "string" and schema["id"] == "integer"


def test_csv_latin1_and_mixed_columns() -> None:
    data = "city,score\nZürich,10\nMálaga,n/a\n".encode("latin-1")
    rows = _rows(extract("cities.csv", None, data)[1])
    assert rows[0].fields == {"city": "Zürich", "score": "10"}  # one "n/a": a string column
    assert rows[1].fields["city"] == "Málaga"


def _csv(rows: int) -> bytes:
    lines = ["id,amount,flag,day,label"]
    lines += [f"{i},{i * 1.5},{'true' if i % 2 else 'false'},2024-01-{i % 28 + 1:02d},row {i}"
              for i in range(rows)]
    return "\n".join(lines).encode()


def test_csv_100k_rows_streams_in_linear_time() -> None:
    small, large = _csv(10_000), _csv(100_000)
    rows = _rows(extract("big.csv", None, large)[1])
    assert len(rows) == 100_000 and rows[-1].fields["id"] == 99_999
    assert rows[3].fields == {"id": 3, "amount": 4.5, "flag": True, "day": "2024-01-04",
                              "label": "row 3"}
    # Ten times the rows: about 10x the CPU when linear, 100x when quadratic.
    ratio = growth(lambda: extract("s.csv", None, small), lambda: extract("l.csv", None, large),
                   repeats=2)
    assert ratio < 30, ratio


def test_xlsx_every_sheet_typed() -> None:
    fmt, items = extract("deals.xlsx", None, make_xlsx())
    rows = _rows(items)
    assert fmt == "xlsx" and len(rows) == len(SALES) + 1
    assert [r.meta["sheet"] for r in rows] == ["Deals"] * 3 + ["More deals"] * 3
    assert rows[0].meta == {"table": "Deals", "sheet": "Deals", "row": 1}
    assert rows[0].fields == {"region": "north", "amount": 1200, "status": "closed",
                              "closed_on": "2024-01-05", "priority": True, "note": "deal ledger"}
    assert table_schemas(items) == {
        sheet: {"region": "string", "amount": "integer", "status": "string",
                "closed_on": "date", "priority": "boolean", "note": "string"}
        for sheet in ("Deals", "More deals")}


def test_json_array_and_jsonl_rows() -> None:
    for name, data in (("deals.json", make_json_array()), ("deals.jsonl", make_jsonl())):
        fmt, items = extract(name, "application/octet-stream", data)
        rows = _rows(items)
        assert fmt == name.split(".")[1] and len(rows) == len(SALES)
        assert rows[0].fields["amount"] == 1200 and rows[0].fields["priority"] is True
        assert rows[0].meta == {"table": "deals", "row": 1}
        assert infer_schema(items)["closed_on"] == "date"


def test_json_typed_sources_keep_their_types() -> None:
    data = json.dumps([{"id": "007", "n": 1, "v": {"a": 1}}, {"id": "12", "n": 2.5},
                       {"id": "x", "n": None, "mixed": 1}, {"mixed": "one"}]).encode()
    rows = _rows(extract("t.json", None, data)[1])
    assert rows[0].fields == {"id": "007", "n": 1, "v": {"a": 1}}
    assert rows[1].fields == {"id": "12", "n": 2.5}  # quoted numbers stay strings
    assert rows[2].fields == {"id": "x", "mixed": "1"} and rows[3].fields == {"mixed": "one"}
    assert infer_schema(rows) == {"id": "string", "n": "number", "v": "json", "mixed": "string"}


def test_json_document_becomes_outline() -> None:
    data = json.dumps({"name": "demo", "tags": ["a", "b"], "nested": {"deep": True}}).encode()
    fmt, items = extract("doc.json", None, data)
    assert fmt == "json"
    assert _text(items) == "name: demo\n\ntags:\n  - a\n  - b\n\nnested:\n  deep: true"


def test_yaml_list_of_mappings_is_rows() -> None:
    data = b"- {name: a, size: 3, on: 2024-01-02}\n- {name: b, size: 4.5, on: 2024-02-03}\n"
    rows = _rows(extract("list.yml", None, data)[1])
    assert [r.fields for r in rows] == [{"name": "a", "size": 3, "on": "2024-01-02"},
                                        {"name": "b", "size": 4.5, "on": "2024-02-03"}]


# --- choosing the format -------------------------------------------------------------


def test_content_decides_over_name_and_content_type() -> None:
    pdf = make_text_pdf([["Hidden pdf text."]])
    assert extract("notes.txt", "text/plain", pdf)[0] == "pdf"
    assert extract("upload.bin", "application/octet-stream", make_docx())[0] == "docx"
    assert extract(None, None, make_xlsx())[0] == "xlsx"
    assert extract("slides", "application/pdf", make_pptx())[0] == "pptx"
    assert extract("x.txt", None, make_rtf())[0] == "rtf"
    assert extract("page.txt", "text/plain", make_html())[0] == "html"
    assert extract("data.json", None, make_xml())[0] == "xml"
    assert extract("fake.pdf", "application/pdf", b"just text, not a pdf")[0] == "text"
    assert extract(None, "text/csv", make_csv())[0] == "csv"
    assert extract(None, None, make_json_array())[0] == "json"
    assert extract(None, None, make_jsonl())[0] == "jsonl"
    assert extract(None, None, b"[INFO] a log line\n")[0] == "text"


def test_reported_content_type_follows_the_detected_format() -> None:
    assert content_type_for("pdf", "text/plain") == "application/pdf"
    assert content_type_for("code", "text/x-python; charset=utf-8") == "text/x-python"
    assert content_type_for("csv", "text/tab-separated-values") == "text/tab-separated-values"
    assert content_type_for("docx", None) == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document")


def test_typed_failures() -> None:
    _fails("empty_content", "empty.txt", b"")
    _fails("empty_content", "blank.txt", b"  \n\t\n")
    _fails({"corrupted_file", "unsupported_format"}, "junk.txt", bytes(range(256)) * 40)
    _fails("corrupted_file", "report.docx", b"PK\x03\x04" + b"\x00garbage" * 100)
    _fails("corrupted_file", "photo.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    _fails("unsupported_format", "archive.zip", _zip({"a.txt": b"hello"}))
    _fails("corrupted_file", "broken.pdf", b"%PDF-1.7\n" + b"\x00\xff garbage" * 200)
    _fails("corrupted_file", "bad.json", b'{"a": ')
    _fails("corrupted_file", "bad.jsonl", b'{"a": 1}\n{"a": \n')
    _fails("corrupted_file", "bad.yaml", b"a: [1, 2\n")
    _fails("corrupted_file", "bad.xml", b"<?xml version='1.0'?><a><b></a>")
    _fails("corrupted_file", "truncated.xlsx", make_xlsx()[:2000])
    _fails("corrupted_file", "truncated.docx", make_docx()[:3000])


def test_encrypted_files() -> None:
    _fails("encrypted", "secret.pdf", make_text_pdf([["classified"]], encrypt=True))
    # Password-protected OOXML is an OLE2 container holding an EncryptedPackage stream.
    ole = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
           + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 1000)
    _fails("encrypted", "secret.docx", ole)
    _fails("unsupported_format", "old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 900)


def test_hostile_markup_and_aliases() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>')
    _fails("unsupported_format", "bomb.xml", bomb)
    external = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b"<r>&x;</r>")
    _fails("unsupported_format", "xxe.xml", external)
    aliases = "l0: &l0 [" + ",".join(["x"] * 10) + "]\n"  # 10**9 values once expanded
    for level in range(1, 9):
        aliases += f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * 10) + "]\n"
    _fails("corrupted_file", "bomb.yaml", aliases.encode())
    deep = ("<div>" * 5000 + "deep text" + "</div>" * 5000).encode()
    assert "deep text" in _text(extract("deep.html", None, deep)[1])
    _fails("corrupted_file", "deep.json", b"[" * 100_000 + b"]" * 100_000)


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_zip_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataloft.ingest.extract import sniff

    monkeypatch.setattr(sniff, "MAX_UNZIPPED_BYTES", 1 << 20)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", b"<Types/>")
        zf.writestr("word/document.xml", b"<w/>")
        zf.writestr("word/huge.bin", b"\x00" * (2 << 20))  # compresses to a few KB
    error = _fails("corrupted_file", "bomb.docx", out.getvalue())
    assert "limit" in error.message


def test_library_exceptions_never_escape() -> None:
    def explode(data: bytes, name: str) -> Any:
        raise KeyError("boom")
        yield  # pragma: no cover

    register("exploding", (".boom",), ())(explode)
    try:
        assert choose("x.boom", None, b"text").name == "exploding"
        error = _fails("corrupted_file", "x.boom", b"text")
        assert "KeyError" in error.message
    finally:
        REGISTRY[:] = [r for r in REGISTRY if r.name != "exploding"]


def test_registry_is_public_and_plugins_register_the_same_way() -> None:
    names = [r.name for r in REGISTRY]
    for expected in ("pdf", "docx", "xlsx", "pptx", "rtf", "html", "xml", "json", "jsonl",
                     "yaml", "csv", "text", "markdown", "code"):
        assert expected in names

    @register("shout", (".shout",), ("text/x-shout",))
    def shout(data: bytes, _name: str) -> Any:
        yield Section(data.decode().upper(), {"plugin": True})

    try:
        assert extract("a.shout", None, b"hey") == ("shout", [Section("HEY", {"plugin": True})])
    finally:
        REGISTRY[:] = [r for r in REGISTRY if r.name != "shout"]
