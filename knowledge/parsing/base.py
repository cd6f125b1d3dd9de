"""The parsing vocabulary: the kinds we read, the limits, the result and the one error users see."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


def human_size(size: int) -> str:
    if size >= MiB:
        return f"{size / MiB:.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"
