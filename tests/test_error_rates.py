"""Edit distance, CER and WER against hand-computed cases (and jiwer where it is installed)."""

from __future__ import annotations

import math

import pytest

from rnnkit.metrics import Edits, cer, edit_distance, edits, error_rate, wer


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("", "", (0, 0, 0)),
        ("abc", "abc", (0, 0, 0)),
        ("abc", "", (0, 3, 0)),  # all deleted
        ("", "ab", (0, 0, 2)),  # all inserted
        ("abc", "axc", (1, 0, 0)),
        ("kitten", "sitting", (2, 0, 1)),  # k->s, e->i, +g
        ("flaw", "lawn", (0, 1, 1)),  # -f, +n
        ("intention", "execution", (5, 0, 0)),  # distance 5: position by position, i/e n/x t/e e/c n/u
    ],
)
def test_edits_of_hand_computed_cases(reference, hypothesis, expected):
    e = edits(reference, hypothesis)
    assert (e.substitutions, e.deletions, e.insertions) == expected
    assert edit_distance(reference, hypothesis) == sum(expected) == e.distance
    assert edit_distance(hypothesis, reference) == e.distance  # symmetric


def test_error_rates_sum_edits_over_the_corpus():
    # "one two three" -> "one too three four": 1 substitution, 1 insertion over 3 words
    assert wer(["one two three"], ["one too three four"]) == pytest.approx(2 / 3)
    # corpus-level: (1 + 0) / (3 + 2), not the mean of per-utterance rates
    assert wer(["a b c", "d e"], ["a x c", "d e"]) == pytest.approx(1 / 5)
    assert cer(["abcd", "ef"], ["abd", "ef"]) == pytest.approx(1 / 6)
    assert error_rate([[1, 2, 3]], [[3, 2, 1]]) == pytest.approx(2 / 3)
    assert math.isnan(error_rate([[]], [[1]]))
    assert (Edits(1, 0, 0, 3) + Edits(0, 1, 2, 2)).rate == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="must pair up: got 2 and 1"):
        wer(["a", "b"], ["a"])


def test_against_jiwer():
    jiwer = pytest.importorskip("jiwer")
    references = ["the cat sat on the mat", "one two three", "a b c d"]
    hypotheses = ["the cat sit on mat", "one two tree three", "d c b a"]
    assert wer(references, hypotheses) == pytest.approx(jiwer.wer(references, hypotheses))
    assert cer(references, hypotheses) == pytest.approx(jiwer.cer(references, hypotheses))
