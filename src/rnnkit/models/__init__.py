"""Models: the sequence shapes built on rnnkit layers, registered by name for configs and loading.

CTC (unaligned many-to-many) is :class:`CTC`; its loss, greedy and prefix beam decoding, priors and
forced alignment are in :mod:`rnnkit.models.ctc`.
"""

from ._parts import EncoderConfig as EncoderConfig
from ._parts import InputConfig as InputConfig
from ._registry import MODELS as MODELS
from ._registry import create_model as create_model
from ._registry import model_spec as model_spec
from ._registry import register_model as register_model
from ._shapes import ManyToMany as ManyToMany
from ._shapes import ManyToManyConfig as ManyToManyConfig
from ._shapes import ManyToOne as ManyToOne
from ._shapes import ManyToOneConfig as ManyToOneConfig
from ._generator import OneToMany as OneToMany
from ._generator import OneToManyConfig as OneToManyConfig
from ._seq2seq import EncoderDecoder as EncoderDecoder
from ._seq2seq import EncoderDecoderConfig as EncoderDecoderConfig
from ._seq2seq import TeacherForcingSchedule as TeacherForcingSchedule
from ._captioner import ConvEncoderConfig as ConvEncoderConfig
from ._captioner import ImageCaptioner as ImageCaptioner
from ._captioner import ImageCaptionerConfig as ImageCaptionerConfig
from ._streams import StreamModel as StreamModel
from ._streams import StreamModelConfig as StreamModelConfig
from .beam import Beams as Beams
from .beam import Decoded as Decoded
from ._conv import ConvConfig as ConvConfig
from ._conv import ConvManyToMany as ConvManyToMany
from ._conv import ConvManyToManyConfig as ConvManyToManyConfig
from ._ctc import CTC as CTC
from ._ctc import CTCConfig as CTCConfig
from ._ctc import CTCState as CTCState
from ._ctc import FrontEndConfig as FrontEndConfig

__all__ = [
    "MODELS",
    "create_model",
    "model_spec",
    "register_model",
    "InputConfig",
    "EncoderConfig",
    "ManyToOne",
    "ManyToOneConfig",
    "ManyToMany",
    "ManyToManyConfig",
    "OneToMany",
    "OneToManyConfig",
    "EncoderDecoder",
    "EncoderDecoderConfig",
    "TeacherForcingSchedule",
    "Decoded",
    "Beams",
    "ConvConfig",
    "ConvManyToMany",
    "ConvManyToManyConfig",
    "CTC",
    "CTCConfig",
    "CTCState",
    "FrontEndConfig",
    "ConvEncoderConfig",
    "ImageCaptioner",
    "ImageCaptionerConfig",
    "StreamModel",
    "StreamModelConfig",
]
