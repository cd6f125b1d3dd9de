"""Turn an uploaded file into plain text for chunking and embedding.

Pure Python, no Django: this runs inside upload requests and Celery workers alike, and is tested without a
database. Every failure a user can cause surfaces as :class:`DocumentParseError` with a reason that can be
shown to them as is; anything else escaping from here is a bug.

Structure that helps retrieval is kept as Markdown: HTML and DOCX headings become ``#`` lines, list items
``- `` lines and table rows ``a | b`` lines, so :mod:`knowledge.chunking` can split at the same boundaries
whatever the source format was.
"""

from __future__ import annotations

from knowledge.parsing.base import (
    DEFAULT_LIMITS,
    KINDS,
    DocumentParseError,
    MiB,
    ParsedDocument,
    ParseLimits,
    human_size,
)
from knowledge.parsing.detect import detect_kind, upload_name
from knowledge.parsing.docx import parse_docx
from knowledge.parsing.html import parse_html
from knowledge.parsing.pdf import parse_pdf
from knowledge.parsing.tabular import parse_csv, parse_json, parse_jsonl
from knowledge.parsing.text import normalise_text, parse_md, parse_txt


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
            f"The file is {human_size(len(data))}; the limit is {human_size(limits.max_bytes)}.",
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

    text = normalise_text(doc.text)
    if not text.strip():
        hint = " It may be a scanned document; text recognition (OCR) is not supported." if kind == "pdf" else ""
        raise DocumentParseError(f"No text could be extracted from the file.{hint}", code="empty")
    return ParsedDocument(text=text, kind=doc.kind, title=doc.title, page_count=doc.page_count, metadata=doc.metadata)


_PARSERS = {
    "txt": parse_txt,
    "md": parse_md,
    "html": parse_html,
    "pdf": parse_pdf,
    "docx": parse_docx,
    "csv": parse_csv,
    "json": parse_json,
    "jsonl": parse_jsonl,
}


__all__ = [
    "DEFAULT_LIMITS",
    "KINDS",
    "DocumentParseError",
    "MiB",
    "ParseLimits",
    "ParsedDocument",
    "detect_kind",
    "parse_document",
    "upload_name",
]
