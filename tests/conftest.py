"""Test-wide settings.

The tests run tiny tensors, for which one intra-op thread is fastest; two threads that busy-wait
beside other work on a 2-core machine made single calls up to 300x slower.
"""

import torch

torch.set_num_threads(1)


import math  # noqa: E402
import warnings  # noqa: E402

import pytest  # noqa: E402


def _tiny_data(root, app: str) -> list[str]:
    """A data file for ``app`` under ``root`` and the overrides of a run that trains in a second."""
    if app == "text":
        (root / "text.txt").write_text("the quick brown fox jumps over the lazy dog. " * 80)
        return [f"task.data={root / 'text.txt'}", "task.bptt=16", "task.batch_size=4", "task.sample_length=5",
                "model.encoder.hidden_size=16", "model.encoder.num_layers=1", "model.input.embedding_dim=8"]  # fmt: skip
    if app == "classify":
        rows = [f"{'good great fine' if i % 2 else 'bad awful poor'} film {i},{'pos' if i % 2 else 'neg'}" for i in range(60)]
        (root / "reviews.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
        return [f"task.data={root / 'reviews.csv'}", "task.min_count=1", "task.batch_size=8",
                "model.encoder.hidden_size=8", "model.input.embedding_dim=8"]  # fmt: skip
    if app == "forecast":
        (root / "series.csv").write_text("time,y\n" + "".join(f"{i},{10 + math.sin(i / 4):.4f}\n" for i in range(200)))
        return [f"task.data={root / 'series.csv'}", "task.time_column=time", "task.target=y", "task.horizon=4",
                "task.season=25", "task.baselines=false", "task.calibrate=false", "model.encoder.hidden_size=8"]  # fmt: skip
    if app == "detect":
        (root / "detect.csv").write_text("timestamp,value\n" + "".join(f"{i},{math.sin(i / 4):.4f}\n" for i in range(300)))
        return [f"task.data={root / 'detect.csv'}", "task.chunk=20", "task.batch_size=4", "task.online.every=0",
                "task.threshold=gaussian", "task.hold_off=0", "model.encoder.hidden_size=8"]  # fmt: skip
    if app == "translate":
        pairs = [f"The {a} {e} sleeps.\tLe {f} {fa} dort." for e, f in [("cat", "chat"), ("dog", "chien"), ("bird", "oiseau")]
                 for a, fa in [("red", "rouge"), ("big", "grand"), ("small", "petit"), ("black", "noir"), ("white", "blanc")]]
        (root / "pairs.tsv").write_text("\n".join(pairs) + "\n")
        return [f"task.data={root / 'pairs.tsv'}", "task.test_pairs=3", "task.val_pairs=3", "task.vocab_size=150",
                "task.batch_size=8", "task.beam_size=2", "task.max_output_tokens=8", "model.source.embedding_dim=8",
                "model.embedding_dim=8", "model.encoder.hidden_size=8", "model.decoder.hidden_size=8"]  # fmt: skip
    if app == "tag":
        (root / "tags.conll").write_text("\n".join(f"EU B-ORG\nrejects O\n{'German' if i % 2 else 'French'} B-MISC\ncall O\n"
                                                   for i in range(40)))  # fmt: skip
        return [f"task.data={root / 'tags.conll'}", "model.encoder.hidden_size=8", "task.batch_size=8"]
    raise ValueError(f"no tiny run for app {app!r}")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """``tiny_run(app)``: the run directory of ``rnnkit train APP`` on a few generated rows, three
    steps of training (not a model that learned anything: one to load and serve), made once."""
    from rnnkit.apps import get_app
    from rnnkit.apps.runner import train_app

    made = {}

    def make(app: str):
        if app not in made:
            root = tmp_path_factory.mktemp(f"tiny-{app}")
            overrides = [*_tiny_data(root, app), "train.max_steps=3", "train.eval_every=3", "train.threads=1",
                         "train.warmup_steps=0"]  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                train_app(get_app(app), overrides=overrides, run_dir=root / app, quiet=True)
            made[app] = root / app
        return made[app]

    return make
