"""Routes: the ways of running a cell over a sequence, registered per cell class, chosen in one place.

Every route computes what :func:`~rnnkit.scan.step_loop` computes -- the cell's own steps through
autograd, the reference twin -- and the tests hold each one to it. A cell class registers its
routes in order of preference (:func:`register`); :func:`select` takes the first one that
supports the call. A subclass is matched by ``isinstance`` and inherits its family's routes,
unless it overrides the math those routes reimplement (``step``, ``project_input`` or
``begin_sequence``): then only routes that call the cell's own methods (the step loop) apply, so
a fast path never silently runs other math than the cell's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from torch import Tensor

from ..cells import Params, RecurrentCell, State

ScanResult = tuple[Tensor, State, "tuple[Tensor, ...] | None"]
StateHook = Callable[[int, State], "State | None"]

#: the cell methods a route that reimplements a family's math stands in for
MATH = ("step", "project_input", "begin_sequence")


class ScanCall(NamedTuple):
    """One (layer, direction) of a layer's forward, as the routes receive it.

    ``xp`` is the cell's projected input ``(T, B, G)``; ``mask`` ``(T, B)`` bool marks the valid
    steps (None: all are); ``hook`` is called after every step (only the step loop takes one).
    ``project`` recomputes ``xp`` from what autograd keeps anyway (the layers pass
    ``cell.project_input`` of their input): a fast route's second derivative reruns the step loop
    on it (:mod:`rnnkit.scan._twin`); without it that route keeps ``xp`` alive for the purpose.
    A layer asking whether a whole-stack route takes its call passes its input ``(T, B, I)`` as
    ``xp``, its stacked state and no ``params``: a route's ``supports`` then judges by the rest.
    """

    xp: Tensor
    state: State
    params: Params | None = None
    ctx: Any = None
    mask: Tensor | None = None
    return_states: bool = False
    hook: StateHook | None = None
    project: Callable[[], Tensor] | None = None


class Route(NamedTuple):
    """A way to run a cell over a sequence.

    ``supports(cell, call)`` says whether it can run this call exactly; ``run(cell, call)``
    returns the outputs ``(T, B, output_size)`` (zero past each sequence's end), the final state
    and, when ``call.return_states``, every state component at every step ``(T, B, size)``.
    ``stack``: the route runs a whole torch.nn-style stack at once (torch.nn's kernels); the layer
    calls it itself, and it cannot return per-step states. ``reimplements``: the route computes
    the family's math itself rather than calling the cell's methods.
    """

    name: str
    supports: Callable[[RecurrentCell, ScanCall], bool]
    run: Callable[[RecurrentCell, ScanCall], ScanResult] | None
    stack: bool = False
    reimplements: bool = True


_ROUTES: dict[type, tuple[Route, ...]] = {}
_BY_CLASS: dict[type, tuple[Route, ...]] = {}  # routes_for's answers, until the next register()
_DISABLED: set[str] = set()


def register(cell_class: type, *routes: Route) -> None:
    """Give ``cell_class`` (and subclasses that keep its math) these routes, most preferred first;
    the routes of its base classes follow them. Registering a class again replaces its routes."""
    if not (isinstance(cell_class, type) and issubclass(cell_class, RecurrentCell)):
        raise TypeError(f"cell_class must be a RecurrentCell subclass, got {cell_class!r}")
    for route in routes:
        if not isinstance(route, Route):
            raise TypeError(f"routes must be rnnkit.scan.Route, got {type(route).__name__}")
    _ROUTES[cell_class] = tuple(routes)
    _BY_CLASS.clear()


def routes_for(cell: RecurrentCell) -> tuple[Route, ...]:
    """Every route that may run ``cell``, in order of preference (the step loop last)."""
    kind = type(cell)
    found = _BY_CLASS.get(kind)
    if found is None:
        routes: list[Route] = []
        for klass in kind.__mro__:
            keeps_math = all(getattr(kind, name) is getattr(klass, name, None) for name in MATH)
            routes.extend(r for r in _ROUTES.get(klass, ()) if keeps_math or not r.reimplements)
        found = _BY_CLASS[kind] = tuple(routes)
    return found


def select(cell: RecurrentCell, call: ScanCall, *, exclude: Iterable[str] = ()) -> Route:
    """The first route of ``cell`` that supports ``call``, skipping the names in ``exclude`` and
    those :func:`disabled`."""
    skip = set(exclude) | _DISABLED
    for route in routes_for(cell):
        if route.name in skip or (call.hook is not None and route.reimplements):
            continue
        if route.stack and call.return_states:
            continue
        if route.supports(cell, call):
            return route
    raise RuntimeError(f"no route of rnnkit.scan can run {type(cell).__name__} here (excluded: {sorted(skip)})")


def run(cell: RecurrentCell, call: ScanCall, *, exclude: Iterable[str] = ()) -> ScanResult:
    """Run ``call`` by the route :func:`select` picks (whole-stack routes excluded)."""
    route = select(cell, call, exclude=set(exclude) | stack_routes(cell))
    return route.run(cell, call)


def stack_routes(cell: RecurrentCell) -> frozenset[str]:
    """The names of ``cell``'s whole-stack routes (torch.nn's kernels), which a layer runs itself."""
    return frozenset(r.name for r in routes_for(cell) if r.stack)


def ranks_before(cell: RecurrentCell, first: str, second: str) -> bool:
    """Whether route ``first`` comes before ``second`` in ``cell``'s preference order."""
    names = [r.name for r in routes_for(cell)]
    return first in names and (second not in names or names.index(first) < names.index(second))


def is_disabled(name: str) -> bool:
    """Whether route ``name`` is switched off by an enclosing :func:`disabled` block."""
    return name in _DISABLED


@contextlib.contextmanager
def disabled(*names: str) -> Iterator[None]:
    """Skip the named routes inside the block, as ``torch.backends.cudnn.flags(enabled=False)``
    does for cuDNN: ``with rnnkit.scan.disabled("compiled", "bptt"):`` runs the step loop.
    The step loop itself cannot be disabled."""
    if "loop" in names:
        raise ValueError("the step loop is every cell's last route and cannot be disabled")
    added = set(names) - _DISABLED
    _DISABLED.update(added)
    try:
        yield
    finally:
        _DISABLED.difference_update(added)
