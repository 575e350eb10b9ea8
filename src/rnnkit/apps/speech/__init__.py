"""Speech recognition: ``rnnkit train speech`` (a CTC model over log-mel features) and ``rnnkit transcribe``.

The audio libraries (librosa, soundfile) are the ``speech`` extra: ``pip install 'rnnkit[speech]'``;
they are imported where audio is read, so importing this package needs neither.
"""

from .app import RESULTS_FILE as RESULTS_FILE
from .app import SpeechApp as SpeechApp
from .audio import Audio as Audio
from .audio import AudioError as AudioError
from .audio import FeatureExtractor as FeatureExtractor
from .audio import FeatureSettings as FeatureSettings
from .audio import FeatureStream as FeatureStream
from .audio import read_audio as read_audio
from .baseline import logistic_baseline as logistic_baseline
from .data import Normalizer as Normalizer
from .data import SpeechConfig as SpeechConfig
from .data import read_recordings as read_recordings
from .data import split_recordings as split_recordings
from .recognizer import SPEECH_FILE as SPEECH_FILE
from .recognizer import Recognizer as Recognizer
from .recognizer import StreamingRecognizer as StreamingRecognizer

__all__ = ["RESULTS_FILE", "SpeechApp", "Audio", "AudioError", "FeatureExtractor", "FeatureSettings", "FeatureStream",
           "read_audio", "logistic_baseline", "Normalizer", "SpeechConfig", "read_recordings", "split_recordings",
           "SPEECH_FILE", "Recognizer", "StreamingRecognizer"]  # fmt: skip
