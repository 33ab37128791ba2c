"""Binary signatures: what a file is by its bytes, whatever its name says."""

from __future__ import annotations

import io
import zipfile

from dataloft.ingest.extract.base import ExtractionError

ZIP_MAGIC = b"PK\x03\x04"
# OLE2 compound file: legacy .doc/.xls/.ppt, and the wrapper of password-protected
# .docx/.xlsx/.pptx (an "EncryptedPackage" stream inside).
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")

# A zip member expanding past this is a zip bomb, not a document.
MAX_UNZIPPED_BYTES = 512 << 20

OOXML_MAIN_PARTS = {
    "docx": "word/document.xml",
    "xlsx": "xl/workbook.xml",
    "pptx": "ppt/presentation.xml",
}

_OTHER_BINARY = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"RIFF", "a RIFF media file"),
    (b"\x1f\x8b", "a gzip archive"), (b"BZh", "a bzip2 archive"), (b"7z\xbc\xaf\x27\x1c",
    "a 7-Zip archive"), (b"Rar!", "a RAR archive"), (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"), (b"SQLite format 3\x00", "an SQLite database"),
    (b"OggS", "an Ogg media file"), (b"ID3", "an MP3 file"), (b"\x00\x00\x01\x00", "an icon"),
    (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
)


def is_pdf(data: bytes) -> bool:
    # The header may follow up to 1 KiB of junk; readers accept that, so do we.
    return b"%PDF-" in data[:1024]


def is_rtf(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:5] == b"{\\rtf"


def ooxml_kind(data: bytes) -> str | None:
    """"docx", "xlsx" or "pptx" for an Office Open XML package, else None."""
    if not data.startswith(ZIP_MAGIC):
        return None
    try:  # reads only the central directory: cheap even for a large package
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    return next((kind for kind, part in OOXML_MAIN_PARTS.items() if part in names), None)


def open_zip(data: bytes, what: str) -> zipfile.ZipFile:
    """The package as a ZipFile, refused when corrupt or expanding past the limit."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        total = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ExtractionError("corrupted_file", f"the {what} file is damaged: {exc}") from exc
    if total > MAX_UNZIPPED_BYTES:
        raise ExtractionError("corrupted_file", f"the {what} file expands to {total >> 20} MB, "
                              f"over the {MAX_UNZIPPED_BYTES >> 20} MB limit")
    return zf


def refuse_binary(data: bytes, claimed: str | None) -> None:
    """Raise the right typed error for binary bytes that no registered format claims.

    `claimed` is the format the name or content type suggested, if any."""
    if data.startswith(OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise ExtractionError("encrypted", "the Office document is password-protected; "
                                  "upload it without a password")
        raise ExtractionError("unsupported_format", "legacy binary Office files (.doc, .xls, "
                              ".ppt) are not supported; save as .docx, .xlsx or .pptx")
    if data.startswith(ZIP_MAGIC):
        if claimed in OOXML_MAIN_PARTS:
            raise ExtractionError("corrupted_file", f"the {claimed} file is damaged or is not "
                                  "an Office document")
        raise ExtractionError("unsupported_format", "ZIP archives are not supported; "
                              "upload the files inside it")
    for magic, what in _OTHER_BINARY:
        if data.startswith(magic):
            raise ExtractionError("unsupported_format", f"the file is {what}; no text to extract")
    if claimed:
        raise ExtractionError("corrupted_file", f"the file claims to be {claimed} but holds "
                              "unreadable binary data")
    raise ExtractionError("unsupported_format", "the file holds binary data of an unknown format")
