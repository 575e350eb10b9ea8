"""Online handwriting: the stroke readers (UNIPEN, JSON, CSV) and their errors, the pre-processing,
the k-NN baseline, and ``rnnkit train handwriting`` / ``rnnkit recognize`` on generated strokes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.strokes import (
    StrokeSample,
    augment,
    normalise,
    offsets,
    parse_strokes_csv,
    parse_strokes_json,
    parse_unipen,
    read_strokes,
    resample,
)
from rnnkit.metrics.neighbours import knn_predict, nearest

UNIPEN = """.INCLUDE        dene.doc
.LEXICON "0" "1"
.HIERARCHY      DIGIT

.SEGMENT DIGIT    0 ? "1"
.COMMENT 1 12  224
.PEN_DOWN
 100  100
 100  300
.PEN_UP
.DT 100

.SEGMENT DIGIT    1-2 ? "0"
.COMMENT 0 7  3
.PEN_DOWN
 0  0
 10  0
.PEN_UP
.DT 100
.PEN_DOWN
 10  10
 0  10
.PEN_UP
"""


def test_unipen_reads_segments_labels_writers_and_strokes():
    samples = parse_unipen(UNIPEN, "f.tra")
    assert [s.label for s in samples] == ["1", "0"] and [s.writer for s in samples] == ["12", "7"]
    assert [len(s.strokes) for s in samples] == [1, 2]
    np.testing.assert_array_equal(samples[1].strokes[1], [[10, 10], [0, 10]])


@pytest.mark.parametrize(
    "text,message",
    [
        (UNIPEN.replace(" 100  300", " 100  x"), "line 9: expected a point"),
        (UNIPEN.replace(".PEN_DOWN\n 100", " 100", 1), "line 7: a point outside"),
        ('.SEGMENT DIGIT 0 ? "3"\n.COMMENT 3 1 1\n\n' + UNIPEN, "line 1 ('3'): the sample has no strokes"),
        ('.SEGMENT DIGIT 0 ? "3"\n.PEN_DOWN\n 5 5\n.PEN_UP\n', "single point"),
        (UNIPEN.rsplit(".PEN_UP", 1)[0], "ends inside a .PEN_DOWN"),
    ],
)
def test_unipen_errors_name_the_line(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_unipen(text, "f.tra")


def test_json_and_csv_readers_and_their_errors(tmp_path):
    samples = parse_strokes_json('[{"strokes": [[[0, 0], [1, 2]], [[3, 3]]], "label": 7, "writer": "a"}]', "s.json")
    assert samples[0].label == "7" and samples[0].writer == "a" and [len(s) for s in samples[0].strokes] == [2, 1]
    with pytest.raises(ValueError, match="line 2 column"):
        parse_strokes_json('[{"strokes":\n [[[0, 0], [1, 2]]], }]', "s.json")
    with pytest.raises(ValueError, match="sample 1: the sample has no strokes"):
        parse_strokes_json('[{"strokes": [[[0, 0], [1, 2]]]}, {"strokes": []}]', "s.json")
    with pytest.raises(ValueError, match=r"sample 0 stroke 0: expected a list of \[x, y\]"):
        parse_strokes_json('[{"strokes": [[0, 1, 2]]}]', "s.json")
    with pytest.raises(ValueError, match="single point"):
        parse_strokes_json('[{"strokes": [[[4, 4]]]}]', "s.json")
    csv_samples = parse_strokes_csv("sample,stroke,x,y,label\na,0,0,0,1\na,0,0,5,1\nb,0,0,0,2\nb,1,3,1,2\n", "s.csv")
    assert [(s.label, len(s.strokes)) for s in csv_samples] == [("1", 1), ("2", 2)]
    with pytest.raises(ValueError, match="line 3: expected a point"):
        parse_strokes_csv("sample,stroke,x,y\na,0,0,0\na,0,zz,5\n", "s.csv")
    path = tmp_path / "strokes.json"
    path.write_text("[]")
    with pytest.raises(ValueError, match="holds no samples"):
        read_strokes(path)


def test_normalise_keeps_the_aspect_ratio_and_resampling_spaces_points_by_arc_length():
    # an L: 3 up, 1 right, written slowly at the bottom (many points), fast at the top
    stroke = np.array([[0, 0], [0, 0.1], [0, 0.2], [0, 0.3], [0, 3], [1, 3]], dtype=float)
    (norm,) = normalise([stroke])
    assert norm[:, 1].max() - norm[:, 1].min() == pytest.approx(1.0)
    assert norm[:, 0].max() - norm[:, 0].min() == pytest.approx(1 / 3)
    points, pen = resample([norm], 9)  # length 4/3 -> a point every 1/6
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    np.testing.assert_allclose(steps, 1 / 6, atol=1e-9)
    assert not pen.any()
    # two strokes: points in proportion to length, a pen-up flag at the second stroke's start
    points, pen = resample([np.array([[0.0, 0], [3, 0]]), np.array([[0.0, 1], [1, 1]])], 8)
    assert pen.tolist() == [False] * 6 + [True, False]
    # a dot is kept as one point
    points, pen = resample([np.array([[0.0, 0], [2, 0]]), np.array([[1.0, 1]])], 5)
    assert points[-1].tolist() == [1.0, 1.0] and pen.tolist() == [False] * 4 + [True]


def test_offsets_sum_back_to_the_points_and_augment_is_a_small_seeded_affine_map():
    coords = torch.randn(2, 6, 2)
    pen = torch.zeros(2, 6, dtype=torch.bool)
    pen[:, 3] = True
    f = offsets(coords, pen)
    torch.testing.assert_close(f[..., :2].cumsum(1), coords)
    assert f[..., 2].tolist() == [[0, 0, 0, 1, 0, 0]] * 2
    a = augment(coords, torch.Generator().manual_seed(1), rotation=90.0, scale=0.0)
    torch.testing.assert_close(a.norm(dim=-1), coords.norm(dim=-1))  # a pure rotation keeps lengths
    torch.testing.assert_close(a, augment(coords, torch.Generator().manual_seed(1), rotation=90.0, scale=0.0))
    assert not torch.allclose(a, coords)
    assert torch.equal(augment(coords, torch.Generator(), rotation=0.0, scale=0.0), coords)


def test_knn_by_hand_and_its_errors():
    reference = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    labels = torch.tensor([0, 1, 1, 2])
    assert nearest(reference, torch.tensor([[1.9], [8.0]]), k=2).tolist() == [[2, 1], [3, 2]]
    # k=3 at 0.4: neighbours 0 (label 0), 1 (1), 2 (1): the majority is 1
    assert knn_predict(reference, labels, torch.tensor([[0.4]]), k=3, num_classes=3).tolist() == [1]
    # k=2 at 0.4: a tie between 0 and 1 goes to the nearer neighbour, label 0
    assert knn_predict(reference, labels, torch.tensor([[0.4]]), k=2, num_classes=3).tolist() == [0]
    with pytest.raises(ValueError, match="k must be at most the 4 reference rows"):
        nearest(reference, reference, k=5)


# -----------------------------------------------------------------------------
# end to end on generated strokes


def generated_samples(n, writers, seed=0):
    """Three shapes: a vertical bar ("1"), a circle ("0"), a two-stroke plus ("+"), each writer
    with their own slant and size, every sample with jitter."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        writer = i % writers
        slant, size = 0.2 * math.sin(writer), 100 + 10 * writer
        label = "10+"[i % 3]
        if label == "1":
            strokes = [np.stack([np.zeros(12), np.linspace(0, 1, 12)], 1)]
        elif label == "0":
            t = np.linspace(0, 2 * math.pi, 20)
            strokes = [np.stack([0.4 * np.sin(t), 0.5 + 0.5 * np.cos(t)], 1)]
        else:
            strokes = [np.stack([np.linspace(-0.5, 0.5, 8), np.full(8, 0.5)], 1),
                       np.stack([np.zeros(8), np.linspace(0, 1, 8)], 1)]  # fmt: skip
        shown = []
        for s in strokes:
            s = s + rng.normal(0, 0.02, s.shape)
            s[:, 0] += slant * s[:, 1]
            shown.append(s * size)
        samples.append({"strokes": [s.round(1).tolist() for s in shown], "label": label, "writer": f"w{writer}"})
    return samples


def test_train_and_recognize_end_to_end(tmp_path, capsys):
    train_file, test_file = tmp_path / "train.json", tmp_path / "test.json"
    train_file.write_text(json.dumps(generated_samples(120, writers=6)))
    test_file.write_text(json.dumps(generated_samples(30, writers=3, seed=1)))
    run_dir = tmp_path / "run"
    code = main(["train", "handwriting", "--data", str(train_file), "--test-data", str(test_file),
                 "--run-dir", str(run_dir), "--task.points=16", "--task.batch_size=16",
                 "--model.encoder.hidden_size=16", "--model.encoder.num_layers=1", "--train.max_epochs=20",
                 "--train.lr=1e-2", "--quiet"])  # fmt: skip
    assert code == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["labels"] == ["+", "0", "1"] and results["samples"]["test"] == 30
    assert results["writers"] == {"train": 5, "val": 1, "test": 3}
    assert results["accuracy"] > 0.9 and results["knn_accuracy"] > 0.9  # three easy shapes
    assert (run_dir / "plots" / "test_samples.png").is_file()
    capsys.readouterr()
    plot = tmp_path / "seen.png"
    assert main(["recognize", str(run_dir), str(test_file), "--plot", str(plot)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 30
    guessed = [line.split("\t") for line in lines]
    assert sum(g[0] == g[2] for g in guessed) >= 27 and all(0 < float(g[1]) <= 1 for g in guessed)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # bad input: one line, non-zero exit
    bad = tmp_path / "bad.json"
    bad.write_text('[{"strokes": [[[1, 1]]], "label": "1"}]')
    assert main(["recognize", str(run_dir), str(bad)]) != 0
    assert "single point" in capsys.readouterr().err


def test_training_refuses_unlabelled_samples_and_a_missing_file(tmp_path, capsys):
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"strokes": [[[0, 0], [1, 1]]]}] * 4))
    assert main(["train", "handwriting", "--data", str(data), "--run-dir", str(tmp_path / "r"), "--quiet"]) != 0
    assert "needs a label on every sample" in capsys.readouterr().err
    assert main(["train", "handwriting", "--run-dir", str(tmp_path / "r2"), "--quiet"]) != 0
    assert "--data FILE" in capsys.readouterr().err


def test_digit_strings_are_laid_out_left_to_right_with_a_gap():
    from rnnkit.apps.handwriting.strings import compose, string_points

    one = StrokeSample([np.array([[5.0, 0], [5, 10]])], "1")  # zero width, 10 high
    box = StrokeSample([np.array([[0.0, 0], [10, 0], [10, 20], [0, 20]])], "0")  # half as wide as high
    string = compose([box, one, box], gap=0.25)
    assert string.label == "010"
    starts = [float(s[:, 0].min()) for s in string.strokes]
    assert starts == pytest.approx([0.0, 0.75, 1.0])  # 0.5 wide + 0.25 gap; then 0 wide + 0.25 gap
    assert all(float(s[:, 1].min()) == 0 and float(s[:, 1].max()) == 1 for s in string.strokes)
    points, pen = string_points(string, 8)
    assert len(points) == 24 and pen.sum() == 2
    assert points[:, 1].min() == pytest.approx(-0.5) and points[:, 1].max() == pytest.approx(0.5)


def test_digit_strings_train_with_ctc_and_recognize(tmp_path, capsys):
    from rnnkit.apps.handwriting.strings import compose

    train_file, test_file = tmp_path / "train.json", tmp_path / "test.json"
    train_file.write_text(json.dumps(generated_samples(60, writers=6)))
    test_file.write_text(json.dumps(generated_samples(15, writers=3, seed=1)))
    run_dir = tmp_path / "run"
    code = main(["train", "handwriting-strings", "--data", str(train_file), "--test-data", str(test_file),
                 "--run-dir", str(run_dir), "--task.points=8", "--task.min_digits=2", "--task.max_digits=3",
                 "--task.train_strings=64", "--task.test_strings=20", "--task.batch_size=16",
                 "--model.encoder.hidden_size=16", "--model.encoder.num_layers=1", "--train.max_epochs=2",
                 "--quiet"])  # fmt: skip
    assert code == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["strings"] == {"train": 64, "test": 20} and 0 <= results["digit_error_rate"] <= 2
    assert results["writers"]["test"] == 3 and all(len(e["reference"]) in (2, 3) for e in results["examples"])
    samples = [compose([StrokeSample([np.asarray(s) for s in d["strokes"]], d["label"])
                        for d in generated_samples(3, writers=1)], 0.15)]  # fmt: skip
    strings = tmp_path / "strings.json"
    strings.write_text(json.dumps([{"strokes": [s.tolist() for s in samples[0].strokes], "label": samples[0].label}]))
    capsys.readouterr()
    assert main(["recognize", str(run_dir), str(strings)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("\t10+") and set(line.split("\t")[0]) <= set("10+")
