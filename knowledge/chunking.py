"""Token-aware chunking that follows the document's structure.

The text comes from :mod:`knowledge.parsing`, which renders every format's headings as Markdown ``#`` lines;
raw Markdown (ATX and setext headings) and one-line HTML headings (``<h2>..</h2>``) are recognised too.
Fenced code blocks are opaque: a ``# comment`` inside one is not a heading.

Where a chunk may end, best first:

1. at a heading: each section is chunked on its own, and small consecutive sections are packed together
   as long as they fit and the chunk never runs past a heading shallower than the one it started at;
2. at a paragraph break, then a line break (lists, CSV rows), then a sentence end;
3. between words, and between characters only for a single "word" longer than a chunk.

Overlap (``overlap_tokens``) only joins pieces of one section that had to be split, and is taken as whole
sentences when they fit: across a heading the previous text is another topic, and repeating it there
only blurs both vectors.

Heading path prefix: each chunk begins with the path of the headings it sits under (``Guide >
Installation > Linux``); deeper headings inside a chunk that packs several sections stay inline as
Markdown lines. A body paragraph such as "Run the installer and restart"
says nothing about *what* it installs; the path puts the topic back into the vector. Measured with the
local MiniLM model (``bench/embeddings_choice.py``) on a generated manual of 8 products, each with the
same three look-alike sections (installation, pricing, troubleshooting), asking e.g. "How do I install
Cobalt?": the right chunk ranks first for 15 of 24 questions with the prefix and for 0 of 24 without
it (the bodies alone cannot tell the products apart). The prefix costs its own tokens, typically 3-10
of 256.

Everything is deterministic: the same text and counter always give the same chunks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

CountTokens = Callable[[str], int]

# Never let a chunk grow past this many characters per allowed token: a tokenizer may count a huge
# unknown "word" (a base64 blob) as one token, and such a chunk would still be megabytes of text.
_MAX_CHARS_PER_TOKEN = 10


@dataclass(frozen=True)
class Chunk:
    position: int  # 0-based order in the document
    text: str  # what gets embedded and shown: heading path prefix (if any) + content
    token_count: int  # count_tokens(text)
    heading: str | None = None  # heading path, "A > B", or None at top level


def chunk_text(
    text: str,
    *,
    max_tokens: int = 256,
    overlap_tokens: int = 32,
    count_tokens: CountTokens,
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``max_tokens`` (as counted by ``count_tokens``).

    ``count_tokens`` should count what the embedder will see (``knowledge.embeddings.count_tokens`` for
    the local model). ``overlap_tokens`` is capped at half of ``max_tokens``. Returns no empty chunks; an
    empty or blank text gives ``[]``.
    """
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    if overlap_tokens < 0:
        raise ValueError("overlap_tokens must not be negative")
    if not text or not text.strip():
        return []
    # More than half a chunk of repetition is never useful, and the cap keeps small chunk sizes usable
    # with the default overlap.
    return _Chunker(max_tokens, min(overlap_tokens, max_tokens // 2), count_tokens).run(text)


# --------------------------------------------------------------------------------------------------------------
# Structure: text -> sections (heading path + paragraphs)

# ((level, title, serial), ...) from the outermost heading inwards; the serial tells apart two headings
# with the same title (two "## Example" sections are different sections).
Path = tuple[tuple[int, str, int], ...]

_ATX_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-{3,})[ \t]*$")
_HTML_HEADING_RE = re.compile(r"^\s*<h([1-6])\b[^>]*>(.*?)</h\1>\s*$", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]+>")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_OR_QUOTE_RE = re.compile(r"^\s*([-*+>]|\d+[.)])\s")


@dataclass
class _Section:
    path: Path
    paragraphs: list[str]


def _heading(line: str) -> tuple[int, str] | None:
    match = _ATX_RE.match(line)
    if match:
        return len(match.group(1)), " ".join((match.group(2) or "").split())
    match = _HTML_HEADING_RE.match(line)
    if match:
        return int(match.group(1)), " ".join(_TAG_RE.sub(" ", match.group(2)).split())
    return None


def _sections(text: str) -> list[_Section]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    sections: list[_Section] = []
    path: list[tuple[int, str, int]] = []
    current = _Section((), [])
    para: list[str] = []
    fence: str | None = None

    def flush() -> None:
        if para:
            block = "\n".join(para).strip("\n")
            if block.strip():
                current.paragraphs.append(block)
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if fence is not None:
            para.append(line)
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence = None
            i += 1
            continue
        match = _FENCE_RE.match(line)
        if match:
            flush()
            fence = match.group(1)
            para.append(line)
            i += 1
            continue

        heading = _heading(line)
        consumed = 1
        if heading is None and not para and line.strip() and not _LIST_OR_QUOTE_RE.match(line):
            # Setext: a one-line paragraph underlined with === (h1) or --- (h2).
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            underline = _SETEXT_RE.match(nxt)
            if underline:
                heading = (1 if underline.group(1)[0] == "=" else 2, " ".join(line.split()))
                consumed = 2
        if heading is not None:
            flush()
            level, title = heading
            if title:  # an empty "#" line is only a separator
                sections.append(current)
                while path and path[-1][0] >= level:
                    path.pop()
                path.append((level, title, i))
                current = _Section(tuple(path), [])
            i += consumed
            continue

        if line.strip():
            para.append(line.rstrip())
        else:
            flush()
        i += 1
    flush()
    sections.append(current)
    # The top-level preamble exists even when empty; drop it then. Empty *titled* sections stay: their
    # heading may be all a short document says, and packing decides what to do with them.
    return [s for s in sections if s.path or s.paragraphs]


# --------------------------------------------------------------------------------------------------------------
# Atoms: pieces of a section body that each fit a chunk, with the separator that precedes them

_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?\u2026])\s+|(?<=[\u3002\uff01\uff1f])")
_WS_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class _Atom:
    text: str
    joiner: str  # separator before this atom when it is not the first of a chunk
    tokens: int


def _common_prefix(a: Path, b: Path) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass
class _Piece:
    path: Path
    body: str
    whole: bool  # a complete section body (may merge with neighbours) vs. part of a split one

    @property
    def level(self) -> int:
        return self.path[-1][0] if self.path else 0


class _Chunker:
    def __init__(self, max_tokens: int, overlap_tokens: int, count_tokens: CountTokens) -> None:
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.max_chars = max_tokens * _MAX_CHARS_PER_TOKEN
        self._count = count_tokens
        self._memo: dict[str, int] = {}

    def count(self, text: str) -> int:
        # Memoised: packing re-measures the same candidate strings.
        value = self._memo.get(text)
        if value is None:
            value = self._count(text)
            if len(self._memo) < 50_000:
                self._memo[text] = value
        return value

    def fits(self, text: str, budget: int) -> bool:
        return len(text) <= self.max_chars and self.count(text) <= budget

    # ---- top level

    def run(self, text: str) -> list[Chunk]:
        pieces: list[_Piece] = []
        for section in _sections(text):
            pieces.extend(self._section_pieces(section))

        groups: list[list[_Piece]] = []
        for piece in pieces:
            if groups and self._can_merge(groups[-1], piece):
                groups[-1].append(piece)
            else:
                groups.append([piece])

        chunks: list[Chunk] = []
        for index, group in enumerate(groups):
            if len(group) == 1 and not group[0].body:
                # A bare heading followed by a section nested under it: that section's prefix repeats it.
                nxt = groups[index + 1][0] if index + 1 < len(groups) else None
                if nxt is not None and nxt.path[: len(group[0].path)] == group[0].path:
                    continue
            rendered, heading = self._render(group)
            if not self.fits(rendered, self.max_tokens):
                # Only a lone heading longer than a chunk gets here (merges and splits are measured).
                parts = [self._render([p])[0] for p in self._fit([rendered], ())]
            else:
                parts = [rendered]
            for part in parts:
                if part.strip():
                    chunks.append(Chunk(len(chunks), part, self.count(part), heading))
        return chunks

    def _can_merge(self, group: list[_Piece], piece: _Piece) -> bool:
        if not piece.whole or not all(p.whole for p in group):
            return False
        if piece.level < group[0].level:
            return False  # never run past a heading shallower than the one the chunk started at
        candidate, _ = self._render([*group, piece])
        return self.fits(candidate, self.max_tokens)

    # ---- rendering

    def _prefix(self, path: Path) -> str:
        """The heading path line; shortened, then dropped, if it would eat more than a quarter of a chunk."""
        if not path:
            return ""
        for candidate in (_breadcrumb(path), path[-1][1]):
            if self.fits(candidate, self.max_tokens // 4):
                return candidate
        return ""

    def _render(self, group: list[_Piece]) -> tuple[str, str | None]:
        common = group[0].path
        for piece in group[1:]:
            common = common[: _common_prefix(common, piece.path)]
        return self._render_with_common(group, common)

    def _render_with_common(self, group: list[_Piece], common: Path) -> tuple[str, str | None]:
        """Render ``group`` with ``common`` as the prefix; deeper headings become inline Markdown lines."""
        blocks: list[str] = []
        open_path = common
        for piece in group:
            shared = _common_prefix(open_path, piece.path)
            blocks.extend(f"{'#' * level} {title}" for level, title, _ in piece.path[shared:])
            if piece.body:
                blocks.append(piece.body)
            open_path = piece.path
        content = "\n\n".join(blocks).strip()
        if not content and common:
            # Only bare headings whose titles all went to the prefix: show the last one as content instead.
            return self._render_with_common(group, common[:-1])
        heading = _breadcrumb(common) or None
        prefix = self._prefix(common)
        return (f"{prefix}\n\n{content}" if prefix else content), heading

    # ---- splitting one section

    def _section_pieces(self, section: _Section) -> list[_Piece]:
        whole = _Piece(section.path, "\n\n".join(section.paragraphs), whole=True)
        if not section.paragraphs or self.fits(self._render([whole])[0], self.max_tokens):
            return [whole]  # (a bare heading too long for a chunk is split when rendered, in run())
        return self._fit(section.paragraphs, section.path)

    def _fit(self, paragraphs: list[str], path: Path) -> list[_Piece]:
        """Pack ``paragraphs`` into pieces that, rendered with the prefix for ``path``, fit a chunk."""
        prefix = self._prefix(path)
        budget = self.max_tokens - (self.count(prefix) if prefix else 0)
        # Sums of atom counts equal the count of their concatenation for WordPiece-style tokenizers; for
        # others the rendered chunk is re-measured and the budget tightened until every chunk fits.
        for _ in range(8):
            pieces = [_Piece(path, content, whole=False) for content in self._pack(paragraphs, budget)]
            worst = max(self.count(self._render([p])[0]) for p in pieces)
            if worst <= self.max_tokens:
                return pieces
            budget = max(1, budget - (worst - self.max_tokens))
        # A counter this far from additive: exact character windows, without a prefix, always fit.
        text = "\n\n".join(paragraphs)
        return [_Piece((), atom.text, whole=False) for atom in self._split_chars(text, self.max_tokens, "")]

    def _pack(self, paragraphs: list[str], budget: int) -> list[str]:
        atoms: list[_Atom] = []
        for paragraph in paragraphs:
            atoms.extend(self._atomize(paragraph, budget, "\n\n", level=0))

        contents: list[str] = []
        current: list[_Atom] = []
        used = 0
        for atom in atoms:
            if current and (used + atom.tokens > budget or not self._chars_ok(current, atom)):
                contents.append(_join(current))
                room = min(self.overlap_tokens, budget - atom.tokens)
                current = self._overlap(current, room, self.max_chars - len(atom.text) - 2)
                used = sum(a.tokens for a in current)
            current.append(atom)
            used += atom.tokens
        if current:
            contents.append(_join(current))
        return contents

    def _chars_ok(self, current: list[_Atom], atom: _Atom) -> bool:
        return sum(len(a.text) + len(a.joiner) for a in current) + len(atom.text) + len(atom.joiner) <= self.max_chars

    # Separators from coarse to fine: paragraph parts are lines, then sentences, then words.
    _LEVELS: tuple[tuple[str, str], ...] = (("line", "\n"), ("sentence", " "), ("word", " "))

    def _atomize(self, text: str, budget: int, joiner: str, *, level: int) -> list[_Atom]:
        """Split ``text`` at the coarsest separator that yields pieces fitting ``budget``."""
        if self.fits(text, budget):
            return [_Atom(text, joiner, self.count(text))]
        if level >= len(self._LEVELS):
            return self._split_chars(text, budget, joiner)
        kind, inner = self._LEVELS[level]
        if kind == "line":
            parts = [p for p in text.split("\n") if p.strip()]
        elif kind == "sentence":
            parts = [p for p in _SENTENCE_SPLIT_RE.split(text) if p and p.strip()]
        else:
            parts = [p for p in _WS_RE.split(text) if p]
        if len(parts) <= 1:
            return self._atomize(text, budget, joiner, level=level + 1)
        if kind == "word":
            return self._pack_words(parts, budget, joiner)
        atoms: list[_Atom] = []
        for i, part in enumerate(parts):
            atoms.extend(self._atomize(part, budget, joiner if i == 0 else inner, level=level + 1))
        return atoms

    def _pack_words(self, words: list[str], budget: int, joiner: str) -> list[_Atom]:
        """Word runs of about an eighth of a chunk for a sentence too long for one.

        Runs rather than single words keep tokenizer calls few on huge unpunctuated text; runs rather
        than full-chunk windows leave room for the packer to carry an overlap between chunks.
        """
        target = max(1, budget // 8)
        atoms: list[_Atom] = []
        run: list[str] = []
        run_tokens = 0
        for word in words:
            if not self.fits(word, budget):
                if run:
                    atoms.append(self._atom(" ".join(run), joiner if not atoms else " "))
                    run, run_tokens = [], 0
                atoms.extend(self._split_chars(word, budget, joiner if not atoms else " "))
                continue
            tokens = self.count(word)
            if run and run_tokens + tokens > target:
                atoms.append(self._atom(" ".join(run), joiner if not atoms else " "))
                run, run_tokens = [], 0
            run.append(word)
            run_tokens += tokens
        if run:
            atoms.append(self._atom(" ".join(run), joiner if not atoms else " "))
        return atoms

    def _split_chars(self, text: str, budget: int, joiner: str) -> list[_Atom]:
        """Last resort for one enormous token-less run: the longest prefix that fits, by binary search."""
        atoms: list[_Atom] = []
        rest = text
        while rest:
            lo, hi = 1, min(len(rest), self.max_chars)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.fits(rest[:mid], budget):
                    lo = mid
                else:
                    hi = mid - 1
            atoms.append(self._atom(rest[:lo], joiner if not atoms else ""))
            rest = rest[lo:]
        return atoms

    def _atom(self, text: str, joiner: str) -> _Atom:
        return _Atom(text, joiner, self.count(text))

    def _overlap(self, previous: list[_Atom], room: int, char_room: int) -> list[_Atom]:
        """Tail of the previous chunk to repeat: whole sentences if they fit in ``room``, else words."""
        if room <= 0 or char_room <= 0:
            return []
        source = " ".join(a.text for a in previous[-4:])  # the tail lives in the last few atoms
        tail: list[str] = []
        for sentence in reversed([s for s in _SENTENCE_SPLIT_RE.split(source) if s.strip()]):
            candidate = " ".join([sentence, *tail])
            if len(candidate) > char_room or not self.fits(candidate, room):
                break
            tail.insert(0, sentence)
        if not tail:
            for word in reversed([w for w in _WS_RE.split(source) if w]):
                candidate = " ".join([word, *tail])
                if len(candidate) > char_room or not self.fits(candidate, room):
                    break
                tail.insert(0, word)
        text = " ".join(tail).strip()
        return [_Atom(text, "", self.count(text))] if text else []


def _breadcrumb(path: Path) -> str:
    return " > ".join(title for _, title, _ in path)


def _join(atoms: list[_Atom]) -> str:
    parts: list[str] = []
    for i, atom in enumerate(atoms):
        if i:
            parts.append(atom.joiner)
        parts.append(atom.text)
    return "".join(parts).strip()
