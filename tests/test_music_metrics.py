"""Musical checks (rnnkit.metrics.music) and the n-gram baselines (rnnkit.models.ngram) on hand-made cases."""

import math

import numpy as np
import pytest

from rnnkit.metrics.music import (estimate_key, in_key_fraction, parallel_motion, parse_key, piece_statistics,
                                  range_fraction)
from rnnkit.models.ngram import NGramModel, RepeatModel


def test_key_of_scales():
    c_major = np.array([[p] for p in (60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60)])
    assert estimate_key(c_major) == (0, "major")
    a_minor = np.array([[p] for p in (57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57, 57)])
    assert estimate_key(a_minor) == (9, "minor")
    assert estimate_key(c_major + 7) == (7, "major")  # transposed: G major


def test_in_key_fraction_counts_onsets_only():
    s = np.array([[60], [60], [61], [64]])
    onsets = np.array([[True], [False], [True], [True]])
    assert in_key_fraction(s, onsets, (0, "major")) == pytest.approx(2 / 3)
    assert in_key_fraction(s, onsets, (6, "major")) == pytest.approx(1 / 3)  # F# major: only C# of C, C#, E


def test_parallel_motion_cases():
    # soprano and bass a fifth apart, both up a tone: one parallel fifth
    assert parallel_motion(np.array([[67, 60], [69, 62]])) == {"fifths": 1, "octaves": 0}
    # contrary motion into a fifth: none
    assert parallel_motion(np.array([[67, 60], [69, 58]])) == {"fifths": 0, "octaves": 0}
    # one voice holds: oblique motion, none
    assert parallel_motion(np.array([[67, 60], [67, 62]])) == {"fifths": 0, "octaves": 0}
    # octaves (compound) in similar motion, and a twelfth counts as a fifth
    assert parallel_motion(np.array([[72, 60], [74, 62]])) == {"fifths": 0, "octaves": 1}
    assert parallel_motion(np.array([[79, 60], [81, 62]])) == {"fifths": 1, "octaves": 0}
    # a silent voice never makes a parallel
    assert parallel_motion(np.array([[67, -1], [69, 62]])) == {"fifths": 0, "octaves": 0}
    # fifth to octave: not parallel
    assert parallel_motion(np.array([[67, 60], [74, 62]])) == {"fifths": 0, "octaves": 0}


def test_range_fraction_and_statistics():
    s = np.array([[60, 40], [70, 41]])
    assert range_fraction(s, s >= 0, [(60, 65), (40, 45)]) == 0.75
    stats = piece_statistics(np.array([[67, 60], [69, 62], [71, 64]]), np.ones((3, 2), bool))
    assert stats["fifths_per_100"] == pytest.approx(100.0)  # two parallels in two transitions


def test_parse_key():
    assert parse_key("C") == (0, "major")
    assert parse_key("g minor") == (7, "minor")
    assert parse_key("F#") == (6, "major")
    assert parse_key("bb") == (10, "minor")
    with pytest.raises(ValueError, match="key"):
        parse_key("H major")
    with pytest.raises(ValueError, match="mode"):
        parse_key("C dorian")


def test_ngram_witten_bell_by_hand():
    model = NGramModel(2).fit([["a", "b", "a", "b"]])
    unigram_b = (2 + 2 * (1 / 3)) / (4 + 2)  # c(b)=2, c=4, T=2 types, base uniform over {a, b, unknown}
    assert model.probability("b", [], order=1) == pytest.approx(unigram_b)
    assert model.probability("b", ["a"]) == pytest.approx((2 + 1 * unigram_b) / (2 + 1))
    for history in ([], ["a"], ["b"], ["zz"]):  # a distribution over every symbol, unseen included
        assert sum(model.probability(w, history) for w in ("a", "b", "zz")) == pytest.approx(1.0)
    assert model.log_likelihood(["a", "b"]) == pytest.approx(
        math.log(model.probability("a", [])) + math.log(model.probability("b", ["a"])))
    with pytest.raises(ValueError, match="order"):
        model.probability("a", [], order=3)


def test_ngram_higher_order_helps_on_a_pattern():
    seq = list("abcabcabcabc")
    model = NGramModel(3).fit([seq])
    assert model.log_likelihood(seq, order=3) > model.log_likelihood(seq, order=1)


def test_repeat_model():
    base = lambda w: 0.5  # noqa: E731 - two symbols
    model = RepeatModel(base).fit([["a", "a", "a", "b"]])
    assert model.rate == pytest.approx(1 / 3)
    expected = math.log(0.5) + 2 * math.log(2 / 3 + 1 / 6) + math.log(1 / 6)
    assert model.log_likelihood(["a", "a", "a", "b"]) == pytest.approx(expected)


def test_composer_removes_parallels_below_an_upper_voice():
    import torch

    from rnnkit.apps.music.composer import Composer

    composer = Composer(None, {"voices": ["soprano", "bass"], "steps_per_bar": 16, "ranges": [[0, 127], [0, 127]]})
    adjust = composer._adjust(np.array([67, 60]), ranges=False, parallels=True)  # a fifth, G over C
    row = torch.tensor([[69, 0]])  # the soprano has moved up to A
    logits = adjust(1, torch.zeros(1, 130), row)
    assert logits[0, 62] == float("-inf")  # D: a parallel fifth
    assert logits[0, 58] == 0 and logits[0, 128] == 0  # contrary motion, and holding, stay possible
    assert logits[0, 74] == float("-inf")  # D an octave higher: a fifth apart modulo the octave, as the metric counts it
