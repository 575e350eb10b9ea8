"""Image captioning: the captioner model's shapes, attention and gradients; BLEU against
sacrebleu by hand; the captions file and image errors; ``rnnkit train caption`` and
``rnnkit caption`` on generated pictures."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("PIL")
pytest.importorskip("sacrebleu")

from PIL import Image  # noqa: E402

from rnnkit.apps.caption.app import attribute_accuracy, skin_tones  # noqa: E402
from rnnkit.apps.caption.data import base_name, detokenize, read_captions, words  # noqa: E402
from rnnkit.cli import main  # noqa: E402
from rnnkit.data.images import ImageReader  # noqa: E402
from rnnkit.metrics.captions import corpus_bleu, exact_match_rate, token_accuracy  # noqa: E402
from rnnkit.models import ConvEncoderConfig, EncoderConfig, ImageCaptioner, ImageCaptionerConfig, create_model  # noqa: E402


def tiny_model(**options):
    return ImageCaptioner(ImageCaptionerConfig(vocab_size=10, embedding_dim=8, encoder=ConvEncoderConfig(widths=(4, 6)),
                                               decoder=EncoderConfig(cell="lstm", hidden_size=12), **options))  # fmt: skip


def test_captioner_shapes_attention_and_gradients():
    torch.manual_seed(0)
    model = tiny_model()
    images, target = torch.rand(3, 3, 12, 16), torch.randint(3, 10, (3, 4))
    logits, maps = model(images, target, return_attention=True)
    assert logits.shape == (3, 4, 10) and maps.shape == (3, 4, 3, 4)
    torch.testing.assert_close(maps.sum((-1, -2)), torch.ones(3, 4))
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    # each image's caption depends on that image only (batch norm in eval mode)
    model.eval()
    with torch.no_grad():
        alone = model(images[:1], target[:1])
        together = model(torch.cat([images[:1], torch.rand(2, 3, 12, 16)]), target)
    torch.testing.assert_close(alone[0], together[0])
    # the attention maps attend() gives are those of the teacher-forced pass; beam 1 is greedy
    decoded = model.generate(images, max_length=5)
    assert torch.equal(decoded.tokens, model.generate(images, max_length=5, beam_size=1).tokens)
    assert model.attend(images, decoded.tokens).shape[:2] == decoded.tokens.shape
    # built by name from a dict, as a run directory rebuilds it
    rebuilt = create_model("image_to_sequence", {"vocab_size": 10, "encoder": {"widths": [4, 6]}})
    assert rebuilt.encoder.output_size == 6


def test_captioner_input_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"images must be \(batch, 3, height, width\)"):
        model.generate(torch.rand(3, 12, 12))
    with pytest.raises(ValueError, match="at least 4x4 pixels"):
        model.generate(torch.rand(1, 3, 2, 2))
    with pytest.raises(ValueError, match="one row per image"):
        model(torch.rand(2, 3, 8, 8), torch.randint(3, 10, (3, 4)))
    with pytest.raises(ValueError, match="widths must name at least one block"):
        ConvEncoderConfig(widths=())


def test_caption_metrics_by_hand():
    # one 4-word hypothesis equal to its reference: BLEU 100; sacrebleu's own call agrees elsewhere
    assert corpus_bleu(["a b c d"], ["a b c d"]) == pytest.approx(100.0)
    import sacrebleu

    hypotheses, references = ["the cat sat on the mat", "a dog runs fast"], ["the cat is on the mat", "a dog runs"]
    assert corpus_bleu(hypotheses, references) == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    # by hand: 1-4-gram precisions 5/6, 3/5, 1/4 and 0/3, which sacrebleu's default exponential
    # smoothing makes (1/2)/3; equal lengths, no brevity penalty
    expected = 100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    assert corpus_bleu(["the cat sat on the mat"], ["the cat is on the mat"]) == pytest.approx(expected)
    assert exact_match_rate(["a", "b "], ["a", "c"]) == 0.5
    assert token_accuracy([["a", "b"]], [["a", "c", "d"]]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="one entry per hypothesis"):
        corpus_bleu(["a"], ["a", "b"])


def test_words_bases_and_attributes():
    assert words("Woman Astronaut: medium-dark skin tone") == ["woman", "astronaut", ":", "medium-dark", "skin", "tone"]
    assert detokenize(["kiss", ":", "man", ",", "woman"]) == "kiss: man, woman"
    assert base_name("woman astronaut: medium skin tone") == "woman astronaut"
    assert skin_tones("kiss: man, woman, medium-dark skin tone, light skin tone") == [
        "medium-dark skin tone", "light skin tone"]  # fmt: skip
    scores = attribute_accuracy(["man: dark skin tone", "woman cook", "cat"],
                                ["woman: dark skin tone", "woman cook", "dog"])  # fmt: skip
    assert scores["skin_tone"] == {"accuracy": 1.0, "captions": 1}
    assert scores["gender"] == {"accuracy": 0.5, "captions": 2}


# -----------------------------------------------------------------------------
# files and end to end

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 180, 30)}
SHAPES = ("square", "bar", "dot", "cross", "ring", "frame")


def picture(shape, colour, size=16):
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))  # transparent: composited on white
    pixels = image.load()
    for y in range(size):
        for x in range(size):
            inside = {"square": 3 <= x < 13 and 3 <= y < 13, "bar": 6 <= x < 10,
                      "dot": (x - 8) ** 2 + (y - 8) ** 2 < 12, "cross": 6 <= x < 10 or 6 <= y < 10,
                      "ring": 20 < (x - 8) ** 2 + (y - 8) ** 2 < 45,
                      "frame": x in (1, 2, 13, 14) or y in (1, 2, 13, 14)}[shape]  # fmt: skip
            if inside:
                pixels[x, y] = (*COLOURS[colour], 255)
    return image


def write_dataset(directory):
    directory.mkdir()
    lines = ["file\tcaption\tgroup"]
    for shape in SHAPES:
        for colour in COLOURS:
            name = f"{shape}_{colour}.png"
            picture(shape, colour).save(directory / name)
            lines.append(f"{name}\t{shape}: {colour}\tx")
    (directory / "captions.tsv").write_text("\n".join(lines) + "\n")
    return directory


def test_captions_file_and_image_errors(tmp_path, recwarn):
    data = write_dataset(tmp_path / "d")
    read = read_captions(data)
    assert len(read.files) == 18 and read.captions[0] == ["square: red"]
    reader = ImageReader(8)
    image = reader.read(data / "square_red.png")
    assert image.shape == (3, 8, 8) and image.dtype == torch.uint8
    assert image[:, 0, 0].tolist() == [255, 255, 255]  # transparency on white
    Image.new("L", (10, 10), 128).save(tmp_path / "grey.png")
    assert reader.read(tmp_path / "grey.png")[:, 0, 0].tolist() == [128, 128, 128]
    reader.say_conversions()
    assert [str(w.message) for w in recwarn] == ["converted images to RGB (1 L, 1 RGBA; transparency composited on white)"]
    (tmp_path / "fake.png").write_text("not a picture")
    with pytest.raises(ValueError, match="fake.png is not an image Pillow can read"):
        reader.read(tmp_path / "fake.png")
    (data / "captions.tsv").write_text("square_red.png\tsquare: red\nnope.png\tmissing\ngone.png\tmissing too\n")
    with pytest.raises(FileNotFoundError, match=r"names 2 image\(s\) missing .*'nope.png' \(line 2\)"):
        read_captions(data)
    (data / "captions.tsv").write_text("square_red.png\tsquare: red\nsquare_blue.png\n")
    with pytest.raises(ValueError, match="line 2: expected 'file<TAB>caption'"):
        read_captions(data)


def test_train_and_caption_end_to_end(tmp_path, capsys):
    data = write_dataset(tmp_path / "d")
    run_dir = tmp_path / "run"
    code = main(["train", "caption", "--data", str(data), "--run-dir", str(run_dir), "--task.image_size=16",
                 "--task.batch_size=6", "--task.test_fraction=0.34", "--task.val_fraction=0.25", "--task.shift=0",
                 "--model.encoder.widths=[8, 16]", "--model.decoder.hidden_size=32", "--model.embedding_dim=16",
                 "--train.max_epochs=40", "--train.lr=1e-2", "--train.monitor=val_loss", "--train.monitor_mode=min",
                 "--quiet"])  # fmt: skip
    assert code == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["images"] == {"train": 9, "val": 3, "test": 6}  # whole shapes (bases) on one side
    test_bases = {e["reference"].split(":")[0] for e in results["examples"]}
    train_files = {f"{s}_{c}.png" for s in SHAPES for c in COLOURS} - {e["file"] for e in results["examples"]}
    assert not test_bases & {f.split("_")[0] for f in train_files} or len(train_files) == 12
    for key in ("model", "nearest_pixels", "nearest_features"):
        assert 0 <= results[key]["bleu4"] <= 100 and 0 <= results[key]["token_accuracy"] <= 1
    # the colour is a visual attribute the model learns across shapes: it follows the colon
    right = sum(e["caption"].split(":")[-1].strip() == e["reference"].split(":")[-1].strip()
                for e in results["examples"])  # fmt: skip
    assert right >= 4, results["examples"]
    assert (run_dir / "plots" / "attention_0.png").is_file()
    capsys.readouterr()
    plot = tmp_path / "att.png"
    images = [str(data / "square_red.png"), str(data / "dot_blue.png")]
    assert main(["caption", str(run_dir), *images, "--beam", "2", "--plot", str(plot)]) == 0
    out = capsys.readouterr()
    rows = [line.split("\t") for line in out.out.splitlines()]
    assert [r[0] for r in rows] == images and all(r[1] for r in rows)
    assert "converted images to RGB (2 RGBA" in out.err
    assert (tmp_path / "att-1.png").is_file() and (tmp_path / "att-2.png").is_file()
    (tmp_path / "fake.png").write_text("text")
    assert main(["caption", str(run_dir), str(tmp_path / "fake.png")]) != 0
    assert "is not an image" in capsys.readouterr().err


def test_training_refuses_a_missing_directory(tmp_path, capsys):
    assert main(["train", "caption", "--data", str(tmp_path / "none"), "--run-dir", str(tmp_path / "r"), "--quiet"]) != 0
    assert "does not exist" in capsys.readouterr().err
