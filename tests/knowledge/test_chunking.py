"""Chunking: boundaries (headings > paragraphs > sentences > words > characters), limits, overlap, determinism."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.chunking import Chunk, chunk_text
from knowledge.embeddings import count_tokens


def words(text: str) -> int:
    """A transparent counter: one token per whitespace-separated word."""
    return len(text.split())


def body(chunk: Chunk) -> str:
    """Chunk text without its heading-path prefix line."""
    return chunk.text.split("\n\n", 1)[1] if chunk.heading else chunk.text


def check_invariants(chunks: list[Chunk], counter, max_tokens: int) -> None:
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.text.strip(), "empty chunk"
        assert c.text == c.text.strip()
        assert c.token_count == counter(c.text)
        assert c.token_count <= max_tokens


def sentences(prefix: str, n: int) -> str:
    return " ".join(f"{prefix} sentence {i} has exactly seven words." for i in range(n))


def test_empty_and_blank_text() -> None:
    assert chunk_text("", count_tokens=words) == []
    assert chunk_text(" \n\n\t ", count_tokens=words) == []


def test_small_document_is_one_chunk_with_its_structure() -> None:
    text = "# Title\n\nIntro.\n\n## Part\n\nDetails here."
    chunks = chunk_text(text, max_tokens=50, count_tokens=words)
    assert len(chunks) == 1
    assert chunks[0].heading == "Title"
    assert chunks[0].text == "Title\n\nIntro.\n\n## Part\n\nDetails here."


def test_splits_at_headings_with_heading_path_prefix() -> None:
    text = (
        "# Manual\n\n"
        "## Install\n\n" + sentences("Install", 4) + "\n\n"
        "### Linux\n\n" + sentences("Linux", 4) + "\n\n"
        "## Billing\n\n" + sentences("Billing", 4)
    )
    chunks = chunk_text(text, max_tokens=40, overlap_tokens=0, count_tokens=words)
    check_invariants(chunks, words, 40)
    # The bare "# Manual" heading joins its first subsection; the rest carry the path as a prefix.
    assert [c.heading for c in chunks] == ["Manual", "Manual > Install > Linux", "Manual > Billing"]
    assert chunks[0].text.startswith("Manual\n\n## Install\n\nInstall sentence 0")
    assert chunks[1].text.startswith("Manual > Install > Linux\n\nLinux sentence 0")
    # Each chunk holds one section's text only.
    assert "Linux" not in body(chunks[0]) and "Billing" not in body(chunks[1])


def test_small_sibling_sections_are_packed_but_not_across_a_shallower_heading() -> None:
    intro = sentences("Faq", 3)  # 21 words
    text = f"# FAQ\n\n{intro}\n\n## Q1\n\nA1.\n\n## Q2\n\nA2.\n\n## Q3\n\nA3.\n\n# Other\n\n## Q4\n\nA4."
    chunks = chunk_text(text, max_tokens=30, overlap_tokens=0, count_tokens=words)
    check_invariants(chunks, words, 30)
    assert [c.text for c in chunks] == [
        f"FAQ\n\n{intro}\n\n## Q1\n\nA1.\n\n## Q2\n\nA2.",  # Q3 would not fit
        "FAQ > Q3\n\nA3.",  # starts at level 2: "# Other" (level 1) may not join it
        "Other\n\n## Q4\n\nA4.",
    ]
    assert [c.heading for c in chunks] == ["FAQ", "FAQ > Q3", "Other"]


def test_same_titled_sections_stay_distinct() -> None:
    text = "## Example\n\nfirst\n\n## Example\n\nsecond"
    chunks = chunk_text(text, max_tokens=20, count_tokens=words)
    assert [c.text for c in chunks] == ["## Example\n\nfirst\n\n## Example\n\nsecond"]


def test_prefers_paragraph_boundaries() -> None:
    p1 = sentences("First", 3)  # 21 words
    p2 = sentences("Second", 3)
    chunks = chunk_text(f"{p1}\n\n{p2}", max_tokens=30, overlap_tokens=0, count_tokens=words)
    assert [c.text for c in chunks] == [p1, p2]


def test_long_paragraph_splits_at_sentences_with_overlap() -> None:
    text = sentences("Topic", 20)  # 140 words, 7 per sentence
    chunks = chunk_text(text, max_tokens=30, overlap_tokens=8, count_tokens=words)
    check_invariants(chunks, words, 30)
    assert len(chunks) > 4
    for c in chunks:
        assert c.text.startswith("Topic sentence") and c.text.endswith("words.")
    for prev, nxt in itertools.pairwise(chunks):
        last_sentence = prev.text.rsplit("Topic", 1)[1]
        assert nxt.text.startswith("Topic" + last_sentence), "overlap should repeat the last whole sentence"
    # Every sentence survives.
    joined = " ".join(c.text for c in chunks)
    assert all(f"sentence {i} " in joined for i in range(20))


def test_overlap_zero_means_disjoint_chunks() -> None:
    text = sentences("Topic", 20)
    chunks = chunk_text(text, max_tokens=30, overlap_tokens=0, count_tokens=words)
    assert sum(words(c.text) for c in chunks) == words(text)


def test_unpunctuated_text_falls_back_to_words_with_overlap() -> None:
    text = " ".join(f"w{i}" for i in range(300))
    chunks = chunk_text(text, max_tokens=50, overlap_tokens=10, count_tokens=words)
    check_invariants(chunks, words, 50)
    numbers = [[int(w[1:]) for w in c.text.split()] for c in chunks]
    for seq in numbers:
        assert seq == list(range(seq[0], seq[-1] + 1)), "words stay in order, none skipped"
    for prev, nxt in itertools.pairwise(numbers):
        shared = prev[-1] - nxt[0] + 1
        assert 1 <= shared <= 10, "consecutive chunks overlap by at most overlap_tokens words"
    assert numbers[0][0] == 0 and numbers[-1][-1] == 299


def test_giant_single_word_is_split_by_characters() -> None:
    blob = "A" * 5000  # e.g. a base64 image someone pasted
    chunks = chunk_text(f"Intro line.\n\n{blob}", max_tokens=64, overlap_tokens=0, count_tokens=count_tokens)
    check_invariants(chunks, count_tokens, 64)
    assert "".join(c.text for c in chunks[1:]).replace("Intro line.", "").count("A") + chunks[0].text.count("A") == 5000
    # WordPiece counts an over-long word as one [UNK]: the character cap keeps chunks small anyway.
    assert max(len(c.text) for c in chunks) <= 64 * 10


def test_lines_split_before_sentences_for_tabular_text() -> None:
    rows = "\n".join(f"name: Person {i}; city: Town {i}; age: {20 + i}" for i in range(30))
    chunks = chunk_text(rows, max_tokens=40, overlap_tokens=0, count_tokens=words)
    check_invariants(chunks, words, 40)
    for c in chunks:
        for line in c.text.split("\n"):
            assert re.fullmatch(r"name: Person \d+; city: Town \d+; age: \d+", line), "a row was cut"


def test_fenced_code_is_not_a_heading() -> None:
    text = "# Setup\n\n```bash\n# install deps\npip install x\n```\n\nDone."
    chunks = chunk_text(text, max_tokens=100, count_tokens=words)
    assert len(chunks) == 1
    assert chunks[0].heading == "Setup"
    assert "# install deps" in chunks[0].text


def test_setext_and_html_headings() -> None:
    text = "Guide\n=====\n\nIntro text.\n\n<h2 class='x'>Step <b>one</b></h2>\n" + sentences("Step", 6)
    chunks = chunk_text(text, max_tokens=30, overlap_tokens=0, count_tokens=words)
    assert chunks[0].text == "Guide\n\nIntro text."
    assert {c.heading for c in chunks[1:]} == {"Guide > Step one"}


def test_hashtag_without_space_is_text() -> None:
    chunks = chunk_text("#notaheading\n\nplain", max_tokens=20, count_tokens=words)
    assert [(c.text, c.heading) for c in chunks] == [("#notaheading\n\nplain", None)]


def test_lone_heading_keeps_its_title() -> None:
    chunks = chunk_text("# Only a title", count_tokens=words)
    assert [(c.text, c.heading) for c in chunks] == [("# Only a title", None)]


def test_overlong_heading_path_is_shortened() -> None:
    long_title = " ".join(["word"] * 30)
    text = f"# {long_title}\n\n## Short\n\n" + sentences("Body", 10)
    chunks = chunk_text(text, max_tokens=40, overlap_tokens=0, count_tokens=words)
    check_invariants(chunks, words, 40)
    assert all(c.text.startswith("Short\n\n") for c in chunks)
    assert all(c.heading == f"{long_title} > Short" for c in chunks)


def test_real_tokenizer_limits_and_determinism() -> None:
    text = "\n\n".join(f"## Section {s}\n\n" + sentences(f"Section{s}", 25) for s in range(5))
    first = chunk_text(text, max_tokens=128, overlap_tokens=16, count_tokens=count_tokens)
    second = chunk_text(text, max_tokens=128, overlap_tokens=16, count_tokens=count_tokens)
    check_invariants(first, count_tokens, 128)
    assert first == second
    assert len({c.heading for c in first}) == 5


@pytest.mark.parametrize(("max_tokens", "overlap"), [(4, 0), (100, -1)])
def test_invalid_parameters(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("text", max_tokens=max_tokens, overlap_tokens=overlap, count_tokens=words)


_WORD = st.text(alphabet="abcdefghij.!?#-= ", min_size=1, max_size=12)
_LINE = st.lists(_WORD, min_size=0, max_size=25).map(" ".join)
_DOC = st.lists(st.one_of(_LINE, st.just(""), st.just("## Head"), st.just("```")), max_size=40).map("\n".join)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_DOC, max_tokens=st.integers(8, 60), overlap=st.integers(0, 4))
def test_property_limits_and_no_lost_words(text: str, max_tokens: int, overlap: int) -> None:
    chunks = chunk_text(text, max_tokens=max_tokens, overlap_tokens=overlap, count_tokens=words)
    check_invariants(chunks, words, max_tokens)
    # A heading path too long to prefix a small chunk is dropped from its text but kept in `chunk.heading`.
    produced = " ".join(c.text + " " + (c.heading or "") for c in chunks)
    for token in text.split():
        if token.strip("#=-`") and not re.fullmatch(r"#{1,6}", token):
            assert token in produced or token.rstrip("#") in produced
