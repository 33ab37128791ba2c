"""Acceptance: hostile files fail their own sync, typed and bounded, and nothing else.

Zip bombs in DOCX/XLSX/PPTX, XML entity expansion and external entities, PDFs with loops,
huge streams or encryption, 200k-deep JSON, random bytes under a document's name: each sync
ends `sync.failed` with a typed reason (or `sync.completed`, for junk that is valid text)
within a bound, while /healthz keeps answering 200; afterwards a normal file syncs and is
searchable, and no record or event ever holds /etc/passwd.

The builders below make every file in memory, a few MB at most: a bomb's repeated part is
compressed once and its compressed block repeated (see `deflate_bomb`).
"""

from __future__ import annotations

import functools
import io
import json
import os
import random
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest

from tests.support.api import wait_for_sync
from tests.support.live import LiveServer


def _sync_uses_the_sandbox() -> bool:
    from dataloft.ingest import confined
    from dataloft.sync import tasks

    return getattr(tasks, "confined", None) is confined


pytestmark = [
    pytest.mark.slow,
    # In-process extraction fails this by design (a 2 GiB PDF stream stalls the queue).
    pytest.mark.skipif(not _sync_uses_the_sandbox(),
                       reason="sync/tasks.py does not extract through ingest/confined.py yet"),
]

BOMB_BYTES = 2 << 30  # inflated size of every bomb: twice the default memory limit
CHUNK = 16 << 20
EXTRACT_TIMEOUT_S = 20
TOTAL_BOUND_S = 150.0
TYPED = {"unsupported_format", "corrupted_file", "empty_content", "encrypted",
         "processing_timeout", "resource_limit", "storage_limit"}
LIMITS = {"processing_timeout", "resource_limit", "storage_limit"}


# ---- builders ----------------------------------------------------------------------------

def deflate_bomb(prefix: bytes, filler: bytes, count: int, suffix: bytes,
                 checksum: Callable[..., int] = zlib.crc32) -> tuple[bytes, int, int]:
    """Raw deflate of prefix + filler * count + suffix, with its checksum and size.

    Each piece ends with a full flush (no back-references across it), so the compressed
    filler is one block that can simply be repeated: compressing costs O(len(filler)); only
    the checksum walks the whole inflated size (about a second per GiB)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(filler) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.compress(suffix) + c.flush()
    value = checksum(prefix)
    for _ in range(count):
        value = checksum(filler, value)
    value = checksum(suffix, value)
    return head + block * count + tail, value, len(prefix) + len(filler) * count + len(suffix)


def zip_archive(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of already-deflated members (name, raw deflate, crc32, inflated size)."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, raw, crc, size in members:
        offset = out.tell()
        fname = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(raw),
                              size, len(fname), 0) + fname + raw)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21,
                                  crc, len(raw), size, len(fname), 0, 0, 0, 0, 0, offset)
                      + fname)
    start = out.tell()
    out.write(central.getvalue())
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members),
                          len(central.getvalue()), start, 0))
    return out.getvalue()


def _deflated(data: bytes) -> tuple[bytes, int, int]:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(), zlib.crc32(data), len(data)


def office_template(kind: str) -> bytes:
    """A genuine, tiny DOCX/XLSX/PPTX made by the libraries that read them."""
    buf = io.BytesIO()
    if kind == "docx":
        import docx

        document = docx.Document()
        document.add_paragraph("template")
        document.save(buf)
    elif kind == "xlsx":
        import openpyxl  # type: ignore[import-untyped]

        workbook = openpyxl.Workbook()
        workbook.active["A1"] = "template"
        workbook.save(buf)
    else:
        import pptx

        deck = pptx.Presentation()
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = "template"
        deck.save(buf)
    return buf.getvalue()


# The part that carries the content, and where inside it to put the bomb.
_BOMB_SITES = {
    "docx": ("word/document.xml", b"template</w:t>", b"lol "),
    "pptx": ("ppt/slides/slide1.xml", b"template</a:t>", b"lol "),
    "xlsx": ("xl/worksheets/sheet1.xml", b"</sheetData>",
             b'<row><c t="inlineStr"><is><t>lol</t></is></c></row>'),
}


def repackage(kind: str, replace: dict[str, tuple[bytes, int, int]]) -> bytes:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(office_template(kind))) as zf:
        return zip_archive([(name, *replace.get(name, _deflated(zf.read(name))))
                            for name in zf.namelist()])


@functools.cache
def office_bomb(kind: str, inflated: int = BOMB_BYTES) -> bytes:
    """A valid DOCX/XLSX/PPTX whose main XML part inflates to `inflated` bytes."""
    import zipfile

    part, marker, unit = _BOMB_SITES[kind]
    with zipfile.ZipFile(io.BytesIO(office_template(kind))) as zf:
        xml = zf.read(part)
    at = xml.index(marker)
    filler = unit * (CHUNK // len(unit))
    return repackage(kind, {part: deflate_bomb(xml[:at], filler, inflated // len(filler),
                                               xml[at:])})


def docx_with_external_entity() -> bytes:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(office_template("docx"))) as zf:
        xml = zf.read("word/document.xml")
    decl_end = xml.index(b"?>") + 2
    xml = (xml[:decl_end] + b'\n<!DOCTYPE w:document [<!ENTITY xxe SYSTEM '
           b'"file:///etc/passwd">]>' + xml[decl_end:]).replace(b"template", b"&xxe;")
    return repackage("docx", {"word/document.xml": _deflated(xml)})


BILLION_LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
                  + b"".join(b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%s;" % (
                      b"" if i == 1 else b"%d" % (i - 1))) * 10) for i in range(1, 10))
                  + b"]>\n<lolz>&lol9;</lolz>\n")
XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
       b"<data>&xxe;</data>\n")
XXE_PARAMETER = (b'<?xml version="1.0"?>\n<!DOCTYPE data [<!ENTITY % ext SYSTEM '
                 b'"file:///etc/passwd"> %ext;]>\n<data>x</data>\n')


def pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF with a correct xref table; object i+1 is objects[i], the catalog is 1 0 R."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, trailer, xref)
    return bytes(out)


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n%s\nendstream" % (len(data), extra, data)


def pdf_page_tree_loop() -> bytes:
    """Pages 2 -> Pages 3 -> Pages 2: a page tree that never reaches a page."""
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>"])


def pdf_xobject_loop() -> bytes:
    """A form XObject that draws itself: infinite recursion for a naive interpreter."""
    draw = b"BT /F1 12 Tf 72 720 Td (loop page) Tj ET /X1 Do"
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources 5 0 R "
                b"/Contents 4 0 R >>",
                _stream(draw),
                b"<< /Font << /F1 6 0 R >> /XObject << /X1 7 0 R >> >>",
                _FONT,
                _stream(b"/X1 Do", b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] "
                                   b"/Resources 5 0 R ")])


@functools.cache
def pdf_huge_stream(inflated: int = BOMB_BYTES) -> bytes:
    """A page whose Flate content stream inflates to `inflated` bytes of drawing operators."""
    filler = b"0 0 m " * (CHUNK // 6)
    raw, adler, _ = deflate_bomb(b"BT /F1 12 Tf 72 720 Td (huge) Tj ET\n", filler,
                                 inflated // len(filler), b"\n", checksum=zlib.adler32)
    body = b"\x78\xda" + raw + struct.pack(">I", adler)  # the zlib wrapper /FlateDecode wants
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
                _stream(body, b"/Filter /FlateDecode "), _FONT])


def pdf_encrypted() -> bytes:
    """Standard security handler, RC4-128, with an owner/user key no password opens."""
    rnd = random.Random(7)
    key = rnd.randbytes(32).hex().encode()
    user = rnd.randbytes(32).hex().encode()
    ident = rnd.randbytes(16).hex().encode()
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
               b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
               _stream(rnd.randbytes(64)), _FONT,
               b"<< /Filter /Standard /V 2 /R 3 /Length 128 /P -3904 /O <%s> /U <%s> >>"
               % (key, user)],
              trailer=b"/Encrypt 6 0 R /ID [<%s> <%s>] " % (ident, ident))


def blank_scan_pdf() -> bytes:
    """An image-only PDF of a blank page: OCR finds nothing."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (850, 1100), "white").save(buf, "PDF", resolution=100)
    return buf.getvalue()


def deep_json(depth: int = 200_000) -> bytes:
    return b"[" * depth + b"]" * depth


def binary_junk(size: int = 256 << 10, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def text_junk(size: int = 256 << 10, seed: int = 2) -> bytes:
    """Random bytes with no NUL: garbage, but decodable (latin-1) text."""
    return bytes(b or 0x20 for b in random.Random(seed).randbytes(size))


def truncated_docx() -> bytes:
    whole = office_template("docx")
    return whole[: len(whole) // 2]


# ---- the acceptance test -----------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str
    content: bytes
    content_type: str
    reasons: frozenset[str]  # acceptable sync.failed reasons once the format is supported
    may_complete: bool = False  # valid text, or a document an extractor may read safely


def cases() -> list[Case]:
    def case(name: str, content: bytes, ctype: str, reasons: set[str],
             may_complete: bool = False) -> Case:
        return Case(name, content, ctype, frozenset(reasons), may_complete)

    zip_failures = {"corrupted_file"} | LIMITS
    xml_refusals = {"corrupted_file", "unsupported_format", "empty_content"}
    docx, xlsx, pptx = (f"application/vnd.openxmlformats-officedocument.{t}" for t in (
        "wordprocessingml.document", "spreadsheetml.sheet", "presentationml.presentation"))
    return [
        case("bomb.docx", office_bomb("docx"), docx, zip_failures),
        case("bomb.xlsx", office_bomb("xlsx"), xlsx, zip_failures),
        case("bomb.pptx", office_bomb("pptx"), pptx, zip_failures),
        # Refusing any DTD outright (unsupported_format) is as good as failing on it.
        case("laughs.xml", BILLION_LAUGHS, "application/xml", xml_refusals | LIMITS),
        case("xxe.xml", XXE, "application/xml", xml_refusals, may_complete=True),
        case("xxe-parameter.xml", XXE_PARAMETER, "application/xml", xml_refusals,
             may_complete=True),
        case("xxe.docx", docx_with_external_entity(), docx,
             {"corrupted_file", "empty_content"}, may_complete=True),
        case("loop-pages.pdf", pdf_page_tree_loop(), "application/pdf",
             {"corrupted_file", "empty_content"} | LIMITS),
        case("loop-xobject.pdf", pdf_xobject_loop(), "application/pdf",
             {"corrupted_file", "empty_content"} | LIMITS, may_complete=True),
        case("huge-stream.pdf", pdf_huge_stream(), "application/pdf",
             {"corrupted_file", "empty_content"} | LIMITS),
        case("encrypted.pdf", pdf_encrypted(), "application/pdf",
             {"encrypted", "corrupted_file", "unsupported_format"}),
        case("random.pdf", binary_junk(seed=3), "application/pdf",
             {"corrupted_file", "unsupported_format"}),
        case("blank-scan.pdf", blank_scan_pdf(), "application/pdf", {"empty_content"}),
        case("deep.json", deep_json(), "application/json", {"corrupted_file"} | LIMITS),
        case("junk.txt", binary_junk(), "text/plain", {"corrupted_file", "unsupported_format"}),
        case("junk-text.txt", text_junk(), "text/plain", {"corrupted_file"}, may_complete=True),
        case("truncated.docx", truncated_docx(), docx, {"corrupted_file"}),
    ]


def registered(filename: str) -> bool:
    """Whether an extractor claims this extension yet (the extractors grow independently)."""
    from dataloft.ingest import extract

    ext = PurePosixPath(filename).suffix.lower()
    return any(ext in reg.extensions for reg in extract.REGISTRY)


class Prober:
    """Hits /healthz every 200 ms on its own connection; keeps every answer."""

    def __init__(self, url: str):
        self.url = url
        self.answers: list[tuple[float, int | str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(0.2):
                started = time.monotonic()
                try:
                    status: int | str = client.get(f"{self.url}/healthz").status_code
                except httpx.HTTPError as exc:
                    status = f"{type(exc).__name__}: {exc}"
                self.answers.append((started, status, time.monotonic() - started))

    def failures(self) -> list[tuple[float, int | str, float]]:
        return [a for a in self.answers if a[1] != 200]


@pytest.fixture
def hostile_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(data_dir=tmp_path / "data", env_extra={
        "DATALOFT_SYNC_COOLDOWN_SECONDS": "0", "DATALOFT_JOB_POLL_SECONDS": "0.05",
        "DATALOFT_EXTRACT_TIMEOUT_SECONDS": str(EXTRACT_TIMEOUT_S)})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _all(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    """Every item of a listing, streamed as JSONL."""
    with client.stream("GET", path, headers={"Accept": "application/jsonl"}) as r:
        assert r.status_code == 200, r.read()
        return [json.loads(line)["data"] for line in r.iter_lines() if line.strip()]


def _await_all(client: httpx.Client, dataset_id: str, names: dict[str, str], after_ms: int,
               started: float) -> dict[str, tuple[dict[str, Any], float]]:
    """The terminal event of every file (by case name) and when it was seen."""
    outcomes: dict[str, tuple[dict[str, Any], float]] = {}
    while len(outcomes) < len(names) and time.monotonic() - started < TOTAL_BOUND_S:
        for event in _all(client, f"/api/v1/dataset/{dataset_id}/event/list"):
            name = names.get(event["fileId"])
            if (name and name not in outcomes and event["createdAt"] >= after_ms
                    and event["type"] in ("sync.completed", "sync.failed")):
                outcomes[name] = event, time.monotonic() - started
        time.sleep(0.25)
    return outcomes


def _upload(client: httpx.Client, case: Case) -> str:
    file_id = str(client.post("/api/v1/file/create", json={"name": case.name}).json()["id"])
    # Multipart: a raw application/json body would be read as an upload instruction.
    r = client.post(f"/api/v1/file/{file_id}/upload",
                    files={"file": (case.name, case.content, case.content_type)})
    assert r.status_code == 200, (case.name, r.status_code, r.text)
    return file_id


def test_hostile_files_fail_typed_and_bounded_while_the_server_answers(
        hostile_server: LiveServer) -> None:
    corpus = cases()
    with hostile_server.client() as client, Prober(hostile_server.url) as prober:
        ds = str(client.post("/api/v1/dataset/create", json={"name": "hostile"}).json()["id"])
        ids = {case.name: _upload(client, case) for case in corpus}
        started_ms = int(time.time() * 1000) - 1
        started = time.monotonic()
        # Everything queued at once: one file's failure must not hold up the rest.
        for case in corpus:
            fid = ids[case.name]
            for action, body in (("attach", {"type": "source"}), ("sync", {})):
                r = client.post(f"/api/v1/dataset/{ds}/file/{fid}/{action}", json=body)
                assert r.status_code == 200, (case.name, action, r.text)
        outcomes = _await_all(client, ds, {ids[c.name]: c.name for c in corpus}, started_ms,
                              started)
        elapsed = time.monotonic() - started
        pending = sorted(set(ids) - set(outcomes))
        assert not pending, (f"no outcome within {TOTAL_BOUND_S:.0f} s for {pending}; "
                             f"server log:\n{hostile_server.log()[-3000:]}")

        wrong = []
        for case in corpus:
            event, _ = outcomes[case.name]
            reasons, may_complete = set(case.reasons), case.may_complete
            if not registered(case.name):  # text fallback, or refused: both are fine
                reasons.add("unsupported_format")
                may_complete = True
            reason = event["data"].get("reason")
            ok = (event["type"] == "sync.completed" and may_complete) or (
                event["type"] == "sync.failed" and reason in reasons and reason in TYPED
                and event["data"].get("message"))
            if not ok:
                wrong.append((case.name, event["type"], reason, event["data"].get("message")))
        summary = {name: (event["type"], event["data"].get("reason"), round(seconds, 1))
                   for name, (event, seconds) in outcomes.items()}
        print("\n".join(f"{n:20} {t:15} {r or '':20} {s:6.1f} s"
                        for n, (t, r, s) in summary.items()))
        assert not wrong, (wrong, summary)
        assert elapsed < TOTAL_BOUND_S, summary

        # Whatever completed holds its own text, not an entity expansion or a secret.
        records = _all(client, f"/api/v1/dataset/{ds}/record/list")
        events = _all(client, f"/api/v1/dataset/{ds}/event/list")
        dump = json.dumps([records, events])
        assert "root:" not in dump and "/bin/bash" not in dump and "nologin" not in dump
        per_file: dict[str, int] = {}
        for record in records:
            key = str(record.get("source") or record.get("meta", {}).get("fileName"))
            per_file[key] = per_file.get(key, 0) + len(json.dumps(record))
        assert max(per_file.values(), default=0) < 4 << 20, per_file

        # The queue, the workers and the extractors are all still fine.
        normal = _upload(client, Case("after.txt", b"A cobalt lighthouse guards the fjord.",
                                      "text/plain", frozenset()))
        for action, body in (("attach", {"type": "source"}), ("sync", {})):
            assert client.post(f"/api/v1/dataset/{ds}/file/{normal}/{action}",
                               json=body).status_code == 200
        done = wait_for_sync(client, ds, normal, timeout=60, after=started_ms)
        assert done["type"] == "sync.completed", done
        hits = client.post(f"/api/v1/dataset/{ds}/search",
                           json={"search": "lighthouse", "mode": "lexical"}).json()
        assert any("cobalt lighthouse" in r["text"] for r in hits["records"]), hits

    assert hostile_server.proc is not None and hostile_server.proc.poll() is None
    assert prober.answers and not prober.failures(), prober.failures()
    slowest = max(a[2] for a in prober.answers)
    assert slowest < 5.0, f"/healthz took {slowest:.1f} s at worst"
    assert "Traceback" not in hostile_server.log(), hostile_server.log()[-4000:]


# ---- big and pathological shapes: bounded memory and time ----------------------------------

GROWTH_LIMIT = 512 << 20  # what the server may grow over idle while syncing (issue #11)
# The default deadline is 600 s; on a 2-core runner shared with other jobs the 1M-row file
# alone has taken ~600 s, so this server gets twice that (still a deadline: it must hold).
SYNC_TIMEOUT_S = 1200


def unclosed_quote_csv() -> bytes:
    """One quoted cell that never closes: the rest of the file (20 MB) is that cell."""
    return b'a,b\n"' + b"x" * (20 << 20) + b"\n1,2\n"


def wide_csv(columns: int = 100_000) -> bytes:
    return (b",".join(b"c%d" % i for i in range(columns)) + b"\n"
            + b",".join(b"%d" % i for i in range(columns)) + b"\n")


def long_csv(rows: int = 1_000_000) -> bytes:
    words = (b"cobalt", b"fjord", b"harbor", b"lumen", b"orchid", b"pylon", b"meadow")
    lines = [b"id,name,amount"]
    lines += [b"%d,%s %s,%d.%02d" % (i, words[i % 7], words[i % 5], i % 9973, i % 100)
              for i in range(rows)]
    return b"\n".join(lines) + b"\n"


def empty_pages_pdf(pages: int = 20_000) -> bytes:
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
                *[b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * pages])


class RssWatch:
    """The server's resident memory: its idle size, then the kernel's high-water mark
    (VmHWM, reset when the watch starts so start-up does not count) and a sampled peak."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def status(self, key: str) -> int:
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        raise AssertionError(f"no {key} for {self.pid}")

    def __enter__(self) -> RssWatch:
        self.idle = self.status("VmRSS")
        try:  # "5" resets VmHWM to the current RSS (proc(5), clear_refs)
            with open(f"/proc/{self.pid}/clear_refs", "w") as fh:
                fh.write("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        if self.hwm_reset:
            self.peak = max(self.peak, self.status("VmHWM"))

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.status("VmRSS"))


@pytest.fixture
def big_file_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(data_dir=tmp_path / "data", env_extra={
        "DATALOFT_SYNC_COOLDOWN_SECONDS": "0", "DATALOFT_JOB_POLL_SECONDS": "0.05",
        # Extracting the 1M-row CSV alone took over the default 120 s on a loaded runner:
        # here only the whole-sync deadline bounds it (the memory limit stays the default).
        "DATALOFT_EXTRACT_TIMEOUT_SECONDS": str(SYNC_TIMEOUT_S),
        "DATALOFT_SYNC_TIMEOUT_SECONDS": str(SYNC_TIMEOUT_S)})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _terminal(client: httpx.Client, dataset_id: str) -> dict[str, Any] | None:
    try:
        r = client.get(f"/api/v1/dataset/{dataset_id}/event/list")
    except httpx.TransportError:  # a dropped keep-alive connection; the prober judges uptime
        return None
    assert r.status_code == 200, r.text
    return next((e for e in r.json()["items"]
                 if e["type"] in ("sync.completed", "sync.failed")), None)


# 6-12 minutes on 2 idle cores (a 1M-row CSV among them): more than the CI budget leaves, so
# it runs when asked for (DATALOFT_TEST_BIG=1), e.g. before a release or a sync change.
@pytest.mark.skipif(not os.environ.get("DATALOFT_TEST_BIG"),
                    reason="big files: set DATALOFT_TEST_BIG=1 (6-12 min)")
@pytest.mark.timeout(2 * SYNC_TIMEOUT_S + 300)
def test_big_and_pathological_files_sync_in_bounded_memory_and_time(
        big_file_server: LiveServer) -> None:
    """Each file in a dataset of its own (a dataset's syncs run one at a time); all queued
    at once on the default two workers."""
    corpus = [
        Case("unclosed-quote.csv", unclosed_quote_csv(), "text/csv", frozenset(LIMITS),
             may_complete=True),
        Case("wide.csv", wide_csv(), "text/csv", frozenset(LIMITS), may_complete=True),
        Case("long.csv", long_csv(), "text/csv", frozenset(), may_complete=True),
        Case("empty-pages.pdf", empty_pages_pdf(), "application/pdf",
             frozenset({"empty_content"} | LIMITS)),
    ]
    server = big_file_server
    assert server.proc is not None
    with server.client() as client:
        warm = _upload(client, Case("warm.txt", b"warm up the embedder", "text/plain",
                                    frozenset()))
        ds_warm = str(client.post("/api/v1/dataset/create", json={"name": "w"}).json()["id"])
        for action, body in (("attach", {"type": "source"}), ("sync", {})):
            client.post(f"/api/v1/dataset/{ds_warm}/file/{warm}/{action}", json=body)
        assert wait_for_sync(client, ds_warm, warm, timeout=120)["type"] == "sync.completed"
        datasets = {}
        for case in corpus:
            ds = str(client.post("/api/v1/dataset/create", json={"name": case.name}).json()["id"])
            datasets[case.name] = ds, _upload(client, case)
        rules = {c.name: (c.reasons, c.may_complete) for c in corpus}
        del corpus[:]  # keep the test's own memory small while the server works
        with RssWatch(server.proc.pid) as rss, Prober(server.url) as prober:
            started = time.monotonic()
            for ds, fid in datasets.values():
                for action, body in (("attach", {"type": "source"}), ("sync", {})):
                    r = client.post(f"/api/v1/dataset/{ds}/file/{fid}/{action}", json=body)
                    assert r.status_code == 200, r.text
            outcomes: dict[str, tuple[dict[str, Any], float]] = {}
            # Two workers, four files: everything must end within two deadlines.
            while (len(outcomes) < len(datasets)
                   and time.monotonic() - started < 2 * SYNC_TIMEOUT_S + 60):
                for name, (ds, _) in datasets.items():
                    if name not in outcomes and (event := _terminal(client, ds)):
                        outcomes[name] = event, time.monotonic() - started
                        print(name, event["type"], event["data"].get("reason"),
                              round(time.monotonic() - started), flush=True)
                time.sleep(1)
        summary = {name: (e["type"], e["data"].get("reason"), e["data"].get("recordCount"),
                          round(s)) for name, (e, s) in outcomes.items()}
        print(summary, f"idle {rss.idle >> 20} MiB, peak {rss.peak >> 20} MiB")
        assert set(outcomes) == set(datasets), (summary, server.log()[-3000:])
        for name, (event, _) in outcomes.items():
            reasons, may_complete = rules[name]
            reason = event["data"].get("reason")
            assert ((event["type"] == "sync.completed" and may_complete)
                    or (event["type"] == "sync.failed" and reason in reasons
                        and event["data"].get("message"))), (name, summary)
        assert outcomes["long.csv"][0]["type"] == "sync.completed", summary
        assert outcomes["long.csv"][0]["data"]["recordCount"] == 1_000_000, summary
        assert rss.peak - rss.idle <= GROWTH_LIMIT, (
            f"grew {(rss.peak - rss.idle) >> 20} MiB over idle {rss.idle >> 20} MiB", summary)

        # The unclosed quote became records of one row, none over the token budget.
        quote_ds = datasets["unclosed-quote.csv"][0]
        if outcomes["unclosed-quote.csv"][0]["type"] == "sync.completed":
            records = _all(client, f"/api/v1/dataset/{quote_ds}/record/list")
            assert len(records) > 1
            assert max(len(r["text"]) for r in records) <= 256 * 4
            assert {r["meta"].get("row") for r in records} == {records[0]["meta"].get("row")}
    assert server.proc.poll() is None
    assert prober.answers and not prober.failures(), prober.failures()



def test_a_sync_over_its_deadline_fails_processing_timeout_once(tmp_path: Path) -> None:
    """DATALOFT_SYNC_TIMEOUT_SECONDS bounds the whole sync; past it the file fails typed,
    and the failure is final (no retry)."""
    server = LiveServer(data_dir=tmp_path / "data", env_extra={
        "DATALOFT_SYNC_TIMEOUT_SECONDS": "1", "DATALOFT_SYNC_COOLDOWN_SECONDS": "0",
        "DATALOFT_JOB_POLL_SECONDS": "0.05"}).start()
    try:
        with server.client() as client:
            ds = str(client.post("/api/v1/dataset/create", json={"name": "t"}).json()["id"])
            fid = _upload(client, Case("rows.csv", long_csv(300_000), "text/csv", frozenset()))
            started_ms = int(time.time() * 1000) - 1
            for action, body in (("attach", {"type": "source"}), ("sync", {})):
                assert client.post(f"/api/v1/dataset/{ds}/file/{fid}/{action}",
                                   json=body).status_code == 200
            done = wait_for_sync(client, ds, fid, timeout=300, after=started_ms)
            assert done["type"] == "sync.failed", done
            assert done["data"]["reason"] == "processing_timeout", done
            time.sleep(2)  # a retry, if one were queued, would start at once (no backoff here)
            kinds = [e["type"] for e in _all(client, f"/api/v1/dataset/{ds}/event/list")]
            assert "sync.retrying" not in kinds and kinds.count("sync.started") == 1, kinds
            assert kinds.count("sync.failed") == 1, kinds
    finally:
        server.stop()
