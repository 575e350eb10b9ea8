"""The run directory: what a training run leaves behind, and :func:`load` to use it.

::

    run_dir/
      config.json          model spec, training settings, task settings
      model.safetensors    final weights (the best evaluated checkpoint's, if any)
      metrics.jsonl        one JSON object per line: train windows and evaluations
      checkpoints/         step-XXXXXXXX/ directories, best.json
      plots/loss.png       loss curves
      summary.md           a short human-readable account
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._io import StateFileError, atomic_write_text, load_tensors, read_json, run_file, save_figure

PLOT_FILE = Path("plots") / "loss.png"


class MetricsLog:
    """Append-only JSON lines; :meth:`truncate_after` drops what a resumed run will redo."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = [r for r in self.read() if r.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics log; a torn last line (a crash mid-write) is skipped."""
    records = []
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def last_evaluation(run_dir: Path) -> dict[str, float]:
    """The ``val_*`` figures of the last evaluation in ``run_dir/metrics.jsonl`` (empty without one)."""
    evaluations = [r for r in read_metrics(Path(run_dir) / "metrics.jsonl") if r.get("split") == "val"]
    return {k: v for k, v in evaluations[-1].items() if k.startswith("val_")} if evaluations else {}


def epochs_done(step: int, epoch: int, batch: int, batches_per_epoch: int | None) -> str:
    """How much of the data training read, honestly: ``"2 epochs"``, ``"1.43 epochs"``, or for a
    run that stopped inside its first epoch ``"0.25 of an epoch"``."""
    if not batches_per_epoch:
        return f"{epoch} full epoch(s)"
    done = epoch + batch / batches_per_epoch
    if done == int(done):
        return f"{int(done)} epoch{'s' if done != 1 else ''}"
    return f"{done:.2f} of an epoch" if done < 1 else f"{done:.2f} epochs"


def write_plots(run_dir: Path) -> Path | None:
    """``plots/loss.png``: training and validation loss against steps (needs matplotlib)."""
    records = read_metrics(run_dir / "metrics.jsonl")
    train = [(r["step"], r["loss"]) for r in records if r.get("split") == "train"]
    val = [(r["step"], r["val_loss"]) for r in records if r.get("split") == "val" and "val_loss" in r]
    if not train and not val:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(7, 4))
    for points, label in ((train, "train"), (val, "validation")):
        if points:
            axes.plot(*zip(*points), label=label, marker="o" if label == "validation" else None, markersize=3)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(run_dir.name)
    axes.grid(alpha=0.3)
    axes.legend()
    path = save_figure(figure, run_dir / PLOT_FILE, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def write_summary(
    run_dir: Path,
    *,
    state: dict[str, Any],
    last_eval: dict[str, float],
    parameters: int,
    monitor: str,
    best_from_checkpoint: bool,
    batches_per_epoch: int | None = None,
) -> Path:
    """``summary.md``; ``batches_per_epoch`` (the training batcher's length) lets it say how many
    epochs the steps were, fractions included."""
    epochs = epochs_done(state["step"], state["epoch"], state.get("batch", 0), batches_per_epoch)
    per_epoch = f" of {batches_per_epoch:,} batches" if batches_per_epoch else ""
    lines = [
        f"# Run {run_dir.name}",
        "",
        f"- parameters: {parameters:,}",
        f"- steps: {state['step']:,} ({epochs}{per_epoch}), {state['seconds'] / 60:.1f} min",
        f"- stopped by: {state['stopped_by'] or 'completion'}",
    ]
    if state.get("last_train_loss") is not None:
        lines.append(f"- last training loss: {state['last_train_loss']:.4f}")
    for name, value in last_eval.items():
        lines.append(f"- last {name}: {value:.4f}")
    if state.get("best") is not None:
        lines.append(f"- best {monitor}: {state['best']:.4f}")
    source = "the best evaluated checkpoint" if best_from_checkpoint else "the last step"
    lines += [
        f"- model.safetensors holds the weights of {source}",
        "",
        "Files: config.json, model.safetensors, metrics.jsonl, checkpoints/, plots/loss.png.",
        "Load in Python with `rnnkit.load(path)`.",
        "",
    ]
    path = run_dir / "summary.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def load(run_dir: str | Path, *, weights: str = "model.safetensors") -> nn.Module:
    """The model of a finished run, rebuilt from ``config.json``, weights loaded, in eval mode.

    Only JSON and safetensors are read: nothing in a run directory is unpickled, nothing outside it
    or behind a symbolic link is read. Before anything is allocated, the model ``config.json``
    describes is built on the meta device and held to the weights file's header (names and
    shapes), so a run directory cannot make rnnkit allocate a model its weights do not fit; weights
    that hold NaN or infinity are refused (a run that diverged), each in one line.
    """
    from ..models import create_model

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    config = read_json(run_file(run_dir, "config.json"))
    spec = config.get("model") if isinstance(config, dict) else None
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"{run_dir / 'config.json'} has no model spec: was the run trained with a registered model?")
    path = run_file(run_dir, weights)
    with torch.device("meta"):  # shapes only: no memory, whatever config.json says
        skeleton = create_model(spec["name"], spec.get("config"))
    check_fits(skeleton, weight_shapes(path), path)
    model = create_model(spec["name"], spec.get("config"))
    state = load_tensors(path)
    check_finite(state, path)
    model.load_state_dict(state)
    return model.eval()


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of a safetensors file, from its header alone (nothing loaded)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise StateFileError(f"{path} is not a readable safetensors file: {err}") from None


def check_fits(model: nn.Module, shapes: dict[str, tuple[int, ...]], source: Path | str) -> None:
    """``shapes`` (a weights file's) are exactly ``model``'s parameters and buffers: the same names
    and shapes, else a ``ValueError`` naming the first difference."""
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    missing = [n for n in expected if n not in shapes]
    unexpected = [n for n in shapes if n not in expected]
    if missing or unexpected:
        raise ValueError(f"{source} does not fit the model in config.json: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for name, shape in expected.items():
        if shapes[name] != shape:
            raise ValueError(
                f"{source} does not fit the model in config.json: {name} has shape {shapes[name]}, the model's is {shape}"
            )


def check_finite(tensors: dict[str, Tensor], source: Path | str) -> None:
    """No tensor of ``tensors`` holds NaN or infinity, else a ``ValueError`` naming the first that does."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(
                f"{source} holds non-finite weights: {name} has {bad} NaN or infinite value(s) of {tensor.numel()}"
                " (the run diverged; resume from an earlier checkpoint with a lower learning rate, or retrain)"
            )


def check_optimizer_state(optimizer_state: dict[str, Any], parameters: list[nn.Parameter], source: Path | str) -> None:
    """An optimizer state dict's per-parameter tensors (Adam's moments, SGD's momentum) have their
    parameters' shapes, else a ``ValueError`` naming the first that does not."""
    order = [p for group in optimizer_state.get("param_groups", []) for p in group.get("params", [])]
    state = optimizer_state.get("state", {})
    if len(order) != len(parameters):
        raise ValueError(f"{source}: the optimizer state covers {len(order)} parameters, the model has {len(parameters)}")
    for index, parameter in zip(order, parameters):
        for key, value in state.get(index, {}).items():
            if isinstance(value, Tensor) and value.dim() > 0 and tuple(value.shape) != tuple(parameter.shape):
                raise ValueError(
                    f"{source}: the optimizer's {key} of parameter {index} has shape {tuple(value.shape)},"
                    f" the parameter's is {tuple(parameter.shape)}"
                )
