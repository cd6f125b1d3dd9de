"""Plain text: decoding (BOMs, UTF-16 without one, declared charsets), refusing binary, normalising; TXT and
Markdown."""

from __future__ import annotations

import codecs
import contextlib
import re
import unicodedata

from knowledge.parsing.base import DocumentParseError, ParsedDocument, ParseLimits

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


def decode_text(data: bytes, *, charset_hint: str | None = None) -> str:
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


CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_TRAILING_WS_RE = re.compile(r"[ \t\f\v\u00a0]+$", re.MULTILINE)
_MANY_BLANKS_RE = re.compile(r"\n{3,}")


def normalise_text(text: str) -> str:
    """Unify newlines, drop stray control characters, trim trailing spaces and runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = CONTROL_RE.sub("", text)
    text = _TRAILING_WS_RE.sub("", text)
    text = _MANY_BLANKS_RE.sub("\n\n", text)
    return text.strip("\n")


# Parsers. Each returns a ParsedDocument whose text parse_document normalises and checks for emptiness.


def parse_txt(data: bytes, limits: ParseLimits) -> ParsedDocument:
    return ParsedDocument(text=decode_text(data), kind="txt")


def parse_md(data: bytes, limits: ParseLimits) -> ParsedDocument:
    text = decode_text(data)
    match = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.MULTILINE)
    return ParsedDocument(text=text, kind="md", title=match.group(1) if match else None)
