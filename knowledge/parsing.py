"""Turn an uploaded file into plain text for chunking and embedding.

Pure Python, no Django: this runs inside upload requests and Celery workers alike, and is tested without a
database. Every failure a user can cause surfaces as :class:`DocumentParseError` with a reason that can be
shown to them as is; anything else escaping from here is a bug.

Structure that helps retrieval is kept as Markdown: HTML and DOCX headings become ``#`` lines, list items
``- `` lines and table rows ``a | b`` lines, so :mod:`knowledge.chunking` can split at the same boundaries
whatever the source format was.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import logging
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

MiB = 1024 * 1024

KINDS = ("txt", "md", "html", "pdf", "docx", "csv", "json", "jsonl")


class DocumentParseError(Exception):
    """The file cannot be turned into text; ``reason`` is safe and meant to be shown to the uploader.

    ``code`` is a stable machine-readable category (``unsupported_type``, ``too_large``, ``encrypted``,
    ``corrupt``, ``empty``, ``archive_bomb``, ``too_many_pages``) for the API and metrics.
    """

    def __init__(self, reason: str, *, code: str = "corrupt") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class ParseLimits:
    """Resource ceilings; the defaults suit a 2-core / few-GiB worker and can be tightened per deployment."""

    max_bytes: int = 25 * MiB
    max_pdf_pages: int = 2000
    # A DOCX is a zip: python-docx inflates every part into memory, so these are checked from the central
    # directory *before* anything is decompressed. Real documents with images stay far below them.
    max_zip_entries: int = 2000
    max_zip_uncompressed_bytes: int = 200 * MiB
    # Deflate tops out near 1032:1; XML and images in real documents compress 2-30x. A part that claims a
    # huge ratio is a bomb, but small parts may legitimately compress well, so the ratio applies above
    # ``zip_ratio_min_bytes`` only.
    max_zip_ratio: float = 100.0
    zip_ratio_min_bytes: int = 1 * MiB


DEFAULT_LIMITS = ParseLimits()


@dataclass(frozen=True)
class ParsedDocument:
    """Extracted text (Markdown-ish: headings as ``#`` lines, paragraphs separated by blank lines)."""

    text: str
    kind: str
    title: str | None = None
    page_count: int | None = None  # PDFs only
    metadata: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------------
# Entry point


def parse_document(
    data: bytes,
    *,
    filename: str,
    content_type: str | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> ParsedDocument:
    """Detect the kind of ``data`` and extract its text, or raise :class:`DocumentParseError`."""
    if len(data) > limits.max_bytes:
        raise DocumentParseError(
            f"The file is {_human_size(len(data))}; the limit is {_human_size(limits.max_bytes)}.",
            code="too_large",
        )
    if not data:
        raise DocumentParseError("The file is empty.", code="empty")

    kind = detect_kind(data, filename=filename, content_type=content_type)
    parser = _PARSERS[kind]
    try:
        doc = parser(data, limits)
    except DocumentParseError:
        raise
    except RecursionError as exc:
        # Deeply nested JSON/HTML/PDF structures: a crafted file, not a bug worth a traceback.
        raise DocumentParseError(f"The {kind.upper()} file is nested too deeply to read.") from exc
    except MemoryError as exc:
        raise DocumentParseError(f"The {kind.upper()} file is too complex to read.", code="too_large") from exc

    text = _normalise_text(doc.text)
    if not text.strip():
        hint = " It may be a scanned document; text recognition (OCR) is not supported." if kind == "pdf" else ""
        raise DocumentParseError(f"No text could be extracted from the file.{hint}", code="empty")
    return ParsedDocument(text=text, kind=doc.kind, title=doc.title, page_count=doc.page_count, metadata=doc.metadata)


# --------------------------------------------------------------------------------------------------------------
# Kind detection

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
    text = _decode_text(data)  # raises for binary content
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

    base = _CONTROL_RE.sub("", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    try:
        get_valid_filename(base)
    except SuspiciousFileOperation:
        return "upload"
    return base or "upload"


def _extension(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


# --------------------------------------------------------------------------------------------------------------
# Text decoding

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")
_BINARY_SAMPLE_CHARS = 65536
_MAX_CONTROL_RATIO = 0.01  # real text has essentially none; binary decoded as Latin-1 has ~25%


def _decode_text(data: bytes, *, charset_hint: str | None = None) -> str:
    """Decode text bytes: BOM, then strict UTF-8, then the declared charset, then Windows-1252/Latin-1.

    Rejects binary content (NULs without a UTF-16 pattern, or many control characters), since embedding
    binary garbage costs money and poisons search results.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _reject_binary(data[len(bom) :].decode(encoding))
            except UnicodeDecodeError as exc:
                raise DocumentParseError(f"The file claims to be {encoding.upper()} but is not valid.") from exc

    sample = data[:_BINARY_SAMPLE_CHARS]
    if b"\x00" in sample:
        encoding = _guess_bomless_utf16(sample)
        if encoding is None:
            raise DocumentParseError("The file contains binary data, not text.", code="unsupported_type")
        try:
            return _reject_binary(data.decode(encoding))
        except UnicodeDecodeError as exc:
            raise DocumentParseError("The file contains binary data, not text.", code="unsupported_type") from exc

    candidates = ["utf-8"]
    if charset_hint:
        with contextlib.suppress(LookupError):  # an unknown declared charset is just ignored
            candidates.append(codecs.lookup(charset_hint).name)
    candidates.append("cp1252")  # the usual non-UTF-8 text from Windows tools (Excel CSV exports)
    for encoding in candidates:
        try:
            return _reject_binary(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    return _reject_binary(data.decode("latin-1"))  # never fails; _reject_binary catches garbage


def _guess_bomless_utf16(sample: bytes) -> str | None:
    # ASCII-range text in UTF-16 has a NUL in every other byte; random binary does not.
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    half = max(1, len(sample) // 2)
    if odd / half > 0.4 and even / half < 0.05:
        return "utf-16-le"
    if even / half > 0.4 and odd / half < 0.05:
        return "utf-16-be"
    return None


def _reject_binary(text: str) -> str:
    sample = text[:_BINARY_SAMPLE_CHARS]
    if not sample:
        return text
    bad = sum(
        1 for ch in sample if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS)
    )
    if bad / len(sample) > _MAX_CONTROL_RATIO:
        raise DocumentParseError("The file contains binary data, not text.", code="unsupported_type")
    return text


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_TRAILING_WS_RE = re.compile(r"[ \t\f\v\u00a0]+$", re.MULTILINE)
_MANY_BLANKS_RE = re.compile(r"\n{3,}")


def _normalise_text(text: str) -> str:
    """Unify newlines, drop stray control characters, trim trailing spaces and runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = _CONTROL_RE.sub("", text)
    text = _TRAILING_WS_RE.sub("", text)
    text = _MANY_BLANKS_RE.sub("\n\n", text)
    return text.strip("\n")


# --------------------------------------------------------------------------------------------------------------
# Parsers. Each returns a ParsedDocument whose text parse_document normalises and checks for emptiness.


def _parse_txt(data: bytes, limits: ParseLimits) -> ParsedDocument:
    return ParsedDocument(text=_decode_text(data), kind="txt")


def _parse_md(data: bytes, limits: ParseLimits) -> ParsedDocument:
    text = _decode_text(data)
    match = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.MULTILINE)
    return ParsedDocument(text=text, kind="md", title=match.group(1) if match else None)


# ---- PDF


def _parse_pdf(data: bytes, limits: ParseLimits) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" only to restrict printing/copying, with an empty user password:
            # those open fine. Anything needing a real password is the uploader's to remove.
            try:
                opened = reader.decrypt("")
            except (DependencyError, NotImplementedError) as exc:
                raise DocumentParseError(
                    "The PDF uses an encryption scheme that cannot be opened; remove the protection and "
                    "upload it again.",
                    code="encrypted",
                ) from exc
            if not opened:
                raise DocumentParseError(
                    "The PDF is password-protected; remove the password and upload it again.", code="encrypted"
                )
        page_count = len(reader.pages)
    except DocumentParseError:
        raise
    except FileNotDecryptedError as exc:
        raise DocumentParseError(
            "The PDF is password-protected; remove the password and upload it again.", code="encrypted"
        ) from exc
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        # pypdf surfaces malformed structures as assorted built-in exceptions, not only PdfReadError.
        raise DocumentParseError("The PDF is damaged and cannot be read.") from exc

    if page_count > limits.max_pdf_pages:
        raise DocumentParseError(
            f"The PDF has {page_count} pages; the limit is {limits.max_pdf_pages}.", code="too_many_pages"
        )

    pages: list[str] = []
    failed = 0
    for number in range(page_count):
        try:
            page_text = reader.pages[number].extract_text() or ""
        except RecursionError:
            raise
        except Exception:
            # One broken page (bad font, truncated stream) should not lose the rest of the document.
            failed += 1
            logger.info("pdf page %d could not be read", number + 1, exc_info=True)
            continue
        pages.append(page_text.strip())
    if failed == page_count and page_count:
        raise DocumentParseError("The PDF is damaged and cannot be read.")

    title = None
    try:
        meta = reader.metadata
        if meta is not None and meta.title:
            title = str(meta.title).strip() or None
    except Exception:  # metadata is optional and often malformed; never fail a document over it
        title = None
    return ParsedDocument(
        text="\n\n".join(p for p in pages if p),
        kind="pdf",
        title=title,
        page_count=page_count,
        metadata={"unreadable_pages": failed} if failed else {},
    )


# ---- DOCX


def _check_zip_safety(data: bytes, limits: ParseLimits) -> None:
    """Reject archive bombs from the central directory, before any member is decompressed.

    Declared sizes are binding: Python's zipfile stops inflating a member at its declared ``file_size`` and
    fails the CRC check, so a member cannot lie its way past these totals.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise DocumentParseError("The DOCX file is damaged and cannot be opened.") from exc

    if len(infos) > limits.max_zip_entries:
        raise DocumentParseError(
            f"The DOCX archive has {len(infos)} entries; the limit is {limits.max_zip_entries}.",
            code="archive_bomb",
        )
    total = 0
    for info in infos:
        total += info.file_size
        if total > limits.max_zip_uncompressed_bytes:
            raise DocumentParseError(
                f"The DOCX unpacks to more than {_human_size(limits.max_zip_uncompressed_bytes)}.",
                code="archive_bomb",
            )
        if info.file_size > limits.zip_ratio_min_bytes:
            ratio = info.file_size / max(1, info.compress_size)
            if ratio > limits.max_zip_ratio:
                raise DocumentParseError(
                    "The DOCX contains a suspiciously compressed part (a possible archive bomb).",
                    code="archive_bomb",
                )


def _parse_docx(data: bytes, limits: ParseLimits) -> ParsedDocument:
    _check_zip_safety(data, limits)

    import docx
    from docx.opc.exceptions import OpcError
    from lxml.etree import LxmlError

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(_docx_blocks(document))
        title = (document.core_properties.title or "").strip() or None
    except (OpcError, LxmlError, zipfile.BadZipFile, KeyError, ValueError, AttributeError, TypeError) as exc:
        raise DocumentParseError("The DOCX file is damaged and cannot be read.") from exc
    return ParsedDocument(text=_join_blocks(blocks), kind="docx", title=title)


_DOCX_HEADING_RE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)


def _docx_blocks(document: Any) -> Iterator[tuple[str, str]]:
    """Yield (kind, text) blocks in document order: headings as Markdown, lists as ``- ``, tables as rows."""
    from docx.table import Table

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:
                    value = " ".join(cell.text.split())
                    # Merged cells repeat the same object across the span; show them once.
                    if value and (not cells or cells[-1] != value):
                        cells.append(value)
                if cells:
                    yield "row", " | ".join(cells)
            yield "break", ""
            continue
        text = " ".join(item.text.split())
        if not text:
            continue
        style = (item.style.name if item.style is not None else "") or ""
        heading = _DOCX_HEADING_RE.match(style)
        if style.lower() == "title":
            yield "heading", f"# {text}"
        elif heading:
            yield "heading", f"{'#' * min(6, int(heading.group(1)))} {text}"
        elif style.lower().startswith("list"):
            yield "item", f"- {text}"
        else:
            yield "para", text


def _join_blocks(blocks: list[tuple[str, str]]) -> str:
    """Join blocks with blank lines, but keep consecutive list items / table rows as one paragraph."""
    out: list[str] = []
    prev = ""
    for kind, text in blocks:
        if kind == "break":
            prev = ""
            continue
        if out:
            out.append("\n" if kind == prev and kind in ("item", "row") else "\n\n")
        out.append(text)
        prev = kind
    return "".join(out)


# ---- HTML

# Never content: code, embedded objects, form controls and page chrome.
_HTML_DROP_TAGS = frozenset(
    {
        "head", "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas",
        "nav", "aside", "footer", "form", "button", "select", "option", "input", "textarea", "dialog",
    }
)  # fmt: skip
_HTML_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search", "menu"})
_HTML_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "blockquote", "pre", "ul", "ol", "dl", "dt",
        "dd", "table", "thead", "tbody", "tfoot", "caption", "figure", "figcaption", "address", "details",
        "summary", "fieldset", "hr", "body", "html", "center",
    }
)  # fmt: skip
_HTML_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_INLINE_WS_RE = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE)


def _parse_html(data: bytes, limits: ParseLimits) -> ParsedDocument:
    from selectolax.lexbor import LexborHTMLParser

    match = _META_CHARSET_RE.search(data[:4096])
    html = _decode_text(data, charset_hint=match.group(1).decode("ascii") if match else None)
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = " ".join(title_node.text().split()) if title_node is not None else ""

    root = tree.css_first("main") or tree.css_first("[role=main]") or tree.body or tree.root
    text = _HtmlText().render(root) if root is not None else ""
    if not text.strip() and root is not tree.body and tree.body is not None:
        text = _HtmlText().render(tree.body)  # an empty <main> should not hide a body full of text
    return ParsedDocument(text=text, kind="html", title=title or None)


class _HtmlText:
    """Walk a DOM into Markdown-ish text. Iterative, because crafted pages nest thousands of levels deep."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, str]] = []
        self.buf: list[str] = []
        self.pre_depth = 0
        self.li_depth = 0
        self.cell_depth = 0

    def render(self, root: Any) -> str:
        # Each stack entry is (node, closing): children are pushed after a closing marker for their parent.
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, closing = stack.pop()
            tag = node.tag
            if closing:
                self._close(tag)
                continue
            if tag == "-text":
                self._text(node.text_content or "")
                continue
            if tag is None or tag.startswith("-") or self._dropped(node, tag):
                continue  # comments, doctype, chrome
            self._open(tag)
            stack.append((node, True))
            children = []
            child = node.first_child
            while child is not None:
                children.append(child)
                child = child.next
            stack.extend((c, False) for c in reversed(children))
        self._flush()
        return _join_blocks(self.blocks)

    def _dropped(self, node: Any, tag: str) -> bool:
        if tag in _HTML_DROP_TAGS:
            return True
        if tag == "header" and node.parent is not None and node.parent.tag == "body":
            return True  # the site banner; headers inside <article>/<main> carry the title and stay
        attrs = node.attributes
        if "hidden" in attrs or (attrs.get("aria-hidden") or "").lower() == "true":
            return True
        return (attrs.get("role") or "").lower() in _HTML_DROP_ROLES

    def _text(self, text: str) -> None:
        self.buf.append(text if self.pre_depth else _INLINE_WS_RE.sub(" ", text))

    def _open(self, tag: str) -> None:
        if self.cell_depth and tag not in ("td", "th", "tr", "table"):
            # Blocks inside a table cell stay on the row's line, or one row would scatter over paragraphs.
            if tag in _HTML_BLOCK_TAGS or tag in _HTML_HEADINGS or tag in ("li", "br"):
                self.buf.append(" ")
            return
        if tag in _HTML_HEADINGS or tag in _HTML_BLOCK_TAGS or tag in ("li", "tr"):
            self._flush()
        if tag == "pre":
            self.pre_depth += 1
        elif tag == "li":
            self.li_depth += 1
        elif tag == "br":
            self.buf.append("\n")
        elif tag in ("td", "th"):
            if "".join(self.buf).strip():
                self.buf.append(" | ")
            self.cell_depth += 1

    def _close(self, tag: str) -> None:
        if tag in ("td", "th"):
            self.cell_depth = max(0, self.cell_depth - 1)
            return
        if self.cell_depth:
            return
        if tag in _HTML_HEADINGS:
            text = " ".join("".join(self.buf).split())
            self.buf = []
            if text:
                self.blocks.append(("heading", f"{'#' * _HTML_HEADINGS[tag]} {text}"))
        elif tag == "li":
            self._flush()
            self.li_depth = max(0, self.li_depth - 1)
        elif tag == "tr":
            self._flush("row")
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
            self._flush(keep_lines=True)
        elif tag in ("table", "ul", "ol"):
            self._flush()
            if not self.li_depth:  # a nested list ends inside its parent item: the outer list goes on
                self.blocks.append(("break", ""))
        elif tag in _HTML_BLOCK_TAGS:
            self._flush()

    def _flush(self, kind: str | None = None, *, keep_lines: bool = False) -> None:
        raw = "".join(self.buf)
        self.buf = []
        if keep_lines:
            text = raw.strip("\n")
        else:
            lines = (" ".join(line.split()) for line in raw.split("\n"))
            text = "\n".join(line for line in lines if line)
        if not text.strip():
            return
        if kind is None and self.li_depth:
            # Nested lists keep their depth so the outline survives.
            kind, text = "item", "  " * (self.li_depth - 1) + "- " + text
        self.blocks.append((kind or "para", text))


# ---- CSV


def _parse_csv(data: bytes, limits: ParseLimits) -> ParsedDocument:
    text = _decode_text(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:16384], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # a single column, or too irregular to sniff: plain commas
    try:
        rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise DocumentParseError(f"The CSV file cannot be read: {exc}.") from exc
    if not rows:
        return ParsedDocument(text="", kind="csv")

    header = [" ".join(cell.split()) or f"column {i + 1}" for i, cell in enumerate(rows[0])]
    lines: list[str] = []
    for row in rows[1:]:
        pairs = []
        for i, cell in enumerate(row):
            value = " ".join(cell.split())
            if value:  # empty cells are noise for retrieval
                name = header[i] if i < len(header) else f"column {i + 1}"
                pairs.append(f"{name}: {value}")
        if pairs:
            lines.append("; ".join(pairs))
    if not lines:  # a header-only file: keep the header so the content is not silently lost
        lines = ["; ".join(header)]
    # One row per line, all in one paragraph: the chunker then packs whole rows and never splits one
    # unless it alone exceeds a chunk.
    return ParsedDocument(text="\n".join(lines), kind="csv", metadata={"rows": len(rows) - 1})


# ---- JSON / JSONL


def _parse_json(data: bytes, limits: ParseLimits) -> ParsedDocument:
    text = _decode_text(data)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DocumentParseError(f"The JSON file is not valid JSON ({_json_error(exc)}).") from exc
    if isinstance(value, list):
        records = [_flatten_json(item) for item in value]
        body = "\n\n".join(r for r in records if r)
    else:
        body = _flatten_json(value)
    return ParsedDocument(text=body, kind="json")


def _parse_jsonl(data: bytes, limits: ParseLimits) -> ParsedDocument:
    text = _decode_text(data)
    records: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise DocumentParseError(
                f"Line {number} of the JSONL file is not valid JSON ({_json_error(exc)})."
            ) from exc
        flat = _flatten_json(value)
        if flat:
            records.append(flat)
    return ParsedDocument(text="\n\n".join(records), kind="jsonl", metadata={"records": len(records)})


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return str(exc)[:100]


def _flatten_json(value: Any) -> str:
    """Render JSON as ``path: value`` lines, e.g. ``author.name: Ada``; arrays of scalars as one list."""
    lines: list[str] = []
    # Iterative to survive deep nesting within the json module's own limits.
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            if all(not isinstance(v, dict | list) for v in item):
                rendered = ", ".join(_json_scalar(v) for v in item if v is not None and v != "")
                if rendered:
                    lines.append(f"{path}: {rendered}" if path else rendered)
            else:
                stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(item))))
        elif item is not None and item != "":
            lines.append(f"{path}: {_json_scalar(item)}" if path else _json_scalar(item))
    return "\n".join(lines)


def _json_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return " ".join(value.split())
    return str(value)


_PARSERS = {
    "txt": _parse_txt,
    "md": _parse_md,
    "html": _parse_html,
    "pdf": _parse_pdf,
    "docx": _parse_docx,
    "csv": _parse_csv,
    "json": _parse_json,
    "jsonl": _parse_jsonl,
}


def _human_size(size: int) -> str:
    if size >= MiB:
        return f"{size / MiB:.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"
