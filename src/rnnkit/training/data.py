"""Batches that an interrupted run can resume exactly, and the contiguous streams of truncated BPTT.

A batcher has ``len()`` (batches per epoch), ``stateful`` (whether the model's state carries
from one batch to the next within an epoch) and ``epoch(index, start=0)``, which yields the
epoch's batches from batch ``start`` on. The order depends only on ``seed`` and the epoch index,
never on the global RNG, so a resumed run sees the batches the uninterrupted run would have seen.
Under distributed training the trainer calls ``shard(rank, world_size)``, and each process
takes its share of every global batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from .._validation import check_nonnegative_int, check_positive_int


class TensorBatches:
    """Mini-batches of rows of equally long tensors, reshuffled every epoch.

    >>> import torch
    >>> batches = TensorBatches(torch.arange(10), torch.arange(10) * 2, batch_size=4, seed=1)
    >>> [x.tolist() for x, _ in batches.epoch(0)]
    [[4, 1, 8, 6], [3, 9, 5, 7], [2, 0]]
    >>> [y.tolist() for _, y in batches.epoch(0, start=2)]  # the same order again, from batch 2
    [[4, 0]]
    """

    stateful = False

    def __init__(
        self,
        *tensors: Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not tensors:
            raise ValueError("TensorBatches needs at least one tensor")
        rows = tensors[0].shape[0]
        for i, t in enumerate(tensors):
            if t.shape[0] != rows:
                raise ValueError(f"every tensor must have {rows} rows, got {t.shape[0]} in tensor {i}")
        self.tensors = tensors
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.world_size = check_positive_int("world_size", world_size)
        self.rank = check_nonnegative_int("rank", rank)
        if self.batch_size % self.world_size:
            raise ValueError(
                f"batch_size must be divisible by the number of processes ({self.world_size}), got {self.batch_size}"
            )
        if rows == 0 or (drop_last and rows < self.batch_size):
            raise ValueError(f"data too short for one batch: {rows} rows, batch_size {self.batch_size}")
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed

    def shard(self, rank: int, world_size: int) -> TensorBatches:
        """The same batches, of which this process takes its share (rank of world_size)."""
        return TensorBatches(
            *self.tensors, batch_size=self.batch_size, shuffle=self.shuffle, drop_last=self.drop_last,
            seed=self.seed, rank=rank, world_size=world_size,
        )  # fmt: skip

    @property
    def rows(self) -> int:
        return self.tensors[0].shape[0]

    def __len__(self) -> int:
        full, rest = divmod(self.rows, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def epoch(self, index: int, start: int = 0) -> Iterator[tuple[Tensor, ...]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
            order = torch.randperm(self.rows, generator=generator)
        else:
            order = torch.arange(self.rows)
        for b in range(start, len(self)):
            rows = order[b * self.batch_size : (b + 1) * self.batch_size]
            share = -(-len(rows) // self.world_size)  # ceil: the last batch may be short
            rows = rows[self.rank * share : (self.rank + 1) * share]
            yield tuple(t[rows] for t in self.tensors)


class BucketBatches(TensorBatches):
    """Mini-batches of rows of similar length: less padding per batch for sequences of mixed lengths.

    Every epoch the rows are shuffled, cut into chunks of ``bucket_batches * batch_size`` rows,
    each chunk sorted by ``lengths`` and cut into batches, and the batches shuffled (the "pool"
    bucketing of fairseq and tensor2tensor). The order depends only on ``seed`` and the epoch, as
    for :class:`TensorBatches`; ``lengths`` is one of the tensors or any ``(N,)`` sizes.

    >>> lengths = torch.tensor([1, 9, 2, 8, 3, 7, 4, 6])
    >>> batches = BucketBatches(lengths, lengths=lengths, batch_size=2, bucket_batches=4, seed=0)
    >>> sorted(sorted(x.tolist()) for (x,) in batches.epoch(0))
    [[1, 2], [3, 4], [6, 7], [8, 9]]
    """

    def __init__(
        self,
        *tensors: Tensor,
        lengths: Tensor,
        batch_size: int,
        bucket_batches: int = 100,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(*tensors, batch_size=batch_size, shuffle=True, seed=seed, rank=rank, world_size=world_size)
        if not isinstance(lengths, Tensor) or lengths.dim() != 1 or lengths.shape[0] != self.rows:
            shape = tuple(lengths.shape) if isinstance(lengths, Tensor) else type(lengths).__name__
            raise ValueError(f"lengths must be a ({self.rows},) tensor, one size per row, got {shape}")
        self.lengths = lengths
        self.bucket_batches = check_positive_int("bucket_batches", bucket_batches)

    def shard(self, rank: int, world_size: int) -> BucketBatches:
        return BucketBatches(
            *self.tensors, lengths=self.lengths, batch_size=self.batch_size, bucket_batches=self.bucket_batches,
            seed=self.seed, rank=rank, world_size=world_size,
        )  # fmt: skip

    def _batches(self, index: int) -> list[Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        order = torch.randperm(self.rows, generator=generator)
        pool = self.bucket_batches * self.batch_size
        batches = []
        for p in range(0, self.rows, pool):
            chunk = order[p : p + pool]
            chunk = chunk[torch.sort(self.lengths[chunk], stable=True).indices]  # by length within the pool
            batches += list(chunk.split(self.batch_size))
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in shuffled]

    def __len__(self) -> int:
        pool = self.bucket_batches * self.batch_size
        full, rest = divmod(self.rows, pool)
        return full * self.bucket_batches + -(-rest // self.batch_size)

    def epoch(self, index: int, start: int = 0) -> Iterator[tuple[Tensor, ...]]:
        for rows in self._batches(index)[start:]:
            share = -(-len(rows) // self.world_size)
            rows = rows[self.rank * share : (self.rank + 1) * share]
            yield tuple(t[rows] for t in self.tensors)


class AugmentedBatches:
    """:class:`TensorBatches` whose every batch goes through ``transform(batch, generator)``: the
    place for augmentation (an image shifted, strokes rotated) and for what is built per batch.

    ``generator`` is seeded by the seed, the epoch and the batch index, never by the global RNG,
    so a resumed run sees the very augmentations the uninterrupted run would have seen, and a
    shard the ones of its rows. Subclasses implement :meth:`transform`; ``options`` are
    :class:`TensorBatches`'s.
    """

    stateful = False

    def __init__(self, *tensors: Tensor, **options) -> None:
        self.rows = TensorBatches(*tensors, **options)

    def transform(self, batch: tuple[Tensor, ...], generator: torch.Generator):
        raise NotImplementedError

    def shard(self, rank: int, world_size: int) -> AugmentedBatches:
        shard = object.__new__(type(self))
        shard.__dict__.update(self.__dict__)
        shard.rows = self.rows.shard(rank, world_size)
        return shard

    def __len__(self) -> int:
        return len(self.rows)

    def epoch(self, index: int, start: int = 0) -> Iterator:
        for b, batch in enumerate(self.rows.epoch(index, start), start):
            generator = torch.Generator().manual_seed((self.rows.seed * 1_000_003 + index) * 100_003 + b)
            yield self.transform(batch, generator)


class Window(NamedTuple):
    """One truncated-BPTT update: inputs and targets ``(B, k2, ...)``; the state carries after ``carry`` steps."""

    inputs: Tensor
    targets: Tensor
    carry: int


class StreamBatches:
    """One long sequence cut into ``batch_size`` parallel streams, read in order (stateful).

    Stream b is the b-th contiguous slice of the sequence (the language-model "batchify").
    Every window reads ``k2`` steps and starts ``k1`` after the previous one: the model's state
    after ``k1`` steps carries to the next window, and the loss covers the window's last ``k1``
    steps, so each target is learned from once (TBPTT(k1, k2), Williams & Peng 1990). Targets
    are the next element of the stream unless ``targets`` is given (aligned with ``stream``).
    """

    stateful = True

    def __init__(
        self,
        stream: Tensor,
        *,
        batch_size: int,
        k1: int,
        k2: int | None = None,
        targets: Tensor | None = None,
    ) -> None:
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.rank, self.world_size = 0, 1
        self.k1 = check_positive_int("tbptt_k1", k1)
        self.k2 = check_positive_int("tbptt_k2", k2 if k2 is not None else k1)
        if self.k2 < self.k1:
            raise ValueError(f"tbptt_k2 must be >= tbptt_k1 ({self.k1}), got {self.k2}")
        if targets is None:
            inputs, targets = stream[:-1], stream[1:]
        else:
            if targets.shape[0] != stream.shape[0]:
                raise ValueError(f"targets must have {stream.shape[0]} steps like stream, got {targets.shape[0]}")
            inputs = stream
        length = inputs.shape[0] // self.batch_size
        if length < self.k2:
            raise ValueError(
                f"data too short for one batch: {inputs.shape[0]} steps make {self.batch_size} streams of"
                f" {length} steps, fewer than one window of tbptt_k2={self.k2}"
            )
        # (N, ...) -> (B, N // B, ...): stream b is the b-th contiguous slice
        self.inputs = inputs[: length * self.batch_size].reshape(self.batch_size, length, *inputs.shape[1:])
        self.targets = targets[: length * self.batch_size].reshape(self.batch_size, length, *targets.shape[1:])

    def shard(self, rank: int, world_size: int) -> StreamBatches:
        """The same windows, of which this process reads its share of the streams."""
        shard = object.__new__(StreamBatches)
        shard.__dict__.update(self.__dict__)
        shard.world_size = check_positive_int("world_size", world_size)
        shard.rank = check_nonnegative_int("rank", rank)
        if self.batch_size % world_size:
            raise ValueError(
                f"batch_size must be divisible by the number of processes ({world_size}), got {self.batch_size}"
            )
        return shard

    def __len__(self) -> int:
        return (self.inputs.shape[1] - self.k2) // self.k1 + 1

    def epoch(self, index: int, start: int = 0) -> Iterator[Window]:
        share = self.batch_size // self.world_size
        streams = slice(self.rank * share, (self.rank + 1) * share)
        for b in range(start, len(self)):
            s = b * self.k1
            yield Window(self.inputs[streams, s : s + self.k2], self.targets[streams, s : s + self.k2], self.k1)
