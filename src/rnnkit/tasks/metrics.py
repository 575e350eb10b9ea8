"""Deprecated: moved to :mod:`rnnkit.metrics.classification`."""

from rnnkit.metrics.classification import PerClass as PerClass
from rnnkit.metrics.classification import accuracy as accuracy
from rnnkit.metrics.classification import confusion_matrix as confusion_matrix
from rnnkit.metrics.classification import format_confusion as format_confusion
from rnnkit.metrics.classification import format_per_class as format_per_class
from rnnkit.metrics.classification import macro_f1 as macro_f1
from rnnkit.metrics.classification import majority_baseline as majority_baseline
from rnnkit.metrics.classification import per_class as per_class
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.metrics.classification")
