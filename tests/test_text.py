"""Text generation: tokenizers, text files, sampling, ``rnnkit train text`` and ``rnnkit generate``."""

from __future__ import annotations

import builtins
import json
import math

import pytest
import torch

from rnnkit.cli import main
from rnnkit.models import InputConfig, ManyToMany, ManyToManyConfig
from rnnkit.models.sampling import filter_logits, generate, sample
from rnnkit.data.textfiles import default_corpus, read_text_file
from rnnkit.data.tokenizers import BPETokenizer, CharTokenizer, tokenizer_from_json

PLAY = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n\n"
    "JULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\nDeny thy father and refuse thy name.\n\n"
) * 40


# --- tokenizers and files -----------------------------------------------------------------
def test_char_tokenizer_round_trips_and_marks_unknown_characters():
    tok = CharTokenizer.train(PLAY)
    assert tok.decode(tok.encode(PLAY)) == PLAY
    assert tok.decode(tok.encode("Romeo§")) == "Romeo\ufffd"
    again = tokenizer_from_json(json.loads(json.dumps(tok.to_json())))
    assert again.encode(PLAY[:50]) == tok.encode(PLAY[:50]) and again.vocab_size == tok.vocab_size


def test_bpe_tokenizer_round_trips():
    pytest.importorskip("tokenizers")
    tok = BPETokenizer.train(PLAY, vocab_size=300)
    ids = tok.encode(PLAY[:200])
    assert tok.decode(ids) == PLAY[:200] and len(ids) < 200  # merges shorten the text
    again = tokenizer_from_json(json.loads(json.dumps(tok.to_json())))
    assert again.encode(PLAY[:200]) == ids


def test_bpe_without_the_extra_names_the_install_command(monkeypatch):
    real_import = builtins.__import__

    def no_tokenizers(name, *args, **kwargs):
        if name == "tokenizers" or name.startswith("tokenizers."):
            raise ImportError("No module named 'tokenizers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tokenizers)
    with pytest.raises(ImportError, match=r"pip install 'rnnkit\[text\]'"):
        BPETokenizer.train(PLAY)


def test_text_files_give_clear_errors(tmp_path):
    (tmp_path / "ok.txt").write_text("hello", encoding="utf-8")
    assert read_text_file(tmp_path / "ok.txt") == "hello"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_text_file(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="is empty"):
        read_text_file(tmp_path / "empty.txt")
    (tmp_path / "binary.bin").write_bytes(b"\x89PNG\x00\x00\x01")
    with pytest.raises(ValueError, match="looks binary"):
        read_text_file(tmp_path / "binary.bin")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        read_text_file(tmp_path / "latin1.txt")
    with pytest.raises(ValueError, match="is not a file"):
        read_text_file(tmp_path)


def test_default_corpus_ships_with_python():
    text, source = default_corpus()
    assert len(text) > 100_000 and "Python" in source


# --- sampling -----------------------------------------------------------------------------
def test_top_k_and_top_p_keep_the_right_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert filter_logits(logits, top_k=3).isinf().tolist() == [[False, False, False, True]]
    assert filter_logits(logits, top_p=0.5).isinf().tolist() == [[False, True, True, True]]
    assert filter_logits(logits, top_p=0.81).isinf().tolist() == [[False, False, False, True]]
    shuffled = logits[:, [2, 0, 3, 1]]  # the filter follows values, not positions
    assert filter_logits(shuffled, top_p=0.8).isinf().tolist() == [[True, False, True, False]]


def test_sampling_follows_the_distribution_and_is_seeded():
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1])).expand(20000, 3)
    draws = sample(logits, generator=torch.Generator().manual_seed(0))
    frequencies = torch.bincount(draws, minlength=3) / 20000
    torch.testing.assert_close(frequencies, torch.tensor([0.7, 0.2, 0.1]), atol=0.015, rtol=0)
    again = sample(logits, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    cold = sample(logits, temperature=0.1, generator=torch.Generator().manual_seed(0))
    assert (cold == 0).float().mean() > 0.99
    for bad in (dict(temperature=-1), dict(top_k=0), dict(top_p=0.0), dict(top_p=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            sample(logits, **bad)


def test_generate_continues_the_state_of_the_prime():
    torch.manual_seed(0)
    model = ManyToMany(ManyToManyConfig(input=InputConfig(vocab_size=9), outputs=9)).eval()
    prime = torch.randint(0, 9, (2, 5))
    seen = []
    out = generate(model, prime, 6, temperature=0, on_token=seen.append)
    assert out.shape == (2, 6) and len(seen) == 6
    # greedy generation equals re-reading the growing sequence from scratch each time
    sequence = prime
    for t in range(6):
        logits, _ = model(sequence)
        assert torch.equal(logits[:, -1].argmax(-1), out[:, t])
        sequence = torch.cat([sequence, out[:, t : t + 1]], dim=1)


# --- the commands -------------------------------------------------------------------------
SMALL = ["--model.encoder.hidden_size=32", "--model.encoder.num_layers=1", "--task.bptt=16", "--task.batch_size=4",
         "--task.sample_length=40", "--train.warmup_steps=0", "--quiet"]  # fmt: skip


def test_train_text_then_generate(tmp_path, capsys):
    data = tmp_path / "play.txt"
    data.write_text(PLAY, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "text", "--data", str(data), "--run-dir", str(run), "--train.max_epochs=3", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "nats/char" in out and "bits/char" in out and "perplexity" in out and "sample" in out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    loss = [r for r in records if r["split"] == "val"][-1]["val_loss"]
    assert loss < math.log(CharTokenizer.train(PLAY).vocab_size) - 1.0  # it learned something
    assert (run / "tokenizer.json").exists()

    assert main(["generate", str(run), "--prime", "ROMEO:", "--length", "30", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("ROMEO:") and len(first) == len("ROMEO:") + 30 + 1
    assert main(["generate", str(run), "--prime", "ROMEO:", "--length", "30", "--seed", "1"]) == 0
    assert capsys.readouterr().out == first  # seeded: the same text again
    assert main(["generate", str(run), "--prime", "JU", "--length", "10", "--temperature", "0"]) == 0


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "is empty"),
        (b"\x00\x01\x02binary", "looks binary"),
        (b"too short", "data too short for one batch"),
    ],
)
def test_bad_text_data_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    data = tmp_path / "data.txt"
    data.write_bytes(content)
    assert main(["train", "text", "--data", str(data), "--run-dir", str(tmp_path / "run"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_wrong_flags_and_run_directories(tmp_path, capsys):
    assert main(["train", "adding", "--data", "x.txt", "--quiet"]) == 2
    assert "--data is not an option of task 'adding'" in capsys.readouterr().err
    assert main(["train", "text", "--data", str(tmp_path / "nope.txt"), *SMALL]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert "run directory" in captured.err and captured.out == ""


def test_a_prime_with_characters_never_seen_warns(tmp_path, capsys):
    data = tmp_path / "play.txt"
    data.write_text(PLAY, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "text", "--data", str(data), "--run-dir", str(run), "--train.max_epochs=1", *SMALL]) == 0
    capsys.readouterr()
    with pytest.warns(UserWarning, match=r"2 character\(s\) the model never saw .*'€', '✓'"):
        assert main(["generate", str(run), "--prime", "RO€MEO✓", "--length", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("RO")
