"""DOCX: headings, list items and tables kept as Markdown; zip bombs refused first."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

from knowledge.parsing.base import DocumentParseError, ParsedDocument, ParseLimits, human_size


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
                f"The DOCX unpacks to more than {human_size(limits.max_zip_uncompressed_bytes)}.",
                code="archive_bomb",
            )
        if info.file_size > limits.zip_ratio_min_bytes:
            ratio = info.file_size / max(1, info.compress_size)
            if ratio > limits.max_zip_ratio:
                raise DocumentParseError(
                    "The DOCX contains a suspiciously compressed part (a possible archive bomb).",
                    code="archive_bomb",
                )


def parse_docx(data: bytes, limits: ParseLimits) -> ParsedDocument:
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
    return ParsedDocument(text=join_blocks(blocks), kind="docx", title=title)


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


def join_blocks(blocks: list[tuple[str, str]]) -> str:
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
