"""Which kind a file is: by its extension, its declared content type and a look at its bytes."""

from __future__ import annotations

import io
import json
import zipfile

from knowledge.parsing.base import DocumentParseError
from knowledge.parsing.text import CONTROL_RE, decode_text

_EXTENSIONS: dict[str, str] = {
    ".txt": "txt", ".text": "txt", ".log": "txt",
    ".md": "md", ".markdown": "md", ".mdown": "md", ".mkd": "md",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".csv": "csv", ".tsv": "csv",
    ".json": "json",
    ".jsonl": "jsonl", ".ndjson": "jsonl",
}  # fmt: skip

_CONTENT_TYPES: dict[str, str] = {
    "text/plain": "txt",
    "text/markdown": "md", "text/x-markdown": "md",
    "text/html": "html", "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/csv": "csv", "text/tab-separated-values": "csv", "application/csv": "csv",
    "application/json": "json", "text/json": "json",
    "application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "application/x-jsonlines": "jsonl",
    "application/jsonlines": "jsonl",
}  # fmt: skip

# Formats people commonly try; naming them makes the error actionable.
_UNSUPPORTED_EXTENSIONS: dict[str, str] = {
    ".doc": "Legacy Word (.doc) files are not supported; save the document as .docx or PDF.",
    ".xls": "Spreadsheets are not supported; export the sheet as CSV.",
    ".xlsx": "Spreadsheets are not supported; export the sheet as CSV.",
    ".ppt": "Presentations are not supported; export them as PDF.",
    ".pptx": "Presentations are not supported; export them as PDF.",
    ".odt": "OpenDocument text is not supported; save the document as .docx or PDF.",
    ".rtf": "RTF files are not supported; save the document as .docx or PDF.",
    ".epub": "EPUB books are not supported; convert them to PDF or HTML.",
}

_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Microsoft Office file (.doc/.xls/.ppt)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "a Windows executable"),
    (b"{\\rtf", "an RTF document"),
    (b"%!PS", "a PostScript file"),
)

_SUPPORTED_LIST = "TXT, Markdown, HTML, PDF, DOCX, CSV, JSON and JSONL"


def detect_kind(data: bytes, *, filename: str, content_type: str | None = None) -> str:
    """Return one of :data:`KINDS`, trusting file content over the name and the name over the MIME type.

    Browsers and HTTP clients send generic or wrong content types (``application/octet-stream``), and
    names can lie, so magic bytes decide binary formats; the extension then the content type only choose
    between the text formats, which have no magic.
    """
    ext = _extension(filename)
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    by_ext = _EXTENSIONS.get(ext)
    by_ctype = _CONTENT_TYPES.get(ctype)

    # PDF readers accept the header anywhere in the first KiB (some generators prepend junk).
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _detect_zip_kind(data, ext=ext, by_ctype=by_ctype)
    for magic, what in _BINARY_MAGIC:
        if data.startswith(magic):
            reason = _UNSUPPORTED_EXTENSIONS.get(ext) or f"The file looks like {what}, which is not supported."
            raise DocumentParseError(f"{reason} Supported: {_SUPPORTED_LIST}.", code="unsupported_type")

    if ext in _UNSUPPORTED_EXTENSIONS:
        raise DocumentParseError(_UNSUPPORTED_EXTENSIONS[ext], code="unsupported_type")
    declared = by_ext or by_ctype
    if declared == "pdf":
        raise DocumentParseError("The file is not a valid PDF (no PDF header found).")
    if declared == "docx":
        raise DocumentParseError("The file is not a valid DOCX document (it is not a ZIP package).")
    if declared is not None:
        return declared
    return _sniff_text_kind(data)


def _detect_zip_kind(data: bytes, *, ext: str, by_ctype: str | None) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())  # central directory only: nothing is inflated here
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise DocumentParseError("The file is a damaged ZIP/DOCX archive and cannot be opened.") from exc
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        raise DocumentParseError(_UNSUPPORTED_EXTENSIONS[".xlsx"], code="unsupported_type")
    if "ppt/presentation.xml" in names:
        raise DocumentParseError(_UNSUPPORTED_EXTENSIONS[".pptx"], code="unsupported_type")
    if ext == ".docx" or by_ctype == "docx":
        raise DocumentParseError("The file is not a valid DOCX document (word/document.xml is missing).")
    reason = _UNSUPPORTED_EXTENSIONS.get(ext, "ZIP archives are not supported; upload the files inside it.")
    raise DocumentParseError(reason, code="unsupported_type")


def _sniff_text_kind(data: bytes) -> str:
    text = decode_text(data)  # raises for binary content
    head = text[:2048].lstrip().lower()
    if head.startswith(("<!doctype html", "<html")) or ("<body" in head and "</" in head):
        return "html"
    if head.startswith(("{", "[")):
        try:
            json.loads(text)
        except RecursionError:
            return "json"  # JSON nested too deeply to read: the JSON parser says so, with a clear reason
        except ValueError:
            pass
        else:
            return "json"
    return "txt"


def upload_name(name: str | None) -> str:
    """A document name from an uploaded file's name: its last path segment without control characters, or
    "upload" when nothing usable is left (names made only of dots or punctuation cannot be stored as files)."""
    from django.core.exceptions import SuspiciousFileOperation
    from django.utils.text import get_valid_filename

    base = CONTROL_RE.sub("", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    try:
        get_valid_filename(base)
    except SuspiciousFileOperation:
        return "upload"
    return base or "upload"


def _extension(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""
