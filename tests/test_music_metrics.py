"""Musical checks (rnnkit.metrics.music) and the n-gram baselines (rnnkit.models.ngram) on hand-made cases."""

import math

import numpy as np
import pytest
import torch

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


def _bass_under_a_rising_soprano(factors):
    """The bass's logits filter where G over C becomes A over ?: a bass D would make a parallel fifth."""
    from rnnkit.apps.music.composer import Composer

    composer = Composer(None, {"voices": ["soprano", "bass"], "steps_per_bar": 16, "ranges": [[0, 127], [0, 127]]})
    adjust = composer._adjust(np.array([67, 60]), ranges=False, parallels=factors)
    return lambda logits: adjust(1, logits, torch.tensor([[69, 0]]))  # the soprano has moved up to A


def test_composer_bans_parallels_below_an_upper_voice():
    logits = _bass_under_a_rising_soprano((0.0, 0.0))(torch.zeros(1, 130))
    assert logits[0, 62] == float("-inf")  # D: a parallel fifth
    assert logits[0, 58] == 0 and logits[0, 128] == 0  # contrary motion, and holding, stay possible
    assert logits[0, 74] == float("-inf")  # D an octave higher: a fifth apart modulo the octave, as the metric counts it
    assert logits[0, 60] == 0  # the bass repeats its C: oblique motion


def test_composer_allow_leaves_the_models_choice():
    model = torch.randn(1, 130, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(_bass_under_a_rising_soprano((1.0, 1.0))(model), model, rtol=0, atol=0)


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.6])
def test_a_parallels_factor_scales_the_models_odds_by_exactly_that_factor(temperature):
    model = torch.randn(1, 130, generator=torch.Generator().manual_seed(1))
    sampled = lambda logits: torch.softmax(logits / temperature, dim=-1)[0]  # noqa: E731 - as StreamModel.sample_row
    free = sampled(_bass_under_a_rising_soprano((1.0, 1.0))(model))
    kept = sampled(_bass_under_a_rising_soprano((0.05, 1.0))(model))
    parallels = [62, 74, 86, 98, 110, 122]  # a D above the bass's C: each makes one parallel fifth with the soprano
    others = [t for t in range(130) if t not in parallels]  # D3 (50) among them: contrary motion
    for parallel in parallels:  # the model's odds times 0.05; the sampled odds times 0.05 ** (1 / T)
        torch.testing.assert_close(kept[parallel] / kept[58], 0.05 ** (1 / temperature) * free[parallel] / free[58])
    torch.testing.assert_close(kept[others] / kept[58], free[others] / free[58])  # the rest keep their odds
    octave_only = sampled(_bass_under_a_rising_soprano((1.0, 0.05))(model))
    torch.testing.assert_close(octave_only, free)  # a fifth apart: the octaves' factor does not apply


def test_a_candidate_with_two_parallels_pays_the_factor_twice():
    from rnnkit.apps.music.composer import Composer

    # soprano C5 and alto C4 both rise a tone; a bass F moving up to G is a fifth below both: two fifths
    composer = Composer(None, {"voices": ["soprano", "alto", "bass"], "steps_per_bar": 16, "ranges": [[0, 127]] * 3})
    adjust = composer._adjust(np.array([72, 60, 53]), ranges=False, parallels=(0.1, 0.5))
    logits = adjust(2, torch.zeros(1, 130), torch.tensor([[74, 62, 0]]))
    assert logits[0, 55].item() == pytest.approx(2 * math.log(0.1))
    assert logits[0, 51].item() == 0  # down to Eb: contrary motion
    # the alto under the soprano: an octave apart, both up a tone to D: one parallel octave
    logits = adjust(1, torch.zeros(1, 130), torch.tensor([[74, 0, 0]]))
    assert logits[0, 62].item() == pytest.approx(math.log(0.5)) and logits[0, 61].item() == 0


def test_greedy_composition_compares_the_penalised_probabilities():
    model = torch.full((1, 130), -10.0)
    model[0, 58] = math.log(0.5)  # the best move without a parallel is half as likely as D
    model[0, 62] = 0.0
    for factor, best in ((0.4, 58), (0.6, 62)):
        assert _bass_under_a_rising_soprano((factor, factor))(model).argmax().item() == best


def test_parallel_factors():
    from rnnkit.apps.music.composer import PARALLELS, parallel_factors

    assert parallel_factors("ban") == (0.0, 0.0) and parallel_factors("Allow") == (1.0, 1.0)
    assert parallel_factors(0.25) == (0.25, 0.25) == parallel_factors("0.25")
    assert parallel_factors("0.01,0.02") == (0.01, 0.02) == parallel_factors((0.01, 0.02))
    assert parallel_factors(PARALLELS) == PARALLELS and all(0 < f < 1 for f in PARALLELS)
    for bad in ("often", "1.5", "-0.1", "nan", "0.1,0.2,0.3", (0.1, "x")):
        with pytest.raises(ValueError, match="--parallels"):
            parallel_factors(bad, "--parallels")
    with pytest.raises(ValueError, match="got '2'"):
        parallel_factors("2")
    with pytest.raises(TypeError, match="'ban' or 'allow'"):
        parallel_factors(True)
