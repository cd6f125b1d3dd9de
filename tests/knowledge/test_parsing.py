"""Document parsing on real files built in memory: PDF, DOCX, HTML, CSV, JSON(L), text, and hostile inputs."""

from __future__ import annotations

import json
import random

import pytest

from knowledge.parsing import DocumentParseError, ParseLimits, detect_kind, parse_document
from tests.knowledge.fixtures import encrypt_pdf, make_docx, make_docx_bomb, make_pdf, make_zip


def _error(data: bytes, filename: str, **kwargs: object) -> DocumentParseError:
    with pytest.raises(DocumentParseError) as info:
        parse_document(data, filename=filename, **kwargs)  # type: ignore[arg-type]
    return info.value


# ---- PDF


def test_pdf_text_pages_and_title() -> None:
    pdf = make_pdf([["Quarterly report (draft)", "Revenue grew 12%"], ["Second page text"]], title="Q3 Report")
    doc = parse_document(pdf, filename="report.pdf", content_type="application/pdf")
    assert doc.kind == "pdf"
    assert doc.page_count == 2
    assert doc.title == "Q3 Report"
    assert doc.text == "Quarterly report (draft)\nRevenue grew 12%\n\nSecond page text"


def test_pdf_detected_by_magic_despite_wrong_name_and_type() -> None:
    pdf = make_pdf([["magic wins"]])
    doc = parse_document(pdf, filename="upload.bin", content_type="application/octet-stream")
    assert (doc.kind, doc.text) == ("pdf", "magic wins")


def test_password_protected_pdf_is_rejected() -> None:
    locked = encrypt_pdf(make_pdf([["secret plans"]]), user_password="hunter2")
    err = _error(locked, "locked.pdf")
    assert err.code == "encrypted"
    assert "password" in err.reason.lower()


def test_pdf_with_only_an_owner_password_opens() -> None:
    # Permission-only encryption (empty user password) is common and must not block ingestion.
    restricted = encrypt_pdf(make_pdf([["readable by anyone"]]), user_password="")
    assert parse_document(restricted, filename="r.pdf").text == "readable by anyone"


def test_pdf_over_page_limit() -> None:
    pdf = make_pdf([["p1"], ["p2"], ["p3"]])
    err = _error(pdf, "long.pdf", limits=ParseLimits(max_pdf_pages=2))
    assert err.code == "too_many_pages"
    assert "3 pages" in err.reason
    assert parse_document(pdf, filename="long.pdf", limits=ParseLimits(max_pdf_pages=3)).page_count == 3


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7\nthis is not a pdf body at all", make_pdf([["truncated document"]])[:150]],
    ids=["garbage-body", "truncated"],
)
def test_corrupt_pdf(data: bytes) -> None:
    err = _error(data, "broken.pdf")
    assert err.code in ("corrupt", "empty")


def test_pdf_without_text_layer_mentions_ocr() -> None:
    err = _error(make_pdf([[], []]), "scan.pdf")
    assert err.code == "empty"
    assert "OCR" in err.reason


def test_named_pdf_that_is_not_a_pdf() -> None:
    err = _error(b"just some words", "fake.pdf")
    assert err.code == "corrupt"
    assert "not a valid PDF" in err.reason


# ---- DOCX


def test_docx_headings_lists_and_tables() -> None:
    doc = parse_document(make_docx(), filename="handbook.docx")
    assert doc.kind == "docx"
    assert doc.title == "Employee Handbook"
    assert doc.text == (
        "# Employee Handbook\n\n"
        "# Vacation policy\n\n"
        "Full-time employees receive twenty-five days of paid vacation per year.\n\n"
        "- Carry over up to five days\n"
        "- Request leave two weeks ahead\n\n"
        "## Office locations\n\n"
        "City | Address\n"
        "Lisbon | Rua Augusta 10"
    )


def test_docx_bomb_rejected_before_inflating() -> None:
    bomb = make_docx_bomb(64 * 1024 * 1024)
    assert len(bomb) < 200_000  # the point of a bomb: tiny on the wire
    err = _error(bomb, "bomb.docx")
    assert err.code == "archive_bomb"


def test_docx_total_uncompressed_size_limit() -> None:
    # Incompressible parts: the ratio check does not fire, the total size does.
    rng = random.Random(1)
    parts = {f"word/media/image{i}.bin": rng.randbytes(300_000) for i in range(4)}
    docx = make_zip({"word/document.xml": b"<w:document/>", **parts})
    err = _error(docx, "big.docx", limits=ParseLimits(max_zip_uncompressed_bytes=1_000_000))
    assert err.code == "archive_bomb"
    assert "unpacks to more than" in err.reason


def test_docx_too_many_entries() -> None:
    entries = {f"word/part{i}.xml": b"<x/>" for i in range(50)}
    docx = make_zip({"word/document.xml": b"<w:document/>", **entries})
    err = _error(docx, "many.docx", limits=ParseLimits(max_zip_entries=20))
    assert err.code == "archive_bomb"
    assert "51 entries" in err.reason


def test_docx_with_broken_xml_is_corrupt() -> None:
    docx = make_zip(
        {
            "[Content_Types].xml": b"<Types",  # truncated XML
            "word/document.xml": b"<w:document/>",
        }
    )
    assert _error(docx, "bad.docx").code == "corrupt"


def test_other_zip_formats_are_unsupported() -> None:
    xlsx = make_zip({"xl/workbook.xml": b"<workbook/>"})
    assert _error(xlsx, "sheet.xlsx").code == "unsupported_type"
    plain = make_zip({"notes.txt": b"hello"})
    err = _error(plain, "files.zip")
    assert err.code == "unsupported_type"
    assert "ZIP" in err.reason


# ---- HTML

NOISY_HTML = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Shipping | Acme</title>
<style>body { color: red }</style><script>window.track("pageview")</script></head>
<body>
<header><a href="/">Acme home</a> <a href="/login">Log in</a></header>
<nav><ul><li><a href="/a">Products</a></li><li><a href="/b">Pricing</a></li></ul></nav>
<div role="navigation">Breadcrumb menu</div>
<main>
  <h1>Shipping <em>policy</em></h1>
  <p>We ship   worldwide
     within 3 days.<br>Express is available.</p>
  <h2>Costs</h2>
  <ul><li>EU: free<ul><li>islands: 5 EUR</li></ul></li><li>US: 10 USD</li></ul>
  <table><tr><th>Zone</th><th>Days</th></tr><tr><td><p>Asia</p></td><td>7</td></tr></table>
  <div hidden>internal note</div><span aria-hidden="true">icon</span>
  <noscript>enable js</noscript>
</main>
<aside>Related posts</aside>
<footer>Copyright Acme</footer>
<script>console.log("late")</script>
</body></html>"""


def test_html_keeps_content_and_structure_drops_noise() -> None:
    doc = parse_document(NOISY_HTML, filename="shipping.html")
    assert doc.kind == "html"
    assert doc.title == "Shipping | Acme"
    assert doc.text == (
        "# Shipping policy\n\n"
        "We ship worldwide within 3 days.\n"
        "Express is available.\n\n"
        "## Costs\n\n"
        "- EU: free\n"
        "  - islands: 5 EUR\n"
        "- US: 10 USD\n\n"
        "Zone | Days\n"
        "Asia | 7"
    )
    for noise in ("track", "pageview", "Log in", "Products", "Breadcrumb", "internal", "icon", "enable js",
                  "Related", "Copyright", "color"):  # fmt: skip
        assert noise not in doc.text


def test_html_without_main_uses_body_and_drops_site_header() -> None:
    html = b"<html><body><header>Site chrome</header><article><header><h1>Post</h1></header><p>Body.</p>"
    doc = parse_document(html, filename="post.htm")
    assert doc.text == "# Post\n\nBody."


def test_html_sniffed_without_extension_and_legacy_charset() -> None:
    html = "<!doctype html><html><head><meta charset=windows-1252></head><body><p>Caf\u00e9 cr\u00e8me</p>"
    doc = parse_document(html.encode("cp1252"), filename="index")
    assert (doc.kind, doc.text) == ("html", "Caf\u00e9 cr\u00e8me")


def test_html_with_only_scripts_is_empty() -> None:
    err = _error(b"<html><body><script>alert(1)</script><nav>menu</nav></body></html>", "x.html")
    assert err.code == "empty"


def test_deeply_nested_html_does_not_crash() -> None:
    html = "<div>" * 5000 + "deep text" + "</div>" * 5000
    assert parse_document(html.encode(), filename="deep.html").text == "deep text"


# ---- CSV / JSON / JSONL


def test_csv_rows_become_labelled_lines() -> None:
    data = b'name,age,city\r\nBob,42,Lisbon\r\nAnn,,"Porto, PT"\r\n,,\r\n'
    doc = parse_document(data, filename="people.csv")
    assert doc.kind == "csv"
    assert doc.text == "name: Bob; age: 42; city: Lisbon\nname: Ann; city: Porto, PT"


def test_csv_semicolon_dialect_and_cp1252() -> None:
    data = "produto;pre\u00e7o\nma\u00e7\u00e3;1,20\n".encode("cp1252")
    doc = parse_document(data, filename="precos.csv", content_type="text/csv")
    assert doc.text == "produto: ma\u00e7\u00e3; pre\u00e7o: 1,20"


def test_json_is_flattened() -> None:
    data = json.dumps(
        [
            {"title": "Refunds", "meta": {"author": "Ada", "tags": ["billing", "policy"]}, "draft": False},
            {"title": "Shipping", "sections": [{"h": "Costs"}], "empty": None},
        ]
    ).encode()
    doc = parse_document(data, filename="kb.json")
    assert doc.text == (
        "title: Refunds\nmeta.author: Ada\nmeta.tags: billing, policy\ndraft: false\n\n"
        "title: Shipping\nsections[0].h: Costs"
    )


def test_jsonl_records_and_bad_line() -> None:
    good = b'{"q": "What is X?", "a": "X is Y."}\n\n{"q": "Why?", "a": "Because."}\n'
    assert parse_document(good, filename="faq.jsonl").text == "q: What is X?\na: X is Y.\n\nq: Why?\na: Because."
    err = _error(good + b"{not json}\n", "faq.jsonl")
    assert "Line 4" in err.reason


def test_invalid_json() -> None:
    err = _error(b'{"a": ', "x.json")
    assert err.code == "corrupt"
    assert "not valid JSON" in err.reason


def test_json_sniffed_from_unknown_extension() -> None:
    assert parse_document(b'{"k": "v"}', filename="data.weird").kind == "json"


# ---- text, encodings, binary


def test_markdown_title_and_crlf() -> None:
    doc = parse_document(b"# Guide\r\n\r\n\r\n\r\nStep one.   \r\n", filename="guide.md")
    assert (doc.kind, doc.title, doc.text) == ("md", "Guide", "# Guide\n\nStep one.")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("\ufeffna\u00efve caf\u00e9".encode(), "na\u00efve caf\u00e9"),  # UTF-8 with BOM
        ("na\u00efve caf\u00e9".encode("utf-16"), "na\u00efve caf\u00e9"),  # UTF-16 with BOM
        ("plain ascii words".encode("utf-16-le"), "plain ascii words"),  # UTF-16 without BOM
        ("na\u00efve \u20ac5".encode("cp1252"), "na\u00efve \u20ac5"),  # Windows-1252 fallback
    ],
    ids=["utf8-bom", "utf16-bom", "utf16le-nobom", "cp1252"],
)
def test_text_encodings(data: bytes, expected: str) -> None:
    assert parse_document(data, filename="notes.txt").text == expected


def test_binary_garbage_is_rejected() -> None:
    garbage = random.Random(3).randbytes(20_000)
    err = _error(garbage, "notes.txt")
    assert err.code == "unsupported_type"
    assert "binary" in err.reason


def test_known_binary_formats_named_in_error() -> None:
    err = _error(b"\x89PNG\r\n\x1a\n" + bytes(100), "photo.png")
    assert err.code == "unsupported_type"
    assert "PNG image" in err.reason
    assert _error(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "old.doc").reason.startswith("Legacy Word")


def test_size_limit_and_empty() -> None:
    err = _error(b"x" * 2048, "big.txt", limits=ParseLimits(max_bytes=1024))
    assert err.code == "too_large"
    assert "2.0 KiB" in err.reason
    assert _error(b"", "empty.txt").code == "empty"
    assert _error(b"  \n\t\n", "blank.txt").code == "empty"


def test_detect_kind_prefers_extension_then_content_type() -> None:
    assert detect_kind(b"a,b\n1,2", filename="x.csv", content_type="text/plain") == "csv"
    assert detect_kind(b"a,b\n1,2", filename="upload", content_type="text/csv; charset=utf-8") == "csv"
    assert detect_kind(b"hello", filename="README", content_type=None) == "txt"
