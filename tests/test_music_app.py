"""Scores on the grid (rnnkit.data.music) and the music app: a few hand-made scores, tiny models."""

import warnings

import numpy as np
import pytest

from rnnkit.data.music import HOLD, REST, Grid, sounding_pitches, split_by_piece, transpositions, voice_ranges


def test_grid_sounding_transpose_ranges():
    tokens = np.array([[60, 48], [HOLD, REST], [62, HOLD], [REST, 50]])
    g = Grid(tokens, np.arange(4), "a", 4, ("soprano", "bass"))
    assert g.sounding().tolist() == [[60, 48], [60, -1], [62, -1], [-1, 50]]  # a hold after a rest is silence
    up = g.transposed(2)
    assert up.tokens.tolist() == [[62, 50], [HOLD, REST], [64, HOLD], [REST, 52]]
    assert voice_ranges([g]) == [(60, 62), (48, 50)]
    assert transpositions(g, [(59, 64), (47, 50)], max_shift=3) == [-1, 0]
    with pytest.raises(ValueError, match="MIDI range"):
        g.transposed(100)
    with pytest.raises(ValueError, match="tokens must be pitches"):
        Grid(np.array([[131]]), np.array([0]))
    assert sounding_pitches(np.array([[HOLD]])).tolist() == [[-1]]


def test_split_by_piece_is_disjoint_and_seeded():
    names = [f"p{i}" for i in range(20)]
    split = split_by_piece(names, 0.1, 0.2, seed=3)
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(names)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (14, 2, 4)
    assert split == split_by_piece(names, 0.1, 0.2, seed=3) and split != split_by_piece(names, 0.1, 0.2, seed=4)
    with pytest.raises(ValueError, match="too few"):
        split_by_piece(["a", "b"], 0.5, 0.4, seed=0)


# -- with music21 -------------------------------------------------------------------------------


def _chorale(m21, seed, voices=4, bars=4):
    rng = np.random.default_rng(seed)
    score = m21.stream.Score()
    for name, base in [("Soprano", 72), ("Alto", 65), ("Tenor", 57), ("Bass", 48)][:voices]:
        part = m21.stream.Part(id=name)
        part.partName = name
        part.append(m21.meter.TimeSignature("4/4"))
        for _ in range(bars * 2):
            n = m21.note.Note(int(base + rng.choice([0, 2, 4, 5, 7])))
            n.quarterLength = 2.0 if rng.random() < 0.5 else 1.0
            part.append(n)
            if n.quarterLength == 1.0:
                n2 = m21.note.Note(int(base + rng.choice([0, 2, 4])))
                n2.quarterLength = 1.0
                part.append(n2)
        score.insert(0, part)
    return score


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    m21 = pytest.importorskip("music21")
    folder = tmp_path_factory.mktemp("scores")
    for i in range(6):
        _chorale(m21, i).write("musicxml", fp=str(folder / f"c{i}.musicxml"))
    (folder / "broken.musicxml").write_text("<score-partwise><oops")
    _chorale(m21, 9, voices=2).write("musicxml", fp=str(folder / "duet.musicxml"))
    return folder


def test_score_to_grid_and_back(corpus):
    m21 = pytest.importorskip("music21")
    from rnnkit.data.music import grid_to_score, score_to_grid

    score = m21.converter.parse(str(corpus / "c0.musicxml"))
    grid = score_to_grid(score, "c0")
    assert grid.tokens.shape == (64, 4) and grid.voices == ("soprano", "alto", "tenor", "bass")
    assert grid.positions[:17].tolist() == list(range(16)) + [0]
    first = next(iter(score.parts[0].flatten().notes))
    assert grid.tokens[0, 0] == first.pitch.midi
    assert (grid.tokens[1 : int(first.quarterLength * 4), 0] == HOLD).all()
    again = score_to_grid(grid_to_score(grid), "again")
    np.testing.assert_array_equal(again.tokens, grid.tokens)
    melody = score_to_grid(score, "c0", voices="melody")
    np.testing.assert_array_equal(melody.tokens[:, 0], grid.tokens[:, 0])
    with pytest.raises(ValueError, match="not the four voices"):
        score_to_grid(m21.converter.parse(str(corpus / "duet.musicxml")), "duet")


def test_read_scores_names_what_it_skips(corpus, tmp_path):
    from rnnkit.data.music import read_scores, score_files

    with pytest.warns(UserWarning) as caught:
        grids = read_scores(score_files(corpus), root=corpus)
    text = " | ".join(str(w.message) for w in caught)
    assert "broken.musicxml" in text and "duet.musicxml" in text
    assert len(grids) == 6
    with pytest.raises(ValueError, match="no score files"):
        score_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        score_files(tmp_path / "missing")


def test_train_compose_harmonize(corpus, tmp_path, capsys):
    pytest.importorskip("music21")
    from rnnkit import cli
    from rnnkit.apps.music import Composer, MusicApp
    from rnnkit.apps.runner import train_app

    run_dir = tmp_path / "run"
    overrides = [f"task.data={corpus}", "task.val_fraction=0.2", "task.test_fraction=0.2", "task.window=32",
                 "task.transpose=2", "task.ngram_max=3", "train.max_epochs=2", "model.encoder.hidden_size=16",
                 "model.encoder.num_layers=1", "model.head_hidden=0", "model.embedding_dim=8"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = train_app(MusicApp(), overrides=overrides, run_dir=run_dir, quiet=True)
    r = outcome.results
    split = __import__("json").loads((run_dir / "split.json").read_text())
    assert not set(split["train"]) & set(split["test"]) and len(split["test"]) == 1
    assert r["pieces"] == 1 and r["steps"] == 64
    assert set(r) >= {"model", "repeat", "1-gram", "3-gram", "best_ngram", "corpus"}
    assert np.isfinite(r["model"]["nll_per_step"]) and r["model"]["nll_per_note"] > r["model"]["nll_per_step"]

    composer = Composer.load(run_dir)
    a = composer.compose(2, seed=1)
    assert a.tokens.shape == (32, 4) and np.array_equal(a.tokens, composer.compose(2, seed=1).tokens)
    from rnnkit.metrics.music import parallel_motion, range_fraction

    banned = composer.compose(2, seed=1, parallels="ban")
    assert parallel_motion(banned.sounding()) == {"fifths": 0, "octaves": 0}  # removed while sampling
    free = composer.compose(2, seed=1, parallels="allow")
    np.testing.assert_array_equal(free.tokens, composer.compose(2, seed=1, parallels=1.0).tokens)
    assert range_fraction(a.sounding(), a.tokens < 128, composer.ranges) == 1.0
    assert composer.compose(1, seed=0, key="D major").tokens.shape == (16, 4)

    from rnnkit.data.music import read_prime

    melody = read_prime(corpus / "c1.musicxml", voices="melody")
    harmony = composer.compose(0, prime=melody, harmonize=True, seed=0)
    np.testing.assert_array_equal(harmony.tokens[:, 0], melody.tokens[:, 0])
    with pytest.raises(ValueError, match="harmonise a melody"):
        composer.compose(1, prime=melody)
    with pytest.raises(ValueError, match="bars"):
        composer.compose(0)

    out = tmp_path / "piece.mid"
    assert cli.main(["compose", str(run_dir), "--out", str(out), "--bars", "2", "--seed", "3"]) == 0
    assert out.stat().st_size > 0 and out.with_suffix(".png").stat().st_size > 0
    xml = tmp_path / "piece.musicxml"
    assert cli.main(["compose", str(run_dir), "--out", str(xml), "--bars", "1", "--no-png"]) == 0
    assert "<score-partwise" in xml.read_text()[:2000]
    capsys.readouterr()
    assert cli.main(["compose", str(run_dir), "--out", str(out), "--bars", "0"]) != 0
    assert "--bars must be a positive integer" in capsys.readouterr().err
    assert cli.main(["compose", str(run_dir), "--out", str(out), "--prime", str(tmp_path / "no.mid")]) != 0
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["compose", str(run_dir), "--out", str(tmp_path / "x.wav")]) != 0
    assert "--out must end in" in capsys.readouterr().err
    assert cli.main(["compose", str(run_dir), "--out", str(out), "--bars", "1", "--parallels", "ban", "--no-png"]) == 0
    assert cli.main(["compose", str(run_dir), "--out", str(out), "--parallels", "sometimes"]) != 0
    assert "--parallels must be 'ban', 'allow'" in capsys.readouterr().err


def test_a_directory_without_scores_is_refused(tmp_path, capsys):
    pytest.importorskip("music21")
    from rnnkit import cli

    assert cli.main(["train", "music", "--data", str(tmp_path), "--run-dir", str(tmp_path / "r"), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "no score files" in err and "Traceback" not in err
