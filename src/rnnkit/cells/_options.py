"""Cell options: one frozen dataclass per cell family, the single statement of what each option is.

A cell keeps its options as ``cell.options`` (and each one as an attribute of the same name,
``cell.layer_norm``); the torch.nn-compatible layers take the same options as explicit keyword
arguments (so that they stay drop-in) and build the dataclass from their own arguments with
:meth:`CellOptions.from_arguments`. What a route of :mod:`rnnkit.scan` can compute is stated
against these fields too (:meth:`CellOptions.extras`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .._validation import check_bool, check_choice, check_nonnegative_int, check_positive_int, check_probability

INITS = ("torch", "orthogonal")


@dataclass(frozen=True)
class CellOptions:
    """Base of the options dataclasses."""

    #: fields whose every value torch.nn's fused kernels compute as well (or that only initialise)
    native: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def create(cls, owner: str, **values: Any) -> CellOptions:
        """``cls(**values)``, with an unknown name reported with the closest known one."""
        known = cls.names()
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(
                    f"{owner}() got an unexpected keyword argument {key!r}{hint}; its options are {', '.join(known)}"
                )
        return cls(**values)

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> CellOptions:
        """The options among a constructor's arguments (its ``locals()``): the signature stays the
        one place that names them for users, this dataclass the one place that checks them."""
        return cls(**{name: arguments[name] for name in cls.names() if name in arguments})

    def items(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.names()}

    def changed(self) -> dict[str, Any]:
        """The options that differ from their defaults, in field order (what ``repr`` shows)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) != f.default}

    def extras(self) -> frozenset[str]:
        """The changed options that torch.nn's kernels do not compute."""
        return self._extras

    @functools.cached_property
    def _extras(self) -> frozenset[str]:  # asked on every forward; the options never change
        return frozenset(self.changed()) - self.native


@dataclass(frozen=True)
class GatedOptions(CellOptions):
    """Options of the torch.nn-compatible cells (Elman, GRU, LSTM).

    Attributes:
        bias: learn ``bias_ih`` and ``bias_hh`` (torch.nn's default).
        layer_norm: normalise the input and recurrent pre-activations of each gate (Ba et al. 2016).
        recurrent_dropout: variational dropout on the fed-back state, one mask per sequence
            (Gal & Ghahramani 2016, sec. 4).
        zoneout: keep each state unit's previous value with this probability (Krueger et al. 2016).
        dropconnect: drop recurrent weights, one mask per sequence batch (Merity et al. 2017,
            sec. 4.1 "weight-dropped LSTM").
        init: ``"torch"`` -- every weight and bias ``U(-1/sqrt(H), 1/sqrt(H))``, as torch.nn;
            ``"orthogonal"`` -- Xavier-uniform input weights, orthogonal recurrent weights (both
            per gate block), zero biases.
    """

    bias: bool = True
    layer_norm: bool = False
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    dropconnect: float = 0.0
    init: str = "torch"

    native: ClassVar[frozenset[str]] = frozenset({"bias", "init"})

    def __post_init__(self) -> None:
        check_bool("bias", self.bias)
        check_bool("layer_norm", self.layer_norm)
        for name in ("recurrent_dropout", "zoneout", "dropconnect"):
            object.__setattr__(self, name, check_probability(name, getattr(self, name)))
        check_choice("init", self.init, INITS)


@dataclass(frozen=True)
class ElmanOptions(GatedOptions):
    """:class:`GatedOptions`, and ``nonlinearity``: ``"tanh"`` or ``"relu"`` (torch.nn's)."""

    nonlinearity: str = "tanh"

    native: ClassVar[frozenset[str]] = GatedOptions.native | {"nonlinearity"}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("nonlinearity", self.nonlinearity, ("tanh", "relu"))


@dataclass(frozen=True)
class GRUOptions(GatedOptions):
    """:class:`GatedOptions`, and ``reset_after``: False applies the reset gate before the
    recurrent matmul (Cho et al. 2014, eq. 8; Keras' ``reset_after=False``)."""

    reset_after: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bool("reset_after", self.reset_after)


@dataclass(frozen=True)
class LSTMOptions(GatedOptions):
    """:class:`GatedOptions`, and

    Attributes:
        proj_size: project ``h`` to this size (Sak et al. 2014; torch.nn's); 0 for none.
        peepholes: diagonal connections from the cell state to the gates (Gers & Schmidhuber 2000).
        forget_bias: the initial forget-gate bias (Gers et al. 2000; Jozefowicz et al. 2015
            recommend 1.0); None keeps the ``init`` scheme's.
    """

    proj_size: int = 0
    peepholes: bool = False
    forget_bias: float | None = None

    native: ClassVar[frozenset[str]] = GatedOptions.native | {"proj_size", "forget_bias"}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonnegative_int("proj_size", self.proj_size)
        check_bool("peepholes", self.peepholes)
        if self.forget_bias is not None:
            if isinstance(self.forget_bias, bool) or not isinstance(self.forget_bias, numbers.Real):
                raise TypeError(f"forget_bias must be a float or None, got {self.forget_bias!r}")
            if not self.bias:
                raise ValueError("forget_bias needs bias=True, got bias=False")
            object.__setattr__(self, "forget_bias", float(self.forget_bias))


SCANS = ("auto", "log", "sequential")


@dataclass(frozen=True)
class MinimalOptions(CellOptions):
    """Options of minGRU and minLSTM.

    Attributes:
        bias: learn the input projection's bias.
        scan: ``"log"``, the parallel log-space scan (for GPUs); ``"sequential"``, a fused linear
            recurrence (faster on CPUs); ``"auto"``, by device.
        scan_chunk: steps one log-space scan covers (it bounds the float32 error, see
            :func:`rnnkit.scan.log_space_scan`).
    """

    bias: bool = True
    scan: str = "auto"
    scan_chunk: int = 32

    def __post_init__(self) -> None:
        check_bool("bias", self.bias)
        check_choice("scan", self.scan, SCANS)
        check_positive_int("scan_chunk", self.scan_chunk)
