"""Training: backpropagation through time with its remedies, checkpoints and exact resume, logs."""

from .checkpoint import CheckpointError as CheckpointError
from .checkpoint import CheckpointManager as CheckpointManager
from .config import TrainConfig as TrainConfig
from .data import AugmentedBatches as AugmentedBatches
from .data import BucketBatches as BucketBatches
from .ctc import CTCBatches as CTCBatches
from .ctc import CTCObjective as CTCObjective
from .data import StreamBatches as StreamBatches
from .diagnostics import GradientFlow as GradientFlow
from .diagnostics import GradientMonitor as GradientMonitor
from .diagnostics import hidden_gradient_norms as hidden_gradient_norms
from .diagnostics import parameter_gradient_norms as parameter_gradient_norms
from .diagnostics import plot_gradient_flow as plot_gradient_flow
from .diagnostics import recurrent_jacobian_norms as recurrent_jacobian_norms
from .diagnostics import track_hidden_gradients as track_hidden_gradients
from .data import TensorBatches as TensorBatches
from .data import Window as Window
from .objectives import StepOutput as StepOutput
from .objectives import StreamObjective as StreamObjective
from .objectives import SupervisedObjective as SupervisedObjective
from .run import load as load
from .trainer import Trainer as Trainer
from .trainer import TrainingError as TrainingError
from .trainer import TrainingInterrupted as TrainingInterrupted
from .trainer import TrainResult as TrainResult

__all__ = [
    "Trainer",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "TrainingInterrupted",
    "TensorBatches",
    "AugmentedBatches",
    "BucketBatches",
    "StreamBatches",
    "Window",
    "StepOutput",
    "SupervisedObjective",
    "StreamObjective",
    "CTCBatches",
    "CTCObjective",
    "CheckpointManager",
    "CheckpointError",
    "load",
    "GradientFlow",
    "GradientMonitor",
    "hidden_gradient_norms",
    "track_hidden_gradients",
    "recurrent_jacobian_norms",
    "parameter_gradient_norms",
    "plot_gradient_flow",
]
