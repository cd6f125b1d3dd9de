"""CSV, JSON and JSON Lines as text."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from knowledge.parsing.base import DocumentParseError, ParsedDocument, ParseLimits
from knowledge.parsing.text import decode_text


def parse_csv(data: bytes, limits: ParseLimits) -> ParsedDocument:
    text = decode_text(data)
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


def parse_json(data: bytes, limits: ParseLimits) -> ParsedDocument:
    text = decode_text(data)
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


def parse_jsonl(data: bytes, limits: ParseLimits) -> ParsedDocument:
    text = decode_text(data)
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
