"""Speech recognition: a CTC model over log-mel features, ``rnnkit train speech`` and ``rnnkit transcribe``.

``rnnkit train speech --data DIR`` trains on a directory of WAV files (FSDD names or a
``file,text`` CSV; :mod:`rnnkit.apps.speech.data`), tests on held-out speakers, and reports
isolated-word accuracy with its confusion matrix against a logistic-regression baseline
(``--task.target=label``) or character and word error rates (``--task.target=text``).
``rnnkit transcribe RUN_DIR FILE.wav...`` prints one transcript per file; ``--stream`` reads
audio on stdin and prints the transcript as it grows (:class:`~rnnkit.apps.speech.Recognizer`).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...metrics import classification
from ...metrics import sequences as error_rates
from ...models.ctc import NGramPrior, WordListPrior, forced_align
from ...training import CTCBatches, CTCObjective
from ..base import App, Prepared, Run
from ..commands import Command, closed_stdout_is_fine
from .baseline import logistic_baseline
from .data import (
    Normalizer,
    Recordings,
    SpeechConfig,
    build_vocabulary,
    encode_targets,
    extract_all,
    pad_frames,
    read_recordings,
    spec_augment,
    split_recordings,
)
from .recognizer import EVAL_BATCH, SPEECH_FILE, Decoding, Recognizer

RESULTS_FILE = "test_results.json"


def make_prior(config: SpeechConfig, vocabulary: list[str], train_texts: list[str]):
    """The decoding prior the settings ask for, from the training transcripts only."""
    if config.prior == "none":
        return None
    index = {s: i + 1 for i, s in enumerate(vocabulary)}
    if config.prior == "ngram":
        labellings = [[index[s] for s in (text if config.target == "text" else [text])] for text in train_texts]
        return NGramPrior.fit(labellings, symbols=range(1, len(vocabulary) + 1), order=3)
    if config.target == "label":
        return WordListPrior([[i] for i in index.values()])
    separator = index.get(" ")
    words = {w for text in train_texts for w in (text.split(" ") if separator else [text]) if w}
    return WordListPrior([[index[c] for c in w] for w in words], separator=separator)


class SpeechApp(App):
    name = "speech"
    help = "speech recognition on WAV files (spoken digits, short phrases): log-mel features, LSTM, CTC"
    example = "rnnkit train speech --data free-spoken-digit-dataset/recordings --task.split=index"
    config_class = SpeechConfig
    model_name = "ctc"
    # bidirectional reads the whole utterance (best offline); --model.encoder.bidirectional=false streams
    default_model = {"frontend": {"layers": 1, "channels": 96, "kernel_size": 5, "stride": 2},
                     "encoder": {"cell": "lstm", "hidden_size": 128, "num_layers": 1, "bidirectional": True}}  # fmt: skip
    default_train = {"lr": 2e-3, "max_epochs": 30, "patience": 5, "clip_norm": 1.0, "log_every": 50}
    arguments = {"--data": "task.data"}
    files = ("transcripts",)
    results_file = RESULTS_FILE

    def prepare(self, config: SpeechConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        recordings = read_recordings(config)
        settings = config.feature_settings()
        features = extract_all(recordings.files, settings)
        if not features.kept:
            raise ValueError(f"none of the {len(recordings.files)} recordings in {config.data} holds usable audio")
        recordings = _subset(recordings, features.kept)
        split = split_recordings(config, recordings)
        train_texts = [recordings.texts[i] for i in split.train]
        vocabulary = build_vocabulary(train_texts, config.target)
        _warn_unseen(recordings, split, vocabulary, config.target)
        normalizer = Normalizer.fit(config.normalize, [features.frames[i] for i in split.train])
        frames = [normalizer(f) for f in features.frames]
        targets, target_lengths, _ = encode_targets(recordings.texts, vocabulary, config.target)

        def part(rows: list[int], **options) -> CTCBatches:
            x, lengths = pad_frames([frames[i] for i in rows])
            index = torch.tensor(rows, dtype=torch.long)
            return CTCBatches(x, lengths, targets[index], target_lengths[index], **options)

        if len(split.train) < config.batch_size:
            raise ValueError(f"data too short for one batch: {len(split.train)} training recordings, fewer than"
                             f" task.batch_size={config.batch_size}")  # fmt: skip
        train = part(split.train, batch_size=config.batch_size, seed=seed, augment=spec_augment(config))
        val = part(split.val, batch_size=EVAL_BATCH, shuffle=False)
        model = self.build_model({**model_settings, "input": {"features": settings.size},
                                  "outputs": len(vocabulary) + 1, "blank": 0})  # fmt: skip
        decoding = Decoding(config.beam_width, make_prior(config, vocabulary, train_texts), config.prior_weight)
        saved = Recognizer.saved(settings, normalizer, vocabulary, config.target, decoding)
        context = {"recordings": recordings, "split": split, "frames": frames, "raw": features.frames,
                   "vocabulary": vocabulary, "normalizer": normalizer, "decoding": decoding,
                   "skipped": features.skipped}  # fmt: skip
        return Prepared(model, CTCObjective(), train, val, "recordings", {SPEECH_FILE: json.dumps(saved)}, context)

    # --- results -----------------------------------------------------------------------------
    def _recognizer(self, run: Run) -> Recognizer:
        c = run.context
        return Recognizer(run.model(), run.config.feature_settings(), c["normalizer"], c["vocabulary"],
                          run.config.target, c["decoding"])  # fmt: skip

    def evaluate(self, run: Run) -> dict[str, Any]:
        c, config = run.context, run.config
        recordings, split, frames = c["recordings"], c["split"], c["frames"]
        recognizer = self._recognizer(run)
        test = split.test
        logits, lengths = recognizer.logits([frames[i] for i in test])
        decoded = recognizer.decode(logits, lengths)
        hypotheses = [recognizer.text(ids) for ids in decoded]
        references = [recordings.texts[i] for i in test]
        run.cache["test_logits"] = (logits, lengths, decoded)
        results: dict[str, Any] = {
            "source": recordings.source, "recordings": len(recordings.files), "skipped": c["skipped"],
            "split": split.description, "test_speakers": split.test_speakers,
            "rows": {"train": len(split.train), "val": len(split.val), "test": len(test)},
            "speakers": {"train": sorted({recordings.speakers[i] for i in split.train}) if recordings.speakers else None},
            "target": config.target, "symbols": c["vocabulary"], "features": config.feature_settings().to_dict(),
            "normalize": config.normalize, "beam_width": config.beam_width, "prior": config.prior,
        }  # fmt: skip
        if config.target == "label":
            results.update(self._label_scores(run, references, hypotheses, recognizer, logits, lengths))
        else:
            greedy = [recognizer.text(ids) for ids in recognizer.decode(logits, lengths, greedy=True)]
            results.update(_text_scores(references, hypotheses))
            results["greedy"] = _text_scores(references, greedy)
        if recordings.speakers:
            results["per_speaker"] = _per_speaker([recordings.speakers[i] for i in test], references, hypotheses,
                                                  config.target)  # fmt: skip
        results["examples"] = [{"file": recordings.files[i].name, "reference": r, "hypothesis": h}
                               for i, r, h in list(zip(test, references, hypotheses))[:10]]  # fmt: skip
        return results

    def _label_scores(self, run, references, hypotheses, recognizer, logits, lengths) -> dict[str, Any]:
        c, split, recordings = run.context, run.context["split"], run.context["recordings"]
        labels = c["vocabulary"]
        index = {label: i for i, label in enumerate(labels)}
        truth = torch.tensor([index.get(r, -1) for r in references])
        guess = torch.tensor([index[h] for h in hypotheses])
        known = truth >= 0
        confusion = classification.confusion_matrix(truth[known], guess[known], len(labels))
        targets = [index.get(t, -1) for t in recordings.texts]
        train_rows = [i for i in split.train if targets[i] >= 0]
        val_rows = [i for i in split.val if targets[i] >= 0]
        baseline = logistic_baseline(c["frames"], [max(t, 0) for t in targets], len(labels), train_rows, val_rows,
                                     split.test)  # fmt: skip
        baseline["accuracy"] = float(np.mean([labels[p] == r for p, r in zip(baseline["predictions"], references)]))
        majority, majority_accuracy = classification.majority_baseline(
            torch.tensor([targets[i] for i in train_rows]), truth.clamp_min(0), len(labels))
        return {"accuracy": float(np.mean([h == r for h, r in zip(hypotheses, references)])), "labels": labels,
                "confusion": confusion.tolist(), "macro_f1": classification.macro_f1(confusion),
                "baseline": {"name": "logistic regression on pooled features (mean, std, thirds' means)",
                             "accuracy": baseline["accuracy"], "penalty": baseline["penalty"]},
                "majority_class": labels[majority], "majority_accuracy": majority_accuracy}  # fmt: skip

    def figures(self, run: Run, results: dict[str, Any]) -> dict[str, Any]:
        if "test_logits" not in run.cache:
            self.evaluate(run)
        logits, lengths, decoded = run.cache["test_logits"]
        row = run.context["split"].test[0]
        recordings = run.context["recordings"]
        return {"alignment.png": alignment_figure(run.context["raw"][row], logits[0, : int(lengths[0])], decoded[0],
                                                  run.context["vocabulary"], run.config.feature_settings().hop_ms,
                                                  self._recognizer(run).model.stride,
                                                  f"{recordings.files[row].name}: reference {recordings.texts[row]!r}")}  # fmt: skip

    def report(self, run: Run, results: dict[str, Any]) -> str:
        r = results
        rows = r["rows"]
        lines = [f"data: {r['source']}, {r['recordings']:,} recordings"
                 + (f" ({len(r['skipped'])} skipped: no usable audio)" if r["skipped"] else ""),
                 f"split: {r['split']}; train {rows['train']:,}, validation {rows['val']:,}, test {rows['test']:,}",
                 f"features: {r['features']['kind']} ({r['features']['n_mels']} mel bands), normalised {r['normalize']};"
                 f" {len(r['symbols'])} symbols; decoding: "
                 + ("most probable single label" if r["target"] == "label" else
                    f"beam {r['beam_width']}, prior {r['prior']}")]  # fmt: skip
        if r["target"] == "label":
            lines.append(f"test accuracy {r['accuracy']:.4f}   macro-F1 {r['macro_f1']:.4f}   (baseline: {r['baseline']['name']}:"
                         f" {r['baseline']['accuracy']:.4f}; majority class {r['majority_accuracy']:.4f})")  # fmt: skip
        else:
            lines.append(f"test CER {r['cer']:.4f}   WER {r['wer']:.4f}   sentence accuracy {r['sentence_accuracy']:.4f}"
                         f"   (greedy: CER {r['greedy']['cer']:.4f})")  # fmt: skip
        if r.get("per_speaker"):
            measure = "accuracy" if r["target"] == "label" else "cer"
            lines.append("per test speaker " + measure + ": " + ", ".join(
                f"{s} {v[measure]:.4f}" for s, v in r["per_speaker"].items()))  # fmt: skip
        if r["target"] == "label":
            lines += ["", classification.format_confusion(torch.tensor(r["confusion"]), r["labels"])]
        return "\n".join(lines)

    def load(self, run_dir: str | Path) -> Recognizer:
        return Recognizer.load(run_dir)

    def evaluate_file(self, run: Run, path) -> dict[str, Any]:
        """Every recording a ``file,text`` CSV names (paths relative to the CSV's folder)."""
        recognizer = self.load(run.run_dir)
        path = Path(path)
        recordings = read_recordings(SpeechConfig(data=str(path.parent), transcripts=str(path)))
        unknown = sorted({s for t in recordings.texts for s in (t if recognizer.target == "text" else [t])}
                         - set(recognizer.symbols))  # fmt: skip
        if unknown:
            warnings.warn(f"{path}: transcripts hold {len(unknown)} symbol(s) the model never learned ({unknown[:8]}):"
                          " they count as errors", stacklevel=2)  # fmt: skip
        audios = [recognizer.read(f) for f in recordings.files]
        hypotheses = [t.text for t in recognizer.transcribe_audio(audios)]
        scores = _text_scores(recordings.texts, hypotheses)
        if recognizer.target == "label":
            scores = {"accuracy": float(np.mean([h == r for h, r in zip(hypotheses, recordings.texts)])), **scores}
        return {"source": str(path), "recordings": len(audios), **scores}

    def commands(self) -> dict[str, Command]:
        return {"transcribe": TRANSCRIBE}


def _subset(recordings: Recordings, rows: list[int]) -> Recordings:
    pick = lambda values: [values[i] for i in rows] if values is not None else None  # noqa: E731
    return Recordings(pick(recordings.files), pick(recordings.texts), pick(recordings.speakers),
                      pick(recordings.indices), recordings.source, pick(recordings.sides))  # fmt: skip


def _warn_unseen(recordings: Recordings, split, vocabulary: list[str], target: str) -> None:
    known = set(vocabulary)
    unseen = sorted({s for i in split.val + split.test for s in ([recordings.texts[i]] if target == "label"
                                                                 else recordings.texts[i])} - known)  # fmt: skip
    if unseen:
        warnings.warn(f"the validation and test transcripts hold {len(unseen)} symbol(s) no training transcript has"
                      f" ({unseen[:8]}): the model cannot output them, and they count as errors", stacklevel=3)  # fmt: skip


def _text_scores(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    return {"cer": error_rates.cer(references, hypotheses), "wer": error_rates.wer(references, hypotheses),
            "sentence_accuracy": float(np.mean([h == r for h, r in zip(hypotheses, references)]))}  # fmt: skip


def _per_speaker(speakers: list[str], references: list[str], hypotheses: list[str], target: str) -> dict[str, Any]:
    out = {}
    for speaker in sorted(set(speakers)):
        rows = [i for i, s in enumerate(speakers) if s == speaker]
        refs, hyps = [references[i] for i in rows], [hypotheses[i] for i in rows]
        scores: dict[str, Any] = {"recordings": len(rows)}
        if target == "label":
            scores["accuracy"] = float(np.mean([h == r for h, r in zip(hyps, refs)]))
        else:
            scores.update(_text_scores(refs, hyps))
        out[speaker] = scores
    return out


def alignment_figure(features: np.ndarray, logits: torch.Tensor, decoded: list[int], symbols: list[str],
                     hop_ms: float, stride: int, title: str):  # fmt: skip
    """A recording's features (time across) with the CTC alignment of its decoded output: where
    each decoded symbol's frames lie (forced alignment on the model's own outputs), and the
    per-frame probability of the blank and of the symbol emitted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5), dpi=110)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    seconds = len(features) * hop_ms / 1000
    top.imshow(features.T, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, features.shape[1]))
    top.set_ylabel("feature channel")
    top.set_title(title, fontsize=10)
    frame_s = stride * hop_ms / 1000  # one output frame
    probs = logits.softmax(-1)
    times = (np.arange(len(logits)) + 0.5) * frame_s
    bottom.plot(times, probs[:, 0].numpy(), color="0.6", linewidth=1, label="blank")
    if decoded:
        path = forced_align(logits, decoded).tolist()
        start = None
        for t, c in enumerate(path + [0]):
            if start is not None and (c != path[start] or t == len(path)):
                label = symbols[path[start] - 1]
                for axes in (top, bottom):
                    axes.axvspan(start * frame_s, t * frame_s, color="tab:cyan", alpha=0.25)
                top.text((start + t) / 2 * frame_s, features.shape[1] * 0.92, label, ha="center", color="white",
                         fontsize=11, fontweight="bold")  # fmt: skip
                start = None
            if start is None and c != 0 and t < len(path):
                start = t
        emitted = [probs[t, c].item() if c else np.nan for t, c in enumerate(path)]
        bottom.plot(times, emitted, color="tab:blue", linewidth=1.5, marker=".", label="aligned symbol")
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("probability")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper right", fontsize=8)
    transcript = (" ".join if len(symbols[0]) > 1 or symbols[0].isdigit() else "".join)([symbols[i - 1] for i in decoded])
    bottom.set_title(f"decoded: {transcript!r} (shaded: the CTC alignment)", fontsize=9)
    return figure


# -----------------------------------------------------------------------------
# `rnnkit transcribe`


def _transcribe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train speech'")
    parser.add_argument("files", metavar="FILE.wav", nargs="*", help="recordings to transcribe")
    parser.add_argument("--stream", action="store_true",
                        help="read audio on stdin (a WAV stream, or raw 16-bit little-endian PCM) and print the"
                             " transcript as it grows (greedy decoding, frame by frame)")  # fmt: skip
    parser.add_argument("--rate", type=int, default=None,
                        help="--stream of raw PCM: its sample rate (default: the model's)")  # fmt: skip
    parser.add_argument("--channels", type=int, default=1, help="--stream of raw PCM: interleaved channels (default 1)")
    parser.add_argument("--greedy", action="store_true",
                        help="greedy decoding (the most likely class per frame, collapsed): what --stream does")


def _transcribe(args: argparse.Namespace) -> int:
    recognizer = Recognizer.load(args.run_dir)
    if args.stream:
        if args.files:
            raise ValueError("--stream reads stdin: give no FILE.wav with it")
        return _stream(recognizer, sys.stdin.buffer, args.rate, args.channels)
    if not args.files:
        raise ValueError("give one or more FILE.wav to transcribe, or --stream to read stdin")
    from .audio import AudioError

    failed = 0
    with closed_stdout_is_fine():
        for file in args.files:  # one at a time: a bad file is said and the rest still transcribed
            try:
                audio = recognizer.read(file)
            except (AudioError, FileNotFoundError) as error:
                print(f"rnnkit: error: {error}", file=sys.stderr, flush=True)
                failed += 1
                continue
            transcript = recognizer.transcribe_audio([audio], greedy=args.greedy)[0]
            for note in transcript.notes:
                print(f"rnnkit: warning: {file}: {note}", file=sys.stderr, flush=True)
            sys.stdout.write(f"{file}\t{transcript.text}\n")
            sys.stdout.flush()
    return 1 if failed else 0


def _stream(recognizer: Recognizer, stdin, rate: int | None, channels: int) -> int:
    from .stream import pcm_chunks

    streaming = recognizer.stream()
    with closed_stdout_is_fine():
        for samples in pcm_chunks(stdin, recognizer.settings.sample_rate, rate, channels):
            text = streaming.push(samples)
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
        sys.stdout.write(streaming.finish() + "\n")
        sys.stdout.flush()
    return 0


TRANSCRIBE = Command(
    help="transcribe recordings with a trained speech model; prints FILE<TAB>transcript per file,"
         " or with --stream the transcript of stdin as it grows",  # fmt: skip
    example="rnnkit transcribe runs/speech-20261203-120000 one.wav two.wav",
    add_arguments=_transcribe_arguments,
    run=_transcribe,
)
