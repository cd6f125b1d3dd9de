"""The AIVAX bulk document format: a JSONL file, one document per line.

    {"docid": "faq-12", "text": "...", "__ref": "faq", "__tags": ["billing", "faq"], "any": "other field"}

``docid`` names the document (an upsert key within the collection; generated from the text when absent),
``text`` is its content, ``__ref`` its reference, ``__tags`` a list of strings (or one comma-separated
string). Other fields are kept as the document's metadata. Pure: no database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

MAX_LINES = 10_000
MAX_TEXT_CHARS = 1_000_000
MAX_NAME = 300
MAX_TAGS = 50
MAX_TAG = 100


class BulkFormatError(ValueError):
    """The file is not valid; ``line`` is 1-based (0 for the file as a whole)."""

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(f"Line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True)
class BulkDocument:
    line: int
    name: str
    text: str
    reference: str = ""
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


def normalise_tags(value: Any, *, line: int = 0) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(t, str) for t in items):
        raise BulkFormatError("'__tags' must be a list of strings.", line=line)
    tags = tuple(dict.fromkeys(t.strip() for t in items if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG for t in tags):
        raise BulkFormatError(f"At most {MAX_TAGS} tags of up to {MAX_TAG} characters each.", line=line)
    return tags


def parse_bulk_jsonl(data: bytes) -> list[BulkDocument]:
    """Validate every line; the first problem raises :class:`BulkFormatError` naming its line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BulkFormatError("The file is not UTF-8 text.") from exc
    documents: list[BulkDocument] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(documents) >= MAX_LINES:
            raise BulkFormatError(f"The file has more than {MAX_LINES} documents.", line=number)
        document = _parse_line(raw, number)
        if document.name in seen:
            raise BulkFormatError(
                f"docid '{document.name}' already appears on line {seen[document.name]}.", line=number
            )
        seen[document.name] = number
        documents.append(document)
    if not documents:
        raise BulkFormatError("The file has no documents.")
    return documents


def _parse_line(raw: str, number: int) -> BulkDocument:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid JSON"
        raise BulkFormatError(f"not valid JSON ({detail}).", line=number) from exc
    if not isinstance(value, dict):
        raise BulkFormatError("each line must be a JSON object.", line=number)
    body = value.get("text")
    if not isinstance(body, str) or not body.strip():
        raise BulkFormatError("'text' is required and must be a non-empty string.", line=number)
    if len(body) > MAX_TEXT_CHARS:
        raise BulkFormatError(f"'text' is longer than {MAX_TEXT_CHARS} characters.", line=number)
    docid = value.get("docid")
    if docid is None or docid == "":
        docid = "doc-" + hashlib.sha256(body.encode()).hexdigest()[:16]
    if not isinstance(docid, str | int) or isinstance(docid, bool):
        raise BulkFormatError("'docid' must be a string.", line=number)
    name = str(docid).strip()
    if not name or len(name) > MAX_NAME:
        raise BulkFormatError(f"'docid' must have 1 to {MAX_NAME} characters.", line=number)
    reference = value.get("__ref") or ""
    if not isinstance(reference, str) or len(reference) > MAX_NAME:
        raise BulkFormatError(f"'__ref' must be a string of up to {MAX_NAME} characters.", line=number)
    tags = normalise_tags(value.get("__tags"), line=number)
    metadata = {k: v for k, v in value.items() if k not in ("docid", "text") and not k.startswith("__")}
    return BulkDocument(line=number, name=name, text=body, reference=reference.strip(), tags=tags, metadata=metadata)
