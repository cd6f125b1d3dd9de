"""PDF text, page by page."""

from __future__ import annotations

import io
import logging

from knowledge.parsing.base import DocumentParseError, ParsedDocument, ParseLimits

logger = logging.getLogger(__name__)


def parse_pdf(data: bytes, limits: ParseLimits) -> ParsedDocument:
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
