"""Seeded train/validation/test splits of a data set's rows (or of its groups)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class Split:
    train: list[int]
    val: list[int]
    test: list[int]
    groups: tuple[int, int, int] | None = None  # groups on each side, when split by group


def split_examples(
    count: int, groups: Sequence[str] | None, *, test_fraction: float, val_fraction: float, seed: int
) -> Split:
    """Seeded train/validation/test row indices; with ``groups``, whole groups go to one side.

    The test part is ``test_fraction`` of the groups (or rows); validation is ``val_fraction`` of
    the rest. Each side gets at least one group (or row).

    >>> split_examples(10, None, test_fraction=0.2, val_fraction=0.25, seed=0).test
    [1, 4]
    """
    generator = torch.Generator().manual_seed(seed)
    units = list(dict.fromkeys(groups)) if groups is not None else list(range(count))  # groups in order of appearance
    what = "groups" if groups is not None else "rows"
    if len(units) < 3:
        raise ValueError(
            f"data too short: {len(units)} {what}, but a training, a validation and a test split need at least 3"
        )
    order = [units[i] for i in torch.randperm(len(units), generator=generator).tolist()]
    n_test = min(max(1, round(test_fraction * len(units))), len(units) - 2)
    n_val = min(max(1, round(val_fraction * (len(units) - n_test))), len(units) - n_test - 1)
    test_units, val_units, train_units = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    if groups is None:
        return Split(sorted(train_units), sorted(val_units), sorted(test_units))
    side = {g: 0 for g in train_units} | {g: 1 for g in val_units} | {g: 2 for g in test_units}
    parts: list[list[int]] = [[], [], []]
    for row, group in enumerate(groups):
        parts[side[group]].append(row)
    return Split(*parts, groups=(len(train_units), len(val_units), len(test_units)))


def shuffled_split(count: int, *, val_fraction: float, test_fraction: float, seed: int, what: str = "rows") -> Split:
    """Indices shuffled by Python's ``random`` with ``seed``: the first ``test_fraction`` of them
    (at least one) for testing, the next ``val_fraction`` of them (of all, at least one) for
    validation, the rest, in shuffled order, for training."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(count * test_fraction))
    n_val = max(1, round(count * val_fraction))
    if count - n_test - n_val < 1:
        raise ValueError(f"data too short for one batch: {count} {what} cannot be split three ways")
    return Split(order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test])


def split_by_group_size(groups: Sequence[str], *, test_rows: int, val_rows: int, seed: int) -> Split:
    """Whole groups, in a seeded order, to the test side until it has at least ``test_rows``
    rows, then to validation until it has ``val_rows``; the rest to training. Every row of a group
    lands on one side (a source sentence with several translations is never on two).

    >>> split = split_by_group_size(["a", "a", "b", "c", "c", "d", "e"], test_rows=2, val_rows=1, seed=0)
    >>> sorted(map(len, (split.train, split.val, split.test))), split.groups[0] + sum(split.groups[1:])
    ([1, 3, 3], 5)
    """
    for name, value in (("test_rows", test_rows), ("val_rows", val_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rows_of: dict[str, list[int]] = {}
    for row, group in enumerate(groups):
        rows_of.setdefault(group, []).append(row)
    units = list(rows_of)
    if len(groups) < test_rows + val_rows + 1 or len(units) < 3:
        raise ValueError(
            f"data too short: {len(groups)} rows in {len(units)} groups cannot give {test_rows} test and"
            f" {val_rows} validation rows and leave some for training"
        )
    order = [units[i] for i in torch.randperm(len(units), generator=torch.Generator().manual_seed(seed)).tolist()]
    parts: list[list[int]] = [[], [], []]  # test, val, train
    counts = [0, 0, 0]
    for group in order:
        side = 0 if len(parts[0]) < test_rows else 1 if len(parts[1]) < val_rows else 2
        parts[side] += rows_of[group]
        counts[side] += 1
    if not parts[2]:
        raise ValueError(f"data too short: no rows left for training after {test_rows} test and {val_rows} validation")
    return Split(sorted(parts[2]), sorted(parts[1]), sorted(parts[0]), groups=(counts[2], counts[1], counts[0]))
