"""What the benchmark runs: cases (one shape, one mode), the numbered configurations that group
them (REFERENCE.md "Benchmark configurations" 1-9, plus 10-14 for rnnkit's own paths and the
options torch.nn lacks), and the FLOP count every rate is computed from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable

from .._validation import check_choice, check_positive_int

# gates G per kind; minGRU has two input blocks (z, h~) and no recurrent matmul
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4, "mingru": 2}
KIND_NAMES = {"rnn_tanh": "RNN tanh", "rnn_relu": "RNN relu", "gru": "GRU", "lstm": "LSTM", "mingru": "minGRU"}
MODES = ("train", "infer", "step")


@dataclass(frozen=True)
class Case:
    """One benchmarked shape in one mode.

    ``mode``: ``"train"`` times forward + backward of ``output.sum()``; ``"infer"`` a forward
    under ``torch.no_grad()``; ``"step"`` one streaming step (``layer.step``) with the state
    carried from call to call, so ``steps`` is 1 (against one torch.nn cell call per layer).
    ``input_size`` defaults to ``hidden_size``.
    ``options`` are rnnkit keyword options torch.nn lacks (``(("layer_norm", True),)``);
    ``backend`` is the torch-compatible layers' (``"loop"`` times rnnkit's own step path).
    ``config`` is the id of the configuration the case belongs to.
    """

    kind: str
    hidden_size: int
    batch: int
    steps: int
    mode: str
    input_size: int = 0
    layers: int = 1
    options: tuple[tuple[str, object], ...] = ()
    backend: str = "auto"
    config: str = ""

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, tuple(GATES))
        check_choice("mode", self.mode, MODES)
        for name in ("hidden_size", "batch", "steps", "layers"):
            check_positive_int(name, getattr(self, name))
        if self.input_size == 0:
            object.__setattr__(self, "input_size", self.hidden_size)
        check_positive_int("input_size", self.input_size)
        if not isinstance(self.options, tuple) or not all(
            isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], str) for o in self.options
        ):
            raise TypeError(f"options must be a tuple of (name, value) pairs, got {self.options!r}")
        check_choice("backend", self.backend, ("auto", "torch", "loop"))
        if self.kind == "mingru" and (self.options or self.backend != "auto"):
            raise ValueError(
                "options and backend apply to the torch-compatible kinds, got kind='mingru' with"
                f" options={self.options!r}, backend={self.backend!r}"
            )
        if self.mode == "step":
            if self.kind == "mingru" or self.options or self.steps != 1 or self.backend != "auto":
                raise ValueError(
                    "mode='step' compares a layer's step with bare torch.nn cell calls, one per layer: it"
                    f" needs kind lstm/gru/rnn_*, steps=1, no options and backend='auto', got {self}"
                )

    @property
    def label(self) -> str:
        """Short description: ``LSTM I256 H512 B32 T50``, ``LSTM H200 L2 B1 T15 layer_norm``."""
        parts = [KIND_NAMES[self.kind]]
        if self.input_size != self.hidden_size:
            parts.append(f"I{self.input_size}")
        parts.append(f"H{self.hidden_size}")
        if self.layers > 1:
            parts.append(f"L{self.layers}")
        parts.append(f"B{self.batch}")
        if self.mode != "step":
            parts.append(f"T{self.steps}")
        for name, value in self.options:
            parts.append(name if value is True else f"{name}={value}")
        if self.backend != "auto":
            parts.append(f"backend={self.backend}")
        return " ".join(parts)


@dataclass(frozen=True)
class Config:
    """A numbered benchmark configuration: its full cases and its ``--quick`` cases (maybe none)."""

    id: str
    title: str
    cases: tuple[Case, ...]
    quick: tuple[Case, ...] = field(default=())


def forward_flops(
    kind: str,
    input_size: int,
    hidden_size: int,
    batch: int,
    steps: int,
    layers: int = 1,
    *,
    input_projection: bool = True,
    proj_size: int = 0,
) -> int:
    """Matmul FLOPs of one forward: ``2 * G * H * (I + H) * B * T`` summed over the layers.

    G = 1 (Elman), 3 (GRU), 4 (LSTM), 2 (minGRU, whose recurrence has no matmul: ``H`` drops out
    of ``I + H``). Layers above the first read ``H`` inputs. An LSTM with ``proj_size`` P feeds
    back (and passes up) P units and adds the projection ``2 * H * P * B * T`` per layer.
    ``input_projection=False`` leaves out the ``I`` term, DeepBench's convention. Elementwise work
    is not counted.
    """
    gates = GATES[check_choice("kind", kind, tuple(GATES))]
    state = proj_size or hidden_size  # what is fed back and passed up
    recurrent = 0 if kind == "mingru" else state
    total, size = 0, input_size
    for _ in range(layers):
        total += 2 * gates * hidden_size * ((size if input_projection else 0) + recurrent) * batch * steps
        total += 2 * hidden_size * proj_size * batch * steps
        size = state
    return total


def case_flops(case: Case, *, input_projection: bool = True) -> int:
    """FLOPs of one timed call of ``case``: training counts 3 x forward (forward + two backward matmuls)."""
    flops = forward_flops(
        case.kind, case.input_size, case.hidden_size, case.batch, case.steps, case.layers,
        input_projection=input_projection, proj_size=int(dict(case.options).get("proj_size", 0)),
    )  # fmt: skip
    return 3 * flops if case.mode == "train" else flops


# -----------------------------------------------------------------------------
# the configurations (REFERENCE.md, "Benchmark configurations")

CONFIGS: dict[str, Config] = {}


def register_config(config: Config) -> Config:
    """Add a configuration under ``config.id`` (its cases are stamped with the id)."""
    if config.id in CONFIGS:
        raise ValueError(f"a benchmark configuration with id {config.id!r} is already registered")
    stamp = lambda cases: tuple(replace(c, config=config.id) for c in cases)  # noqa: E731
    config = replace(config, cases=stamp(config.cases), quick=stamp(config.quick))
    CONFIGS[config.id] = config
    return config


def _both(kind: str, hidden: int, batch: int, steps: int, **more) -> tuple[Case, Case]:
    return Case(kind, hidden, batch, steps, "train", **more), Case(kind, hidden, batch, steps, "infer", **more)


_ln = (("layer_norm", True),)
_zo = (("zoneout", 0.1),)

for _config in (
    Config("1", "LSTM H1024 B64 T25, training (DeepBench)", (Case("lstm", 1024, 64, 25, "train"),)),
    Config("2", "LSTM H512 B16 T25, training and inference (small, overhead-bound)",
           _both("lstm", 512, 16, 25), quick=_both("lstm", 512, 16, 25)),
    Config("3", "LSTM H256 B16 T150, training (character LM)",
           (Case("lstm", 256, 16, 150, "train"),), quick=(Case("lstm", 256, 16, 50, "train"),)),
    Config("4", "GRU H1024 B32 T1500, training (DeepBench speaker id; long)",
           (Case("gru", 1024, 32, 1500, "train"),),
           quick=(Case("gru", 1024, 32, 25, "train"), Case("gru", 256, 16, 50, "train"))),
    Config("5", "Elman ReLU and tanh H1760 B16 T50, training (DeepSpeech)",
           (Case("rnn_relu", 1760, 16, 50, "train"), Case("rnn_tanh", 1760, 16, 50, "train")),
           quick=(Case("rnn_relu", 1760, 16, 25, "train"), Case("rnn_tanh", 1760, 16, 25, "train"),
                  Case("rnn_tanh", 256, 16, 50, "train"))),
    Config("6", "LSTM I256 H512 B32 T50, inference and training (Haste's grid)",
           _both("lstm", 512, 32, 50, input_size=256), quick=_both("lstm", 512, 32, 50, input_size=256)),
    Config("7", "streaming LSTM H512 and H256, B1, one step per call, state carried",
           (Case("lstm", 512, 1, 1, "step"), Case("lstm", 256, 1, 1, "step")),
           quick=(Case("lstm", 512, 1, 1, "step"), Case("lstm", 256, 1, 1, "step"))),
    Config("8", "CPU: LSTM I=H=500 B64 T35 training and inference; 2-layer LSTM I250 H200 B1 T15 inference",
           _both("lstm", 500, 64, 35) + (Case("lstm", 200, 1, 15, "infer", input_size=250, layers=2),),
           quick=(Case("lstm", 200, 1, 15, "infer", input_size=250, layers=2),)),
    Config("9", "minGRU (parallel scan) vs torch.nn.GRU, H256 B16, T 512 and 4096, training",
           (Case("mingru", 256, 16, 512, "train"), Case("mingru", 256, 16, 4096, "train")),
           quick=(Case("mingru", 256, 16, 512, "train"),)),
    Config("10", "layer-norm LSTM H256 B32 T200 vs torch.nn.LSTM (an option torch.nn lacks)",
           _both("lstm", 256, 32, 200, options=_ln), quick=(Case("lstm", 256, 32, 50, "train", options=_ln),)),
    Config("11", "zoneout GRU (0.1) H256 B32 T200 vs torch.nn.GRU (an option torch.nn lacks), training",
           (Case("gru", 256, 32, 200, "train", options=_zo),),
           quick=(Case("gru", 256, 32, 50, "train", options=_zo),)),
    Config("12", "rnnkit's own step path (backend='loop': hand-written BPTT where it applies) vs the fused"
           " kernel, H256 B32 T200 training",
           tuple(Case(k, 256, 32, 200, "train", backend="loop") for k in ("lstm", "gru", "rnn_tanh")),
           quick=(Case("lstm", 256, 32, 50, "train", backend="loop"),)),
    Config("13", "more options on the hand-written BPTT, H256 B32 T50 training: reset-before GRU, LSTM with"
           " projections (backend='loop'; auto takes torch's kernel), peepholes, recurrent dropout + dropconnect",
           (Case("gru", 256, 32, 50, "train", options=(("reset_after", False),)),
            Case("lstm", 256, 32, 50, "train", options=(("proj_size", 128),), backend="loop"),
            Case("lstm", 256, 32, 50, "train", options=(("peepholes", True),)),
            Case("lstm", 256, 32, 50, "train", options=(("recurrent_dropout", 0.25), ("dropconnect", 0.25)))),
           quick=(Case("gru", 256, 32, 50, "train", options=(("reset_after", False),)),
                  Case("lstm", 256, 32, 50, "train", options=(("proj_size", 128),), backend="loop"))),
    Config("14", "streaming 2-layer LSTM and GRU, H256 and H512, B1, one step per call vs a stack of torch.nn"
           " cells (issue 18's bar: LSTM H256 within 1.0x of two nn.LSTMCell calls)",
           tuple(Case(k, h, 1, 1, "step", layers=2) for k in ("lstm", "gru") for h in (256, 512)),
           quick=tuple(Case(k, h, 1, 1, "step", layers=2) for k in ("lstm", "gru") for h in (256, 512))),
):  # fmt: skip
    register_config(_config)


def parse_configs(spec: str | Iterable[str | int] | None) -> list[str]:
    """Configuration ids from ``"1,2,6"`` (or a list); None or ``"all"`` means every one."""
    if spec is None or spec == "all":
        return list(CONFIGS)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    ids = [str(item).strip() for item in items]
    unknown = [i for i in ids if i not in CONFIGS]
    if unknown or not ids:
        raise ValueError(
            f"configs must be comma-separated ids among {', '.join(CONFIGS)}, got {spec!r}"
        )
    return list(dict.fromkeys(ids))  # keep order, drop repeats


def select_cases(configs: str | Iterable | None = None, *, quick: bool = False) -> list[Case]:
    """The cases of ``configs`` (ids, Config or Case objects); ``quick`` takes each one's quick subset."""
    if configs is not None and not isinstance(configs, str):
        configs = list(configs)
        if configs and all(isinstance(c, (Case, Config)) for c in configs):
            cases: list[Case] = []
            for c in configs:
                cases.extend([c] if isinstance(c, Case) else (c.quick if quick else c.cases))
            return cases
    ids = parse_configs(configs)
    if quick:
        if configs is None or configs == "all":
            ids = [i for i in ids if CONFIGS[i].quick]
        missing = [i for i in ids if not CONFIGS[i].quick]
        if missing:
            with_quick = ", ".join(i for i in CONFIGS if CONFIGS[i].quick)
            raise ValueError(
                f"configuration {', '.join(missing)} has no --quick variant (those that do: {with_quick});"
                " drop --quick to run them in full"
            )
        return [c for i in ids for c in CONFIGS[i].quick]
    return [c for i in ids for c in CONFIGS[i].cases]
