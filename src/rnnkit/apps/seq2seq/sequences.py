"""Generated sequence-to-sequence tasks: reverse, sort or copy a sequence of random symbols.

``rnnkit train seq2seq --task.kind=reverse`` (:mod:`rnnkit.apps.seq2seq.app`) trains an
:class:`~rnnkit.models.EncoderDecoder` and reports the exact-match accuracy of greedy decoding on
held-out sequences. Sections, in order: the data, the metric, the objective.

Token ids: ``0`` pad, ``1`` start, ``2`` end, then the ``num_symbols`` symbols. A source is
``min_length`` to ``max_length`` random symbols, padded; its target is the answer (the symbols
reversed, sorted, or as they are), the end token, then padding. The decoder's start token is
added by the model (teacher forcing shifts the target right by one).

>>> pairs = sequence_pairs("sort", 2, min_length=3, max_length=5, generator=torch.Generator().manual_seed(0))
>>> pairs.source.tolist(), pairs.lengths.tolist()
([[6, 3, 6, 12, 10], [6, 10, 6, 0, 0]], [5, 3])
>>> pairs.target.tolist()
[[3, 6, 6, 10, 12, 2], [6, 6, 10, 2, 0, 0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._validation import check_choice, check_positive_int
from ...metrics.sequences import exact_match as exact_match
from ...models import TeacherForcingSchedule
from ...training import StepOutput

PAD, START, END = 0, 1, 2
FIRST_SYMBOL = 3
KINDS = ("reverse", "sort", "copy")


# -----------------------------------------------------------------------------
# the data


@dataclass
class SequencePairs:
    source: Tensor  # (n, max_length) symbol ids, then PAD
    lengths: Tensor  # (n,) symbols in each source
    target: Tensor  # (n, max_length + 1) the answer, END, then PAD


def sequence_pairs(
    kind: str,
    n: int,
    *,
    num_symbols: int = 10,
    min_length: int = 5,
    max_length: int = 12,
    generator: torch.Generator | None = None,
) -> SequencePairs:
    """Draw ``n`` source-target pairs of task ``kind`` (``"reverse"``, ``"sort"`` or ``"copy"``)."""
    check_choice("kind", kind, KINDS)
    n = check_positive_int("n", n)
    check_positive_int("num_symbols", num_symbols)
    check_positive_int("min_length", min_length)
    check_positive_int("max_length", max_length)
    if min_length > max_length:
        raise ValueError(f"min_length must be <= max_length, got min_length={min_length}, max_length={max_length}")
    lengths = torch.randint(min_length, max_length + 1, (n,), generator=generator)  # (n,)
    symbols = torch.randint(FIRST_SYMBOL, FIRST_SYMBOL + num_symbols, (n, max_length), generator=generator)
    valid = torch.arange(max_length) < lengths[:, None]  # (n, L)
    source = symbols.masked_fill(~valid, PAD)
    if kind == "copy":
        answer = source
    elif kind == "sort":  # padding (0) sorts first: sort descending, then reverse within each length
        answer = _reverse_within(source.sort(dim=1, descending=True).values, lengths)
    else:
        answer = _reverse_within(source, lengths)
    target = torch.cat([answer, torch.full((n, 1), PAD)], dim=1)  # (n, L + 1)
    target[torch.arange(n), lengths] = END
    return SequencePairs(source, lengths, target)


def _reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Each row's first ``lengths[b]`` entries reversed, the rest left where they are."""
    t = torch.arange(x.shape[1])[None]  # (1, L)
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (n, L)
    return x.gather(1, index)


# -----------------------------------------------------------------------------
# the metric


@torch.no_grad()
def exact_match_accuracy(model: nn.Module, pairs: SequencePairs, *, batch_size: int = 500, beam_size: int = 1) -> float:
    """The fraction of ``pairs`` that ``model.generate`` (greedy, or beam search) gets exactly right."""
    device = next(model.parameters()).device
    right = 0
    for i in range(0, pairs.source.shape[0], batch_size):
        source, lengths = pairs.source[i : i + batch_size], pairs.lengths[i : i + batch_size]
        target = pairs.target[i : i + batch_size]
        source = source[:, : int(lengths.max())]
        out = model.generate(source.to(device), lengths.to(device), max_length=target.shape[1], beam_size=beam_size)
        right += int(exact_match(out.tokens, target).sum())
    return right / pairs.source.shape[0]


# -----------------------------------------------------------------------------
# the objective


class Seq2SeqObjective:
    """Cross-entropy over the target tokens, padding ignored; scheduled sampling in training.

    ``batch`` is ``(source, target, source_lengths)`` for an encoder-decoder or ``(condition,
    target)`` for a :class:`~rnnkit.models.OneToMany`; each batch is trimmed to its longest
    sequence. In training mode the teacher-forcing probability follows ``schedule`` over the
    objective's own count of training calls (``step``, settable on resume); evaluation is always
    teacher-forced. Metrics: ``accuracy`` (of the next token, teacher-forced) and
    ``teacher_forcing``. ``label_smoothing`` (Szegedy et al. 2016, section 7; 0.1 in Vaswani et
    al. 2017) spreads that share of each target's probability over the whole vocabulary in the
    training loss; the evaluation loss stays the plain cross-entropy, comparable across settings.
    """

    def __init__(
        self, schedule: TeacherForcingSchedule | None = None, *, pad_token: int = PAD, label_smoothing: float = 0.0
    ) -> None:
        schedule = TeacherForcingSchedule() if schedule is None else schedule
        if not isinstance(schedule, TeacherForcingSchedule):
            raise TypeError(f"schedule must be a TeacherForcingSchedule or None, got {type(schedule).__name__}")
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or not (
            0.0 <= label_smoothing < 1.0
        ):
            raise ValueError(f"label_smoothing must be a number in [0, 1), got {label_smoothing!r}")
        self.schedule, self.pad_token, self.step = schedule, pad_token, 0
        self.label_smoothing = float(label_smoothing)

    def __call__(self, model: nn.Module, batch: tuple[Tensor, ...], state: Any = None) -> StepOutput:
        source, target, *rest = batch
        keep = target != self.pad_token  # (B, T)
        target = target[:, : int(keep.sum(1).max())]
        keep = keep[:, : target.shape[1]]
        if model.training:
            teacher_forcing = self.schedule(self.step)
            self.step += 1
        else:
            teacher_forcing = 1.0
        if rest:
            lengths = rest[0]
            source = source[:, : int(lengths.max())]
            logits = model(source, target, lengths, teacher_forcing=teacher_forcing)  # (B, T, V)
        else:
            logits = model(source, target, teacher_forcing=teacher_forcing)
        smoothing = self.label_smoothing if model.training else 0.0
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=self.pad_token,
                               label_smoothing=smoothing)  # fmt: skip
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == target)[keep].float().mean().item()
        count = int(keep.sum())
        return StepOutput(loss, count, None, {"accuracy": accuracy, "teacher_forcing": teacher_forcing},
                          examples=target.shape[0])  # sequences: count is their target tokens
