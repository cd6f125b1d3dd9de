"""HTML: the readable text, with page chrome dropped and structure kept as Markdown."""

from __future__ import annotations

import re
from typing import Any

from knowledge.parsing.base import ParsedDocument, ParseLimits
from knowledge.parsing.docx import join_blocks
from knowledge.parsing.text import decode_text

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


def parse_html(data: bytes, limits: ParseLimits) -> ParsedDocument:
    from selectolax.lexbor import LexborHTMLParser

    match = _META_CHARSET_RE.search(data[:4096])
    html = decode_text(data, charset_hint=match.group(1).decode("ascii") if match else None)
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
        return join_blocks(self.blocks)

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
