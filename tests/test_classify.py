"""Text classification: metrics by hand, tokenizer and split, ``rnnkit train classify`` and ``rnnkit predict``."""

from __future__ import annotations

import csv
import doctest
import io
import json
import random

import pytest
import torch

from rnnkit.cli import main
from rnnkit.data import tokenizers
from rnnkit.metrics import classification as metrics
from rnnkit.apps import classify
from rnnkit.apps.classify import Classifier, WordTokenizer, encode_texts, split_examples

# --- metrics, against counts worked out by hand ------------------------------------------------
#   truth 0 0 0 0 1 1 1 2 2 2
#   guess 0 0 1 2 1 1 0 2 2 2
TRUTH = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
GUESS = torch.tensor([0, 0, 1, 2, 1, 1, 0, 2, 2, 2])


def test_confusion_matrix_and_accuracy_by_hand():
    confusion = metrics.confusion_matrix(TRUTH, GUESS, 3)
    assert confusion.tolist() == [[2, 1, 1], [1, 2, 0], [0, 0, 3]]  # rows true, columns predicted
    assert metrics.accuracy(TRUTH, GUESS) == pytest.approx(7 / 10)
    assert metrics.confusion_matrix(TRUTH, GUESS, 4)[3].tolist() == [0, 0, 0, 0]  # a class never seen


def test_precision_recall_f1_and_macro_f1_by_hand():
    scores = metrics.per_class(metrics.confusion_matrix(TRUTH, GUESS, 3))
    # class 0: tp 2, predicted 3, actual 4; class 1: tp 2, 3, 3; class 2: tp 3, 4, 3
    precision, recall = [2 / 3, 2 / 3, 3 / 4], [2 / 4, 2 / 3, 3 / 3]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]  # 4/7, 2/3, 6/7
    torch.testing.assert_close(scores.precision, torch.tensor(precision, dtype=torch.float64))
    torch.testing.assert_close(scores.recall, torch.tensor(recall, dtype=torch.float64))
    torch.testing.assert_close(scores.f1, torch.tensor([4 / 7, 2 / 3, 6 / 7], dtype=torch.float64))
    assert scores.support.tolist() == [4, 3, 3]
    assert metrics.macro_f1(metrics.confusion_matrix(TRUTH, GUESS, 3)) == pytest.approx(sum(f1) / 3)


def test_classes_never_predicted_or_absent_score_zero_not_nan():
    # class 1 is never predicted (precision 0/0) and class 2 never occurs (recall 0/0)
    confusion = metrics.confusion_matrix(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 0]), 3)
    scores = metrics.per_class(confusion)
    assert scores.precision.tolist() == [2 / 3, 0.0, 0.0] and scores.recall.tolist() == [1.0, 0.0, 0.0]
    assert scores.f1[0].item() == pytest.approx(0.8) and scores.f1[1:].tolist() == [0.0, 0.0]
    assert metrics.macro_f1(confusion) == pytest.approx(0.8 / 3)
    assert metrics.accuracy(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long)) == 0.0


def test_majority_baseline_uses_the_training_majority_on_the_test_labels():
    train, test = torch.tensor([1, 1, 0, 1, 2]), torch.tensor([0, 0, 1, 2])
    assert metrics.majority_baseline(train, test, 3) == (1, 0.25)


def test_tables_are_small_and_aligned():
    table = metrics.format_confusion(torch.tensor([[12, 3], [4, 100]]), ["negative", "positive"])
    assert table.splitlines() == [
        "true \\ predicted  negative  positive",
        "negative                12         3",
        "positive                 4       100",
    ]
    scores = metrics.per_class(torch.tensor([[1, 1], [0, 2]]))
    lines = metrics.format_per_class(scores, ["neg", "pos"]).splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert lines[1].split() == ["neg", "1.000", "0.500", "0.667", "2"]


@pytest.mark.parametrize(
    "args,error,message",
    [
        ((torch.tensor([0, 1]), torch.tensor([0]), 2), ValueError, "same length"),
        ((torch.tensor([0, 2]), torch.tensor([0, 1]), 2), ValueError, r"targets must lie in \[0, 1\]"),
        ((torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), 2), TypeError, "integer class indices"),
        ((torch.tensor([[0, 1]]), torch.tensor([[0, 1]]), 2), ValueError, "must be 1-D"),
        (([0, 1], torch.tensor([0, 1]), 2), TypeError, "must be a tensor"),
        ((torch.tensor([0, 1]), torch.tensor([0, 1]), 0), ValueError, "num_classes must be a positive integer"),
    ],
)
def test_metrics_reject_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        metrics.confusion_matrix(*args)


@pytest.mark.parametrize("module", [metrics, tokenizers])  # the word tokenizer's examples
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --- tokenizer, encoding, split ------------------------------------------------------------------
def test_word_tokenizer_counts_training_words_and_round_trips_through_json():
    tok = WordTokenizer.train(["it's great, really great!", "isn't great"], min_count=1)
    assert WordTokenizer.tokens("it's great, really!") == ["it's", "great", ",", "really", "!"]
    assert tok.symbols[:3] == ["<pad>", "<unk>", "great"]  # the most frequent word first
    assert tok.encode("great zebra") == [2, 1]
    again = classify.tokenizer_from_dict(json.loads(json.dumps(tok.to_json())))
    assert again.encode("isn't it great") == tok.encode("isn't it great")
    rare = WordTokenizer.train(["a a b"], min_count=2)
    assert rare.encode("a b") == [2, 1]


def test_encode_texts_pads_truncates_and_never_gives_an_empty_sequence():
    tok = WordTokenizer.train(["a b c d"], min_count=1)
    ids, lengths = encode_texts(tok, ["A b", "a b c d", ""], lowercase=True, max_length=3)
    assert lengths.tolist() == [2, 3, 1]
    assert ids.tolist() == [[2, 3, 0], [2, 3, 4], [1, 0, 0]]


def test_batches_are_cut_to_their_longest_text_and_token_dropout_is_seeded():
    torch.manual_seed(0)
    lengths = torch.randint(1, 30, (64,))
    ids = torch.randint(2, 50, (64, 30)) * (torch.arange(30) < lengths[:, None])  # 0 past each end
    targets = torch.randint(0, 2, (64,))
    plain = classify.PaddedBatches(ids, targets, lengths, batch_size=8, seed=1)
    for x, _, n in plain.epoch(0):
        assert x.shape[1] == int(n.max()) and bool((x[torch.arange(x.shape[1]) >= n[:, None]] == 0).all())
    dropped = classify.PaddedBatches(ids, targets, lengths, batch_size=8, seed=1, token_dropout=0.3)
    kept = list(plain.epoch(2))
    batches = list(dropped.epoch(2))
    changed = total = 0
    for (x, y, n), (x0, y0, n0) in zip(batches, kept):
        assert torch.equal(y, y0) and torch.equal(n, n0)  # the same rows in the same order
        assert bool((x[x != x0] == 1).all()) and bool((x[x0 == 0] == 0).all())  # only real tokens become <unk>
        changed, total = changed + int((x != x0).sum()), total + int(n.sum())
    assert 0.2 < changed / total < 0.4
    resumed = list(dropped.epoch(2, start=5))  # a resumed run draws the same drops
    assert all(torch.equal(a[0], b[0]) for a, b in zip(resumed, batches[5:]))
    assert not torch.equal(next(dropped.epoch(3))[0], next(dropped.epoch(2))[0])


def test_grouped_split_keeps_every_group_on_one_side():
    rng = random.Random(0)
    groups = [f"movie{rng.randrange(40)}" for _ in range(600)]
    split = split_examples(len(groups), groups, test_fraction=0.2, val_fraction=0.1, seed=3)
    sides = [{groups[i] for i in rows} for rows in (split.train, split.val, split.test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sorted(split.train + split.val + split.test) == list(range(600))
    distinct = len(set(groups))
    assert split.groups == (len(sides[0]), len(sides[1]), len(sides[2])) and sum(split.groups) == distinct
    assert split.groups[2] == round(0.2 * distinct)  # the test fraction counts groups, not rows
    again = split_examples(len(groups), groups, test_fraction=0.2, val_fraction=0.1, seed=3)
    assert again == split  # seeded
    other = split_examples(len(groups), groups, test_fraction=0.2, val_fraction=0.1, seed=4)
    assert other.test != split.test
    rows = split_examples(100, None, test_fraction=0.2, val_fraction=0.1, seed=0)
    assert (len(rows.train), len(rows.val), len(rows.test)) == (72, 8, 20)
    with pytest.raises(ValueError, match="2 groups"):
        split_examples(5, ["a", "a", "b", "b", "b"], test_fraction=0.2, val_fraction=0.1, seed=0)


# --- training and prediction end to end ---------------------------------------------------------
POSITIVE = ["wonderful", "brilliant", "moving", "delightful", "superb", "charming", "gripping", "funny"]
NEGATIVE = ["dull", "tedious", "awful", "clumsy", "boring", "bland", "messy", "lifeless"]
FILLER = ["the", "film", "a", "story", "is", "and", "with", "its", "cast", "plot", "quite", "really", "this"]


def sentence(rng: random.Random, words: list[str]) -> str:
    body = [rng.choice(FILLER) for _ in range(rng.randint(3, 9))]
    for word in rng.sample(words, 2):
        body.insert(rng.randint(0, len(body)), word)
    return " ".join(body).capitalize() + rng.choice([".", "!", ""])


def write_reviews(path, rows: int = 480, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment", "movie"])
        for i in range(rows):
            positive = rng.random() < 0.6
            writer.writerow([sentence(rng, POSITIVE if positive else NEGATIVE), "pos" if positive else "neg",
                             f"m{i % 48}"])  # fmt: skip


TINY = ["--text-column", "review", "--label-column", "sentiment", "--model.encoder.hidden_size=16",
        "--model.input.embedding_dim=16", "--task.batch_size=16", "--task.min_count=1", "--train.lr=1e-2",
        "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small run on generated reviews, split by movie; shared by the prediction tests."""
    root = tmp_path_factory.mktemp("classify")
    data = root / "reviews.csv"
    write_reviews(data)
    run = root / "run"
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        code = main(["train", "classify", "--data", str(data), "--group-column", "movie", "--run-dir", str(run),
                     "--train.max_epochs=6", *TINY])  # fmt: skip
    assert code == 0
    return run, out.getvalue()


def test_train_classify_learns_the_generated_sentiment(trained):
    run, report = trained
    results = json.loads((run / classify.RESULTS_FILE).read_text())
    assert results["accuracy"] >= 0.95, report
    assert results["labels"] == ["neg", "pos"] and results["groups"]["test"] == round(0.2 * 48)
    assert results["majority_class"] == "pos" and 0.4 < results["majority_accuracy"] < 0.8
    confusion = torch.tensor(results["confusion"])
    assert confusion.sum() == results["rows"]["test"] and confusion.trace() / confusion.sum() == pytest.approx(
        results["accuracy"])  # fmt: skip
    for text in ("test accuracy", "macro-F1", "majority class 'pos'", "precision", "true \\ predicted", "by 'movie'"):
        assert text in report
    saved = json.loads((run / classify.CLASSIFIER_FILE).read_text())
    assert saved["labels"] == ["neg", "pos"] and saved["text_column"] == "review"
    assert saved["tokenizer"]["symbols"][:2] == ["<pad>", "<unk>"]


def test_predict_a_text_file_and_a_csv(trained, tmp_path, capsys):
    run, _ = trained
    lines = tmp_path / "new.txt"
    lines.write_text("A wonderful and charming story!\nThe plot is dull and tedious.\n\nsuperb, superb cast\n")
    assert main(["predict", str(run), str(lines)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4  # one answer per input line, the blank one included
    assert [r[0] for r in (rows[0], rows[1], rows[3])] == ["pos", "neg", "pos"]
    assert all(0.5 <= float(r[1]) <= 1.0 for r in rows)

    table = tmp_path / "new.csv"
    table.write_text('review,other\n"Boring, lifeless and clumsy.",x\nA gripping film,y\n')
    assert main(["predict", str(run), str(table)]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["neg", "pos"]


def test_predict_streams_stdin_one_answer_per_line_as_it_arrives(trained, monkeypatch, capsys):
    run, _ = trained
    answered: list[int] = []  # answers printed between two reads of stdin

    class Typing:
        """stdin that checks every earlier line was answered before it gives the next one."""

        def __init__(self, lines):
            self.lines, self.given = list(lines), 0

        def __iter__(self):
            return self

        def __next__(self):
            answered.append(capsys.readouterr().out.count("\n"))
            assert sum(answered) == self.given, "an answer waited for later input"
            if self.given == len(self.lines):
                raise StopIteration
            self.given += 1
            return self.lines[self.given - 1]

    monkeypatch.setattr("sys.stdin", Typing(["a brilliant film\n", "awful, bland and messy\n", "funny"]))
    assert main(["predict", str(run)]) == 0
    assert answered == [0, 1, 1, 1]
    classifier = Classifier.load(run)
    assert [label for label, _ in classifier.predict(["a brilliant film", "awful, bland and messy", "funny"])] == [
        "pos", "neg", "pos"]  # fmt: skip
    probabilities = classifier.probabilities(["moving", "tedious"])
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2))


def test_predict_holds_stdin_to_text_and_evaluate_scores_a_new_file(trained, tmp_path, monkeypatch, capsys):
    run, _ = trained
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"a fine film\n\x7fELF\x02\x01\x00\x00\n")))
    assert main(["predict", str(run)]) == 2  # binary data on stdin is refused as it is in a file
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and "standard input line 2 looks binary" in captured.err

    data = tmp_path / "more.csv"
    write_reviews(data, rows=60, seed=7)
    assert main(["evaluate", str(run), "--data", str(data), "--json", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    with data.open() as f:
        rows = list(csv.DictReader(f))
    guesses = [label for label, _ in Classifier.load(run).predict([r["review"] for r in rows])]
    assert scores["rows"] == 60 and scores["accuracy"] == pytest.approx(
        sum(g == r["sentiment"] for g, r in zip(guesses, rows)) / 60)  # fmt: skip
    assert f"accuracy: {scores['accuracy']:.4f}" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--data", str(tmp_path / "none.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_char_tokenizer_option_trains_and_predicts(tmp_path, capsys):
    data = tmp_path / "reviews.csv"
    write_reviews(data, rows=120)
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--tokenizer", "char", "--run-dir", str(run),
                 "--train.max_epochs=1", *TINY]) == 0  # fmt: skip
    assert json.loads((run / classify.CLASSIFIER_FILE).read_text())["tokenizer"]["kind"] == "char"
    capsys.readouterr()
    lines = tmp_path / "x.txt"
    lines.write_text("dull\nsuperb\n")
    assert main(["predict", str(run), str(lines)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


# --- bad input: one line, exit 2 ---------------------------------------------------------------
GOOD_HEADER = "review,sentiment,movie\n"


@pytest.mark.parametrize(
    "content,extra,message",
    [
        (b"", [], "is empty"),
        (b"\x00\x01\x02binary\x00", [], "looks binary"),
        ("caf\u00e9,pos\n".encode("latin-1"), [], "is not UTF-8"),
        (b'review,sentiment\n"never closed,pos\n', [], "is not valid CSV"),
        (b"review,sentiment\ngood film,pos,extra\n", [], "line 2 has 3 fields, but the header has 2"),
        (b"text,label,movie\nfine,pos,m1\n", [],
         "no column 'review' (text_column); its columns are 'text', 'label', 'movie'"),
        (b"review,sentiment,movie\n", [], "has a header but no rows"),
        (b"review,sentiment\n" + b"good,pos\n" * 50, [], "single class ('pos')"),
        (b"review,sentiment\n" + b"good,pos\nbad,neg\n" * 5, [], "data too short for one batch"),
        (b"review,sentiment\ngood,pos\nbad,\n", [], "empty 'sentiment' label"),
        (b"review,sentiment\n" + b"good,pos\nbad,neg\n" * 50, ["--group-column", "film"],
         "no column 'film' (group_column)"),
    ],
)
def test_bad_data_is_one_line_and_exit_2(tmp_path, capsys, content, extra, message):
    data = tmp_path / "data.csv"
    data.write_bytes(content)
    code = main(["train", "classify", "--data", str(data), "--run-dir", str(tmp_path / "run"), *extra, *TINY])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_missing_files_and_wrong_run_directories(tmp_path, capsys):
    assert main(["train", "classify", "--data", str(tmp_path / "nope.csv"), *TINY]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "classify", *TINY]) == 2
    assert "needs a CSV file: --data" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nowhere")]) == 2
    assert "run directory" in capsys.readouterr().err
    assert main(["predict", str(tmp_path)]) == 2
    assert "rnnkit train classify" in capsys.readouterr().err
    with pytest.raises(ValueError, match="test_fraction must be in"):
        classify.ClassifyConfig(test_fraction=1.0)
