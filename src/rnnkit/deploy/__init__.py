"""Deployment: export with the state as explicit inputs and outputs (:func:`export`), and a
stateful streaming service that batches many streams (:mod:`rnnkit.deploy.serve`, ``rnnkit
serve``)."""

from ._export import FORMATS as FORMATS
from ._export import export as export
from ._export import graph_paths as graph_paths
from ._graphs import SequenceGraph as SequenceGraph
from ._graphs import StepGraph as StepGraph
from ._graphs import initial_state as initial_state

__all__ = ["export", "graph_paths", "FORMATS", "SequenceGraph", "StepGraph", "initial_state"]
