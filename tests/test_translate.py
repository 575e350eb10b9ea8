"""Machine translation: the data steps, the model features it brought, the metrics, the app end to end.

Tiny generated pairs only (never ../shared/data)."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import unicodedata
import warnings

import pytest
import torch
import torch.nn.functional as F

from rnnkit.apps.seq2seq import Seq2SeqObjective
from rnnkit.data.pairs import deduplicate, filter_length, parse_pairs, read_pairs, warn_dropped
from rnnkit.data.splits import split_by_group_size
from rnnkit.models import EncoderDecoder, EncoderDecoderConfig, InputConfig
from rnnkit.models.beam import beam_search, length_normaliser
from rnnkit.training import BucketBatches

# -----------------------------------------------------------------------------
# data


def test_pairs_are_nfc_and_stripped_and_blank_lines_skipped():
    decomposed = "cafe\u0301"  # e + combining acute
    pairs = parse_pairs([f" {decomposed} \tun caf\u00e9\n", "\n", "Hi.\tSalut !\r\n"])
    assert pairs == [("caf\u00e9", "un caf\u00e9"), ("Hi.", "Salut !")]
    assert unicodedata.is_normalized("NFC", pairs[0][0])


def test_wider_rows_take_the_named_columns():
    assert parse_pairs(["x\tHello\tBonjour"], source_column=1, target_column=2) == [("Hello", "Bonjour")]
    with pytest.raises(ValueError, match="line 1 has 2 tab-separated columns"):
        parse_pairs(["Hello\tBonjour"], source_column=0, target_column=2)


@pytest.mark.parametrize(
    "lines, message",
    [(["Hello Bonjour"], "line 1 has no tab"), (["Hi.\tSalut", "Hello\t"], "line 2 has an empty target"),
     (["\tSalut"], "line 1 has an empty source"), (["", "  "], "holds no sentence pairs")],
)  # fmt: skip
def test_bad_lines_name_the_line(lines, message):
    with pytest.raises(ValueError, match=message):
        parse_pairs(lines)


def test_a_file_that_is_not_utf8_is_one_clear_error(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"Hello\tBonjour\nfa\xe7ade\tfa\xe7ade\n")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        read_pairs(path)


def test_duplicates_go_and_long_pairs_are_dropped_and_counted_in_one_warning():
    pairs = [("a", "x"), ("a", "x"), ("a", "y"), ("one two three", "x")]
    unique = deduplicate(pairs)
    assert unique == [("a", "x"), ("a", "y"), ("one two three", "x")]
    kept, dropped = filter_length(unique, max_words=2)
    assert kept == [("a", "x"), ("a", "y")] and dropped == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_dropped(dropped, len(unique), 2, "pairs.tsv")
        warn_dropped(0, len(unique), 2, "pairs.tsv")
    assert len(caught) == 1 and "dropped 1 of 3 pairs with more than 2 words" in str(caught[0].message)


def test_split_by_source_keeps_every_source_on_one_side():
    rng = random.Random(0)
    groups = [f"s{rng.randrange(60)}" for _ in range(300)]
    split = split_by_group_size(groups, test_rows=40, val_rows=30, seed=3)
    sides = [{groups[i] for i in part} for part in (split.train, split.val, split.test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sorted(split.train + split.val + split.test) == list(range(300))
    assert len(split.test) >= 40 and len(split.val) >= 30
    again = split_by_group_size(groups, test_rows=40, val_rows=30, seed=3)
    assert again.test == split.test and split_by_group_size(groups, test_rows=40, val_rows=30, seed=4).test != split.test
    with pytest.raises(ValueError, match="data too short"):
        split_by_group_size(["a", "b", "c"], test_rows=2, val_rows=1, seed=0)


def test_bucketed_batches_cover_every_row_once_with_little_padding_and_resume():
    torch.manual_seed(0)
    lengths = torch.randint(1, 50, (400,))
    rows = torch.arange(400)
    batches = BucketBatches(rows, lengths=lengths, batch_size=16, bucket_batches=25, seed=1)
    epoch = [x for (x,) in batches.epoch(0)]
    assert len(epoch) == len(batches) == 25
    assert sorted(torch.cat(epoch).tolist()) == rows.tolist()
    spread = sum(int(lengths[b].max() - lengths[b].min()) for b in epoch) / len(epoch)
    assert spread < 5  # random batches of 16 from 1..49 spread about 40
    assert [x.tolist() for (x,) in batches.epoch(0, start=7)] == [x.tolist() for x in epoch[7:]]
    assert [x.tolist() for (x,) in batches.epoch(1)] != [x.tolist() for x in epoch]
    with pytest.raises(ValueError, match=r"lengths must be a \(400,\) tensor"):
        BucketBatches(rows, lengths=lengths[:5], batch_size=16)


# -----------------------------------------------------------------------------
# the model's features


def _model(**overrides) -> EncoderDecoder:
    torch.manual_seed(0)
    settings = dict(source=InputConfig(vocab_size=15, embedding_dim=8), target_vocab_size=15, embedding_dim=16,
                    attention="general", max_length=9)  # fmt: skip
    settings.update(overrides)
    from rnnkit.models import EncoderConfig

    settings.setdefault("encoder", EncoderConfig(cell="gru", hidden_size=8, bidirectional=True))
    settings.setdefault("decoder", EncoderConfig(cell="gru", hidden_size=16))
    return EncoderDecoder(EncoderDecoderConfig(**settings))


@pytest.mark.parametrize("input_feeding", [True, False])
def test_beam_search_of_width_one_is_greedy_decoding(input_feeding):
    model = _model(input_feeding=input_feeding)
    source, lengths = torch.randint(3, 15, (6, 7)), torch.tensor([7, 3, 5, 1, 6, 2])
    greedy = model.generate(source, lengths)
    beams = model.beam_search(source, lengths, beam_size=1, penalty="wu", length_penalty=0.6)
    assert torch.equal(beams.tokens[:, 0], greedy.tokens)
    torch.testing.assert_close(beams.log_prob[:, 0], greedy.log_prob)


def _toy():
    # 0 pad, 1 start, 2 end, 3 a, 4 b: "a b </s>" has probability 0.5 * 0.6 = 0.3, "b </s>" 0.4
    first = torch.tensor([0.0, 0.0, 0.1, 0.5, 0.4]).log()
    after = {3: torch.tensor([0.0, 0.0, 0.3, 0.1, 0.6]).log(), 4: torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]).log()}

    def step(tokens, carry):
        rows = []
        for t, last in zip(tokens.tolist(), carry.tolist()):
            if t == 1:
                rows.append(first)
            elif t == 4 and last == 3:  # "a b" -> end
                rows.append(torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]).log())
            else:
                rows.append(after.get(t, after[4]))
        return torch.stack(rows), tokens.clone()

    return step


def test_wu_length_penalty_turns_the_choice_to_the_longer_translation():
    step = _toy()
    search = dict(start_token=1, end_token=2, max_length=5, beam_size=2)
    plain = beam_search(step, lambda c, i: c[i], torch.tensor([0]), 1, length_penalty=0.0, penalty="wu", **search)
    assert plain.tokens[0, 0].tolist()[:2] == [4, 2]  # the sum of log-probabilities: "b </s>" (0.4 > 0.3)
    # ln 0.4 / ((5 + 2) / 6) ** a < ln 0.3 / ((5 + 3) / 6) ** a once a > ln(ln 0.3 / ln 0.4) / ln(8 / 7) = 2.05
    long = beam_search(step, lambda c, i: c[i], torch.tensor([0]), 1, length_penalty=3.0, penalty="wu", **search)
    assert long.tokens[0, 0].tolist() == [3, 4, 2]
    assert long.score[0, 0].item() == pytest.approx(math.log(0.3) / (8 / 6) ** 3, rel=1e-5)
    assert long.score[0, 1].item() == pytest.approx(math.log(0.4) / (7 / 6) ** 3, rel=1e-5)
    assert length_normaliser(torch.tensor([1, 7]), 0.5, "wu").tolist() == pytest.approx([1.0, math.sqrt(2.0)])
    with pytest.raises(ValueError, match="penalty must be one of 'power', 'wu', got 'gnmt'"):
        beam_search(step, lambda c, i: c[i], torch.tensor([0]), 1, penalty="gnmt", **search)


def test_tied_embeddings_share_one_matrix_and_need_matching_sizes():
    model = _model(tie_embeddings=True)
    assert model.head.weight is model.embedding.weight
    source, target = torch.randint(3, 15, (2, 4)), torch.randint(3, 15, (2, 3))
    model(source, target).sum().backward()
    assert model.embedding.weight.grad is not None
    with pytest.raises(ValueError, match="tie_embeddings needs embedding_dim equal to .* expected 16, got 12"):
        _model(tie_embeddings=True, embedding_dim=12)


def test_label_smoothing_in_training_only():
    model = _model()
    source, target = torch.randint(3, 15, (3, 5)), torch.randint(3, 15, (3, 4))
    target[0, 3] = 0  # padding is ignored
    lengths = torch.tensor([5, 5, 5])
    objective = Seq2SeqObjective(pad_token=0, label_smoothing=0.2)
    model.train(False)  # dropout is 0: the logits are the same in both modes
    logits = model(source, target, lengths)
    plain = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0)
    smooth = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0, label_smoothing=0.2)
    assert objective(model, (source, target, lengths)).loss.item() == pytest.approx(plain.item(), rel=1e-5)
    model.train(True)
    assert objective(model, (source, target, lengths)).loss.item() == pytest.approx(smooth.item(), rel=1e-5)
    assert smooth.item() != pytest.approx(plain.item(), rel=1e-3)
    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        Seq2SeqObjective(label_smoothing=1.0)


# -----------------------------------------------------------------------------
# metrics and the baseline


def test_translation_scores_are_sacrebleus():
    sacrebleu = pytest.importorskip("sacrebleu")
    from rnnkit.metrics.translation import translation_scores

    hyps = ["Il est grand.", "Je vois le chat noir.", "Bonjour !"]
    refs = ["Il est grand.", "Je vois le chat.", "Salut !"]
    scores = translation_scores(hyps, refs)
    assert scores["bleu"] == round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2)
    assert scores["chrf"] == round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2)
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    multi = translation_scores(hyps, [["Il est grand."], ["Je vois le chat.", "Je vois le chat noir."], ["Salut !"]])
    assert multi["exact_match"] == pytest.approx(2 / 3) and multi["bleu"] > scores["bleu"]
    with pytest.raises(ValueError, match="one entry per hypothesis: expected 3, got 2"):
        translation_scores(hyps, refs[:2])


def test_translation_memory_returns_the_nearest_training_sentences_translation():
    from rnnkit.apps.translate import TranslationMemory

    memory = TranslationMemory([("I see the cat.", "Je vois le chat."), ("The dog sleeps.", "Le chien dort."),
                                ("I see the dog.", "Je vois le chien.")])  # fmt: skip
    assert memory.translate(["the dog sleeps now.", "i see the big dog!", "xyz"]) == [
        "Le chien dort.", "Je vois le chien.", "Je vois le chat."]  # no overlap: the first  # fmt: skip


# -----------------------------------------------------------------------------
# the application end to end

ANIMALS = [("cat", "chat"), ("dog", "chien"), ("bird", "oiseau"), ("fish", "poisson"), ("cow", "vache"),
           ("horse", "cheval"), ("mouse", "souris"), ("frog", "grenouille")]  # fmt: skip
COLOURS = [("big", "grand"), ("small", "petit"), ("red", "rouge"), ("old", "vieux"), ("black", "noir")]


def _pairs_file(path):
    lines = []
    for en, fr in ANIMALS:
        for adj, fadj in COLOURS:
            lines.append(f"The {adj} {en} sleeps.\tLe {fr} {fadj} dort.")
            lines.append(f"The {adj} {en} sleeps.\tLe {fr} {fadj} dort.")  # a duplicate
        lines.append(f"I see the {en}.\tJe vois le {fr}.")
        lines.append(f"I see the {en}.\tJe regarde le {fr}.")  # a second translation of one source
    lines.append("This sentence is far too long to be kept by a filter of twelve words at most, surely.\tTrop long.")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pytest.importorskip("tokenizers")
    pytest.importorskip("sacrebleu")
    from rnnkit.apps import get_app
    from rnnkit.apps.runner import train_app

    folder = tmp_path_factory.mktemp("translate")
    data = _pairs_file(folder / "pairs.tsv")
    overrides = [f"task.data={data}", "task.test_pairs=8", "task.val_pairs=6", "task.vocab_size=300",
                 "task.batch_size=16", "task.beam_size=2", "task.max_output_tokens=12",
                 "model.source.embedding_dim=16", "model.embedding_dim=16", "model.encoder.hidden_size=16",
                 "model.decoder.hidden_size=16", "train.max_steps=12", "train.eval_every=6", "train.threads=1",
                 "train.warmup_steps=0"]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = train_app(get_app("translate"), overrides=overrides, run_dir=folder / "run", quiet=True)
    return outcome, folder, [str(w.message) for w in caught]


def test_training_writes_the_tokenizer_the_sample_and_scores(trained):
    outcome, folder, caught = trained
    run_dir = folder / "run"
    assert any("dropped 1 of 57 pairs with more than 12 words" in m for m in caught)
    results = json.loads((run_dir / "results.json").read_text())
    data = results["data"]
    assert data["read"] == 97 and data["duplicates"] == 40 and data["too_long"] == 1
    assert data["train"] + data["val"] + data["test"] == 56 and data["test"] >= 8
    for name in ("greedy", "beam", "memory"):
        assert 0.0 <= results[name]["bleu"] <= 100.0 and results[name]["sentences"] == data["test"]
        assert results[name]["bleu_signature"].startswith("nrefs:1|")
    assert json.loads((run_dir / "tokenizer.json").read_text())["kind"] == "bpe"
    sample = (run_dir / "sample.md").read_text().splitlines()
    assert sample[2].startswith("| source | reference | beam search |") and len(sample) == 4 + data["test"]
    assert "BLEU signature: nrefs:1|case:mixed|eff:no|tok:13a" in outcome.report


def test_the_translator_translates_anything_and_gives_n_best(trained):
    from rnnkit.apps.translate import Translator

    translator = Translator.load(trained[1] / "run")
    out = translator.n_best(["I see the snowman \u2603 \u00e9\u00e9.", ""], n=2, beam_size=3)
    assert len(out[0]) == 2 and out[0][0].score >= out[0][1].score and out[1][0].text == ""
    assert all(isinstance(h.text, str) for h in out[0])
    greedy = translator.translate(["The big cat sleeps."], beam_size=1)
    assert greedy == translator.translate(["The big cat sleeps."], beam_size=1)
    with pytest.raises(ValueError, match="n must be an integer from 1 to the beam size 3, got 4"):
        translator.n_best(["x"], n=4, beam_size=3)
    with pytest.raises(TypeError, match="sentences must be a list of strings"):
        translator.translate("a str")


def _cli(*args, stdin: bytes = b""):
    return subprocess.run([sys.executable, "-m", "rnnkit.cli", *args], input=stdin, capture_output=True,
                          env={"PYTHONPATH": "src", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})  # fmt: skip


def test_the_command_line(trained, tmp_path):
    run_dir = str(trained[1] / "run")
    done = _cli("translate", run_dir, "--beam", "2", stdin="The big cat sleeps.\nI see the dog.\n".encode())
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.decode().splitlines()) == 2
    plot = tmp_path / "attention.png"
    done = _cli("translate", run_dir, "--text", "I see the dog.", "--n-best", "2", "--beam", "2", "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 2 and all(line.split("\t")[0] == "0" for line in lines)
    assert plot.read_bytes()[:4] == b"\x89PNG"
    bad = _cli("translate", run_dir, stdin=b"caf\xe9\n")
    assert bad.returncode != 0 and bad.stderr.decode().strip() == (
        "rnnkit: error: standard input line 1 is not UTF-8 text (byte 3 cannot be decoded)")  # fmt: skip
    no_tabs = tmp_path / "no_tabs.tsv"
    no_tabs.write_text("Hello Bonjour\n")
    bad = _cli("train", "translate", "--data", str(no_tabs), "--quiet")
    assert bad.returncode != 0 and "line 1 has no tab" in bad.stderr.decode()
    assert len(bad.stderr.decode().strip().splitlines()) == 1


def test_evaluate_scores_a_new_pairs_file(trained, tmp_path):
    from rnnkit.apps import Run, get_app

    app = get_app("translate")
    path = tmp_path / "new.tsv"
    path.write_text("I see the cat.\tJe vois le chat.\nThe red dog sleeps.\tLe chien rouge dort.\n", encoding="utf-8")
    scores = app.evaluate_file(Run.from_dir(trained[1] / "run", app), path)
    assert scores["sentences"] == 2 and 0.0 <= scores["bleu"] <= 100.0 and scores["source"] == str(path)
