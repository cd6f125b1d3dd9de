"""A streamed answer's tokens are counted as it arrives (gateways.metering.TokenTally): the same count as the
whole text would give, while only a few KB of it are kept."""

from __future__ import annotations

import random

from aivax import tokens
from gateways.metering import TokenTally


def test_tally_counts_like_the_whole_text_and_keeps_only_a_tail() -> None:
    rng = random.Random(7)
    words = ["the", "ledger", "holds", "exactly", "what", "was", "billed,", "naïve", "東京", "x" * 12, "\n"]
    pieces = [" " + rng.choice(words) for _ in range(20_000)]
    tally = TokenTally()
    longest_tail = 0
    for piece in pieces:
        tally.append(piece)
        longest_tail = max(longest_tail, len(tally.tail))
    assert tally.total() == tokens.count_text("".join(pieces))
    assert longest_tail < 3 * TokenTally.PIECE_CHARS


def test_tally_of_an_unbroken_string_stays_small_and_close() -> None:
    tally = TokenTally()
    for _ in range(5_000):
        tally.append("abcdefghij")
    whole = tokens.count_text("abcdefghij" * 5_000)
    assert len(tally.tail) < 3 * TokenTally.PIECE_CHARS
    assert abs(tally.total() - whole) <= whole // 100 + 2
