"""Speech recognition on the Free Spoken Digit Dataset (FSDD): the figures of docs/speech.md.

The data is read by path (never copied into the repository):

    FSDD=../shared/data/fsdd/recordings

Isolated digits, the official split (indices 0-4 of every speaker and digit are the test set):

    rnnkit train speech --data $FSDD --task.split=index --train.max_minutes=10

Isolated digits, a new voice (train on five speakers, test on the sixth; six runs):

    python benchmarks/speech_fsdd.py isolated-speakers $FSDD OUT

Connected digit strings: 3-7 digits of one speaker joined by 50-300 ms of silence or low noise;
training strings from training recordings only, 500 test strings from the official test recordings
only (``strings`` writes the WAVs and a ``file,text,speaker,split`` CSV under OUT):

    python benchmarks/speech_fsdd.py strings $FSDD OUT/strings-index --split index
    rnnkit train speech --data OUT/strings-index --task.target=text --task.split=table \\
        --model.encoder.bidirectional=false --train.max_minutes=25

and a new voice on strings (``--split speaker``: strings of every speaker from all of their
recordings; ``--task.split=speaker --task.test_speakers=NAME`` holds one out).

Streaming against offline decoding, real-time factor and per-frame latency of a unidirectional run:

    python benchmarks/speech_fsdd.py stream RUN_DIR OUT/strings-index --files 50
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
RATE = 8000


def recordings(folder: Path) -> list[tuple[Path, str, str, int]]:
    out = []
    for path in sorted(folder.glob("*.wav")):
        m = NAME.match(path.name)
        if m:
            out.append((path, m[1], m[2], int(m[3])))
    return out


def gap(rng: np.random.Generator) -> np.ndarray:
    """50-300 ms of silence or of low noise."""
    samples = int(RATE * rng.uniform(0.05, 0.30))
    if rng.random() < 0.5:
        return np.zeros(samples, dtype=np.float32)
    return (rng.uniform(0.001, 0.01) * rng.standard_normal(samples)).astype(np.float32)


def write_strings(pool: list[tuple[Path, str, str, int]], count: int, side: str, out: Path, rng, rows: list,
                  start: int) -> int:  # fmt: skip
    import soundfile as sf

    by_speaker: dict[str, list] = {}
    for item in pool:
        by_speaker.setdefault(item[2], []).append(item)
    speakers = sorted(by_speaker)
    for k in range(count):
        speaker = speakers[k % len(speakers)]
        chosen = [by_speaker[speaker][i] for i in rng.integers(0, len(by_speaker[speaker]), int(rng.integers(3, 8)))]
        parts = [gap(rng)]
        for path, _, _, _ in chosen:
            samples, rate = sf.read(path, dtype="float32")
            assert rate == RATE
            parts += [samples, gap(rng)]
        name = f"string_{start + k:05d}.wav"
        sf.write(out / name, np.concatenate(parts), RATE, subtype="PCM_16")
        rows.append([name, "".join(c[1] for c in chosen), speaker, side])
    return start + count


def build_strings(args) -> None:
    source, out = Path(args.fsdd), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    items, rows = recordings(source), []
    if args.split == "index":  # training strings from training recordings only, test strings from test ones
        n = write_strings([r for r in items if r[3] >= 5], args.train, "train", out, rng, rows, 0)
        write_strings([r for r in items if r[3] < 5], args.test, "test", out, rng, rows, n)
    else:  # every speaker's strings from all of their recordings: hold a speaker out with split=speaker
        write_strings(items, args.train + args.test, "train", out, rng, rows, 0)
    with open(out / "transcripts.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "text", "speaker", "split"])
        writer.writerows(rows)
    print(f"{len(rows)} strings in {out}")


def run(command: list[str]) -> None:
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def speakers_runs(args, target: str, extra: list[str]) -> None:
    """One run per held-out speaker; their figures and the mean."""
    out = Path(args.out)
    speakers = args.speakers.split(",")
    figures = {}
    for speaker in speakers:
        run_dir = out / f"{target}-{speaker}"
        if not (run_dir / "test_results.json").is_file():
            run([sys.executable, "-m", "rnnkit.cli", "train", "speech", "--data", args.data, "--quiet",
                 "--run-dir", str(run_dir), "--task.split=speaker", f"--task.test_speakers={speaker}",
                 f"--train.max_minutes={args.minutes}", *extra])  # fmt: skip
        results = json.loads((run_dir / "test_results.json").read_text())
        figures[speaker] = ({"accuracy": results["accuracy"], "baseline": results["baseline"]["accuracy"]}
                            if target == "label" else {"cer": results["cer"], "wer": results["wer"]})  # fmt: skip
        print(speaker, figures[speaker], flush=True)
    keys = next(iter(figures.values())).keys()
    figures["mean"] = {k: float(np.mean([figures[s][k] for s in speakers])) for k in keys}
    print(json.dumps(figures, indent=1))
    (out / f"{target}-speakers.json").write_text(json.dumps(figures, indent=1))


def stream(args) -> None:
    """Streaming decoding of test strings against offline greedy decoding; real-time factor and latency."""
    import torch

    from rnnkit.apps.speech import Recognizer, read_recordings
    from rnnkit.apps.speech.data import SpeechConfig

    torch.set_num_threads(1)
    recognizer = Recognizer.load(args.run_dir)
    table = read_recordings(SpeechConfig(data=args.data))
    rows = [i for i in range(len(table.files)) if table.sides is None or table.sides[i] == "test"][: args.files]
    same, audio_seconds, compute, frame_times = 0, 0.0, 0.0, []
    chunk = recognizer.settings.hop_length  # 10 ms at a time: one feature frame per push
    for i in rows:
        audio = recognizer.read(table.files[i])
        offline = recognizer.transcribe_audio([audio], greedy=True)[0].text
        streaming = recognizer.stream()
        text, began = "", time.perf_counter()
        for start in range(0, len(audio.samples), chunk):
            t = time.perf_counter()
            text += streaming.push(audio.samples[start : start + chunk])
            frame_times.append(time.perf_counter() - t)
        text += streaming.finish()
        compute += time.perf_counter() - began
        audio_seconds += audio.seconds
        same += text == offline
    times = np.array(frame_times) * 1000
    summary = {"strings": len(rows), "streaming_equals_offline": same, "audio_seconds": audio_seconds,
               "real_time_factor": compute / audio_seconds, "ms_per_10ms_push_median": float(np.median(times)),
               "ms_per_10ms_push_p99": float(np.percentile(times, 99))}  # fmt: skip
    print(json.dumps(summary, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("strings", help="write connected digit strings as WAVs with a transcript CSV")
    s.add_argument("fsdd")
    s.add_argument("out")
    s.add_argument("--split", choices=["index", "speaker"], default="index")
    s.add_argument("--train", type=int, default=3000)
    s.add_argument("--test", type=int, default=500)
    s.add_argument("--seed", type=int, default=0)
    for name, target in (("isolated-speakers", "label"), ("strings-speakers", "text")):
        p = commands.add_parser(name, help=f"six runs, each holding one speaker out ({target} targets)")
        p.add_argument("data")
        p.add_argument("out")
        p.add_argument("--speakers", default="george,jackson,lucas,nicolas,theo,yweweler")
        p.add_argument("--minutes", type=float, default=10)
        p.add_argument("extra", nargs="*", help="more settings, e.g. --model.encoder.hidden_size=96")
        p.set_defaults(target=target)
    t = commands.add_parser("stream", help="streaming against offline decoding; real-time factor and latency")
    t.add_argument("run_dir")
    t.add_argument("data")
    t.add_argument("--files", type=int, default=50)
    args, unknown = parser.parse_known_args()
    if args.command == "strings":
        build_strings(args)
    elif args.command == "stream":
        stream(args)
    else:
        extra = list(args.extra) + unknown + (["--task.target=text"] if args.target == "text" else [])
        speakers_runs(args, args.target, extra)


if __name__ == "__main__":
    main()
