"""The speech app on generated recordings (tones and noise written as WAV files in tmp_path): audio
reading and its repairs, features offline and streamed, data directories, the split by speaker,
training, transcription offline and streaming, and bad input."""

from __future__ import annotations

import io
import json
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")

from rnnkit.apps.speech import (  # noqa: E402
    AudioError,
    FeatureExtractor,
    FeatureSettings,
    FeatureStream,
    Recognizer,
    SpeechConfig,
    logistic_baseline,
    read_audio,
    read_recordings,
    split_recordings,
)
from rnnkit.apps.speech.data import Normalizer, spec_augment  # noqa: E402
from rnnkit.apps.speech.stream import pcm_chunks  # noqa: E402
from rnnkit.cli import main  # noqa: E402

RATE = 8000
# each "word" is two tones, one after the other; speakers shift the pitch a little
WORDS = {"a": (500, 1500), "b": (1500, 500), "c": (1000, 2500)}
SPEAKERS = {"ann": 1.0, "bob": 0.93, "cy": 1.06}


def utterance(word: str, speaker: str, seed: int, *, seconds: float = 0.24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shift = SPEAKERS[speaker]
    half = int(RATE * seconds / 2)
    t = np.arange(half) / RATE
    tones = [np.sin(2 * np.pi * f * shift * (1 + 0.02 * rng.standard_normal()) * t) for f in WORDS[word]]
    envelope = np.hanning(2 * half)
    return (0.5 * envelope * np.concatenate(tones) + 0.01 * rng.standard_normal(2 * half)).astype(np.float32)


def silence(seconds: float, seed: int) -> np.ndarray:
    return (0.005 * np.random.default_rng(seed).standard_normal(int(RATE * seconds))).astype(np.float32)


def write_fsdd(folder: Path, per_word: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for w, word in enumerate(WORDS):
        for s, speaker in enumerate(SPEAKERS):
            for i in range(per_word):
                sf.write(folder / f"{word}_{speaker}_{i}.wav", utterance(word, speaker, 1000 * w + 100 * s + i), RATE,
                         subtype="PCM_16")  # fmt: skip
    return folder


def write_strings(folder: Path, count: int = 60) -> Path:
    """Recordings of 1-3 words with silence around and between, and their transcripts (file,text,speaker)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["file,text,speaker"]
    for i in range(count):
        speaker = list(SPEAKERS)[i % 3]
        words = [str(rng.choice(list(WORDS))) for _ in range(int(rng.integers(1, 4)))]
        parts = [silence(0.05, i)]
        for j, word in enumerate(words):
            parts += [utterance(word, speaker, 10_000 + 10 * i + j), silence(0.06, 100 + i + j)]
        sf.write(folder / f"s{i}.wav", np.concatenate(parts), RATE, subtype="PCM_16")
        rows.append(f"s{i}.wav,{''.join(words)},{speaker}")
    (folder / "transcripts.csv").write_text("\n".join(rows) + "\n")
    return folder


# -----------------------------------------------------------------------------
# audio and features


def test_reading_mixes_down_resamples_and_says_so(tmp_path):
    mono = utterance("a", "ann", 0)
    sf.write(tmp_path / "stereo.wav", np.stack([mono, mono], 1), RATE, subtype="PCM_16")
    audio = read_audio(tmp_path / "stereo.wav", RATE)
    assert audio.notes == ("mixed 2 channels down to one",)
    np.testing.assert_allclose(audio.samples, mono, atol=1 / 32768)
    sf.write(tmp_path / "fast.wav", np.repeat(mono, 2), 2 * RATE, subtype="PCM_16")
    audio = read_audio(tmp_path / "fast.wav", RATE)
    assert audio.notes == ("resampled from 16000 Hz to 8000 Hz",) and abs(len(audio.samples) - len(mono)) <= 2
    (tmp_path / "notes.wav").write_text("not audio at all")
    with pytest.raises(AudioError, match="notes.wav: not a readable WAV file"):
        read_audio(tmp_path / "notes.wav", RATE)
    sf.write(tmp_path / "song.flac", mono, RATE)
    with pytest.raises(AudioError, match="song.flac: not a WAV file"):
        read_audio(tmp_path / "song.flac", RATE)
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), RATE, subtype="PCM_16")
    with pytest.raises(AudioError, match="empty.wav: the file holds no samples"):
        read_audio(tmp_path / "empty.wav", RATE)
    sf.write(tmp_path / "quiet.wav", np.zeros(800, dtype=np.float32), RATE, subtype="PCM_16")
    assert read_audio(tmp_path / "quiet.wav", RATE).silent and not read_audio(tmp_path / "stereo.wav", RATE).silent


@pytest.mark.parametrize("kind", ["logmel", "mfcc"])
def test_streamed_features_equal_the_offline_ones_in_any_chunks(kind):
    settings = FeatureSettings(sample_rate=RATE, kind=kind)
    extractor = FeatureExtractor(settings)
    samples = np.concatenate([utterance("b", "bob", 3), silence(0.013, 1)])
    offline = extractor(samples)
    assert offline.shape == (settings.frames(len(samples)), settings.size)
    assert settings.n_fft == 256 and settings.hop_length == 80 and settings.win_length == 200
    for chunk in (1, 79, 80, 333, len(samples)):
        stream = FeatureStream(extractor)
        frames = [stream.push(samples[i : i + chunk]) for i in range(0, len(samples), chunk)] + [stream.finish()]
        np.testing.assert_allclose(np.concatenate(frames), offline, rtol=1e-5, atol=1e-5)
    short = samples[:100]  # shorter than a window: one zero-padded frame, streamed or not
    stream = FeatureStream(extractor)
    assert stream.push(short).shape[0] == 0
    np.testing.assert_allclose(stream.finish(), extractor(short), rtol=1e-5, atol=1e-5)


def test_log_mel_energies_put_a_tone_in_its_band():
    settings = FeatureSettings(sample_rate=RATE)
    t = np.arange(RATE // 4) / RATE
    low, high = (FeatureExtractor(settings)(np.sin(2 * np.pi * f * t).astype(np.float32)).mean(0) for f in (300, 3000))
    assert low.argmax() < 10 < 30 < high.argmax()


# -----------------------------------------------------------------------------
# data directories and the split


def test_fsdd_names_give_labels_speakers_and_indices_and_the_split_holds_speakers_out(tmp_path):
    folder = write_fsdd(tmp_path / "rec", per_word=6)
    recordings = read_recordings(SpeechConfig(data=str(folder)))
    assert len(recordings.files) == 54 and set(recordings.texts) == set(WORDS) and set(recordings.speakers) == set(SPEAKERS)
    split = split_recordings(SpeechConfig(data=str(folder), test_speakers="bob"), recordings)
    assert {recordings.speakers[i] for i in split.test} == {"bob"}
    assert "bob" not in {recordings.speakers[i] for i in split.train + split.val}
    assert sorted(split.train + split.val + split.test) == list(range(54)) and split.val
    official = split_recordings(SpeechConfig(data=str(folder), split="index", test_indices=2), recordings)
    assert sorted(recordings.indices[i] for i in official.test) == [0] * 9 + [1] * 9
    with pytest.raises(ValueError, match=r"task.test_speakers names \['zed'\], not among the speakers"):
        split_recordings(SpeechConfig(data=str(folder), test_speakers="zed"), recordings)
    with pytest.raises(ValueError, match="holds out every speaker"):
        split_recordings(SpeechConfig(data=str(folder), test_speakers=",".join(SPEAKERS)), recordings)


def test_a_split_column_in_the_table_gives_the_test_set(tmp_path):
    folder = write_strings(tmp_path / "strings", count=12)
    lines = (folder / "transcripts.csv").read_text().splitlines()
    rows = [lines[0] + ",split"] + [f"{line},{'test' if i % 4 == 0 else 'train'}" for i, line in enumerate(lines[1:])]
    (folder / "transcripts.csv").write_text("\n".join(rows) + "\n")
    config = SpeechConfig(data=str(folder), split="table")
    recordings = read_recordings(config)
    split = split_recordings(config, recordings)
    assert split.test == [0, 4, 8] and sorted(split.train + split.val) == [i for i in range(12) if i % 4]
    (folder / "transcripts.csv").write_text("\n".join(rows[:2] + [rows[2].replace(",train", ",later")]) + "\n")
    with pytest.raises(ValueError, match="the split column must say train or test"):
        read_recordings(config)
    (folder / "transcripts.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="task.split=table needs a 'split' column"):
        split_recordings(config, read_recordings(config))


def test_data_directory_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        read_recordings(SpeechConfig(data=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no .wav files"):
        read_recordings(SpeechConfig(data=str(tmp_path / "empty")))
    odd = write_fsdd(tmp_path / "odd", per_word=1)
    sf.write(odd / "hello.wav", utterance("a", "ann", 0), RATE)
    with pytest.raises(ValueError, match=r"1 file\(s\) in .* are not named \{label\}_\{speaker\}_\{index\}.wav \(the first: hello.wav\)"):
        read_recordings(SpeechConfig(data=str(odd)))
    table = write_strings(tmp_path / "strings", count=3)
    (table / "transcripts.csv").write_text("file,text\ns0.wav,ab\ngone.wav,b\n")
    with pytest.raises(FileNotFoundError, match=r"names 1 file\(s\) that do not exist .* \(the first: gone.wav\)"):
        read_recordings(SpeechConfig(data=str(table)))
    (table / "transcripts.csv").write_text("path,words\ns0.wav,ab\n")
    with pytest.raises(ValueError, match="needs a header with columns file,text"):
        read_recordings(SpeechConfig(data=str(table)))
    (table / "other.csv").write_text("file,text\n")
    with pytest.raises(ValueError, match="holds 2 CSV files"):
        read_recordings(SpeechConfig(data=str(table)))


def test_normalisation_is_fitted_on_the_given_frames_and_utterance_mode_uses_each_own():
    rng = np.random.default_rng(0)
    train = [rng.normal(3, 2, (50, 4)).astype(np.float32) for _ in range(4)]
    norm = Normalizer.fit("global", train)
    np.testing.assert_allclose(np.concatenate([norm(f) for f in train]).mean(0), 0, atol=1e-5)
    other = rng.normal(10, 1, (30, 4)).astype(np.float32)
    assert norm(other).mean() > 2  # test data is not refitted
    np.testing.assert_allclose(Normalizer.fit("utterance", train)(other).mean(0), 0, atol=1e-5)
    again = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_allclose(again(other), norm(other))


def test_spec_augment_masks_are_seeded_and_stay_inside_each_utterance():
    augment = spec_augment(SpeechConfig(time_masks=2, time_mask_width=4, freq_masks=1, freq_mask_width=3))
    x, lengths = torch.ones(3, 20, 10), torch.tensor([20, 12, 5])
    a = augment(x, lengths, torch.Generator().manual_seed(1))
    b = augment(x, lengths, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and (a == 0).any() and torch.equal(x, torch.ones(3, 20, 10))
    assert spec_augment(SpeechConfig()) is None


def test_the_baseline_separates_separable_pooled_features():
    rng = np.random.default_rng(0)
    frames = [rng.normal(3 * (i % 3), 1, (20, 4)).astype(np.float32) for i in range(90)]
    result = logistic_baseline(frames, [i % 3 for i in range(90)], 3, range(0, 60), range(60, 70), range(70, 90))
    assert result["accuracy"] == 1.0 and len(result["predictions"]) == 20


# -----------------------------------------------------------------------------
# the application end to end

TINY = ["--model.frontend.layers=1", "--model.frontend.channels=16", "--model.frontend.stride=2",
        "--model.encoder.hidden_size=32", "--model.encoder.num_layers=1", "--model.encoder.cell=gru",
        "--model.head_dropout=0.0", "--train.lr=0.01", "--train.patience=null", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def words_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("speech")
    folder = write_fsdd(root / "rec")
    run = root / "run"
    code = main(["train", "speech", "--data", str(folder), "--run-dir", str(run), "--task.test_speakers=cy",
                 "--task.batch_size=16", "--train.max_epochs=25", *TINY])  # fmt: skip
    assert code == 0
    return folder, run


def test_train_speech_learns_words_of_a_new_voice_and_reports_them(words_run):
    folder, run = words_run
    results = json.loads((run / "test_results.json").read_text())
    assert results["test_speakers"] == ["cy"] and results["rows"]["test"] == 24
    assert results["accuracy"] >= 0.9  # chance: 1/3
    assert results["baseline"]["accuracy"] >= 0.0 and len(results["confusion"]) == 3
    assert results["per_speaker"]["cy"]["accuracy"] == results["accuracy"]
    assert (run / "plots" / "alignment.png").stat().st_size > 10_000
    saved = json.loads((run / "speech.json").read_text())
    assert saved["symbols"] == ["a", "b", "c"] and saved["normalizer"]["kind"] == "global"


def test_transcribe_prints_one_transcript_per_file_and_says_what_is_wrong(words_run, tmp_path, capsys):
    folder, run = words_run
    sf.write(tmp_path / "stereo16k.wav", np.stack([np.repeat(utterance("b", "cy", 7), 2)] * 2, 1), 2 * RATE,
             subtype="PCM_16")  # fmt: skip
    sf.write(tmp_path / "quiet.wav", np.zeros(2000, dtype=np.float32), RATE, subtype="PCM_16")
    (tmp_path / "notes.wav").write_text("hello")
    files = [folder / "a_cy_0.wav", tmp_path / "stereo16k.wav", tmp_path / "quiet.wav", tmp_path / "notes.wav",
             folder / "c_cy_1.wav"]  # fmt: skip
    code = main(["transcribe", str(run), *map(str, files)])
    out, err = capsys.readouterr()
    assert code == 1  # one file could not be read; the others were still transcribed
    rows = dict(line.split("\t") for line in out.splitlines())
    assert rows == {str(files[0]): "a", str(files[1]): "b", str(files[2]): "", str(files[4]): "c"}
    errors = err.strip().splitlines()
    assert any("notes.wav: not a readable WAV file" in e for e in errors)
    assert any("stereo16k.wav: mixed 2 channels down to one" in e for e in errors)
    assert any("stereo16k.wav: resampled from 16000 Hz to 8000 Hz" in e for e in errors)
    assert any("quiet.wav: silent" in e for e in errors)
    assert main(["transcribe", str(run)]) == 2 and "give one or more FILE.wav" in capsys.readouterr().err


class Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def test_streaming_equals_offline_greedy_decoding(words_run, monkeypatch, capsys):
    folder, run = words_run
    recognizer = Recognizer.load(run)
    samples = np.concatenate([utterance("b", "cy", 1), silence(0.05, 2), utterance("c", "cy", 3), silence(0.05, 4)])
    audio = read_audio(wav_bytes(samples), RATE)
    offline = recognizer.transcribe_audio([audio], greedy=True)[0].text
    assert offline and set(offline.split()) <= {"a", "b", "c"}
    for chunk in (1, 100, 4096):
        streaming = recognizer.stream()
        text = "".join(streaming.push(audio.samples[i : i + chunk]) for i in range(0, len(audio.samples), chunk))
        assert text + streaming.finish() == offline
    monkeypatch.setattr(sys, "stdin", Stdin(wav_bytes(samples)))
    assert main(["transcribe", str(run), "--stream"]) == 0
    assert capsys.readouterr().out == offline + "\n"
    raw = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()  # raw PCM: the same
    monkeypatch.setattr(sys, "stdin", Stdin(raw))
    assert main(["transcribe", str(run), "--stream"]) == 0
    assert capsys.readouterr().out == offline + "\n"


def test_raw_pcm_streams_at_another_rate_are_resampled_and_said(recwarn):
    tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    raw = (tone * 20000).astype("<i2").tobytes()
    chunks = list(pcm_chunks(io.BytesIO(raw), RATE, rate=16000))
    assert abs(sum(len(c) for c in chunks) - 8000) <= 64
    assert any("resampled from 16000 Hz to 8000 Hz" in str(w.message) for w in recwarn)
    with pytest.raises(AudioError, match="16-bit PCM"):
        data = bytearray(wav_bytes(tone[:100]))
        data[34:36] = (8).to_bytes(2, "little")  # claim 8-bit samples
        list(pcm_chunks(io.BytesIO(bytes(data)), RATE))


def test_train_speech_on_transcribed_strings(tmp_path):
    torch.set_num_threads(1)
    folder = write_strings(tmp_path / "strings", count=48)
    run = tmp_path / "run"
    code = main(["train", "speech", "--data", str(folder), "--run-dir", str(run), "--task.target=text",
                 "--task.test_speakers=cy", "--task.batch_size=8", "--task.beam_width=4", "--task.prior=ngram",
                 "--train.max_epochs=2", *TINY])  # fmt: skip
    assert code == 0
    results = json.loads((run / "test_results.json").read_text())
    assert set(results) >= {"cer", "wer", "sentence_accuracy", "greedy", "per_speaker"}
    assert results["symbols"] == ["a", "b", "c"] and 0 <= results["cer"] and results["rows"]["test"] == 16
    (folder / "new.csv").write_text("file,text\ns0.wav,abz\n")
    with pytest.warns(UserWarning, match=r"symbol\(s\) the model never learned \(\['z'\]\)"):
        assert main(["evaluate", str(run), "--data", str(folder / "new.csv")]) == 0


def test_train_speech_bad_input_is_one_line(tmp_path, capsys):
    assert main(["train", "speech", "--data", str(tmp_path / "nowhere"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such directory" in err
    folder = write_fsdd(tmp_path / "rec", per_word=1)
    assert main(["train", "speech", "--data", str(folder), "--task.split=random", "--task.batch_size=64", "--quiet"]) == 2
    assert "data too short for one batch" in capsys.readouterr().err


def test_a_missing_audio_library_names_the_extra(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def without_soundfile(name, *args, **kwargs):
        if name == "soundfile":
            raise ImportError("no soundfile")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_soundfile)
    with pytest.raises(ValueError, match=r"pip install 'rnnkit\[speech\]'"):
        read_audio(tmp_path / "x.wav", RATE)
