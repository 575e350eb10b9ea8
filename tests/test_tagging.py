"""Sequence tagging: CoNLL reading, conlleval's chunk rules, span F1, and ``rnnkit train tag``."""

from __future__ import annotations

import json
import random

import pytest

from rnnkit.cli import main
from rnnkit.apps.tagging import Tagger, read_conll, span_scores, spans


@pytest.mark.parametrize(
    "labels,expected",
    [
        (["B-PER", "I-PER", "O", "B-LOC"], {("PER", 0, 2), ("LOC", 3, 4)}),  # IOB2
        (["I-PER", "I-PER", "I-LOC", "O"], {("PER", 0, 2), ("LOC", 2, 3)}),  # IOB1: a type change splits
        (["B-PER", "B-PER", "I-PER"], {("PER", 0, 1), ("PER", 1, 3)}),
        (["S-PER", "B-LOC", "E-LOC", "O"], {("PER", 0, 1), ("LOC", 1, 3)}),  # BIOES
        (["O", "I-ORG", "O"], {("ORG", 1, 2)}),  # I- after O starts a chunk, as conlleval does
        (["O", "O"], set()),
    ],
)
def test_spans_follow_conlleval(labels, expected):
    assert spans(labels) == expected


def test_span_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    # gold: PER, LOC, ORG; predicted: PER, ORG, LOC(wrong place); correct: PER, ORG
    scores = span_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["f1/PER"] == 1.0 and scores["f1/LOC"] == 0.0


def write_conll(path, sentences):
    lines = ["-DOCSTART- -X- O", ""]
    for sentence in sentences:
        lines += [f"{word} X {label}" for word, label in sentence] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def generated_sentences(n, seed=0):
    """Names follow 'Mr', places follow 'in': learnable from one word of context."""
    rng = random.Random(seed)
    names, places, fillers = ["Smith", "Jones", "Brown", "Lee"], ["Paris", "Rome", "Oslo"], ["we", "saw", "the", "a"]
    sentences = []
    for _ in range(n):
        sentence = []
        for _ in range(rng.randint(3, 8)):
            roll = rng.random()
            if roll < 0.25:
                sentence += [("Mr", "O"), (rng.choice(names), "B-PER")]
            elif roll < 0.45:
                sentence += [("in", "O"), (rng.choice(places), "B-LOC")]
            else:
                sentence.append((rng.choice(fillers), "O"))
        sentences.append(sentence)
    return sentences


def test_read_conll_and_its_errors(tmp_path):
    path = tmp_path / "train.conll"
    write_conll(path, [[("Mr", "O"), ("Smith", "B-PER")], [("in", "O"), ("Rome", "B-LOC")]])
    assert read_conll(str(path)) == [[("Mr", "O"), ("Smith", "B-PER")], [("in", "O"), ("Rome", "B-LOC")]]
    (tmp_path / "one.conll").write_text("just-a-token\n")
    with pytest.raises(ValueError, match="line 1: expected at least a token and a label"):
        read_conll(str(tmp_path / "one.conll"))
    (tmp_path / "blank.conll").write_text("-DOCSTART- O\n\n")
    with pytest.raises(ValueError, match="holds no sentences"):
        read_conll(str(tmp_path / "blank.conll"))


def test_train_tag_learns_and_reports_span_f1(tmp_path, capsys):
    path = tmp_path / "train.conll"
    write_conll(path, generated_sentences(400))
    code = main(["train", "tag", "--data", str(path), "--run-dir", str(tmp_path / "run"), "--quiet",
                 "--model.encoder.hidden_size=32", "--train.max_epochs=6", "--train.lr=1e-2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    f1 = float(out.split("F1 ")[1].split()[0])
    accuracy = float(out.split("test token accuracy ")[1].split(";")[0])
    assert f1 > 0.95 and accuracy > 0.97, out
    assert "span F1 by type: LOC" in out and (tmp_path / "run" / "vocabulary.json").exists()

    # the trained tagger on new text: `rnnkit tag RUN_DIR FILE`, a sentence a line (issue 13, item 16)
    text = tmp_path / "new.txt"
    text.write_text("we saw Mr Jones in Oslo\nin Rome\n")
    assert main(["tag", str(tmp_path / "run"), str(text)]) == 0
    blocks = capsys.readouterr().out.split("\n\n")
    assert blocks[0].splitlines() == ["we\tO", "saw\tO", "Mr\tO", "Jones\tB-PER", "in\tO", "Oslo\tB-LOC"]
    assert blocks[1].splitlines() == ["in\tO", "Rome\tB-LOC"]

    # `rnnkit evaluate RUN_DIR --data FILE`: the same figures as conlleval's rules give by hand
    held_out = tmp_path / "new.conll"
    sentences = generated_sentences(40, seed=9)
    write_conll(held_out, sentences)
    assert main(["evaluate", str(tmp_path / "run"), "--data", str(held_out), "--json", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    tagger = Tagger.load(tmp_path / "run")
    predicted = tagger.tag([[w for w, _ in s] for s in sentences])
    gold = [[label for _, label in s] for s in sentences]
    assert scores["sentences"] == 40 and scores["f1"] == pytest.approx(span_scores(gold, predicted)["f1"])
    assert f"f1: {scores['f1']:.4f}" in capsys.readouterr().out


def test_tag_bad_data_is_one_line(tmp_path, capsys):
    path = tmp_path / "few.conll"
    write_conll(path, [[("a", "O"), ("b", "B-X")]])
    assert main(["train", "tag", "--data", str(path), "--run-dir", str(tmp_path / "run"), "--quiet"]) == 2
    assert "cannot be split three ways" in capsys.readouterr().err
    assert main(["train", "tag", "--quiet", "--run-dir", str(tmp_path / "r2")]) == 2
    assert "tagging needs --data FILE" in capsys.readouterr().err
