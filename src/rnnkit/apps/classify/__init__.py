"""Text classification (sentiment analysis): ``rnnkit train classify`` and ``rnnkit predict``."""

from ...data.splits import Split as Split
from ...data.splits import split_examples as split_examples
from ...data.tables import read_csv_columns as read_csv_columns
from ...data.tokenizers import Shifted as Shifted
from ...data.tokenizers import WordTokenizer as WordTokenizer
from ...data.tokenizers import padded_tokenizer_from_json as tokenizer_from_dict
from .app import RESULTS_FILE as RESULTS_FILE
from .app import ClassifyApp as ClassifyApp
from .classifier import CLASSIFIER_FILE as CLASSIFIER_FILE
from .classifier import EVAL_BATCH as EVAL_BATCH
from .classifier import Classifier as Classifier
from .classifier import predict_probabilities as predict_probabilities
from .data import ClassifyConfig as ClassifyConfig
from .data import Examples as Examples
from .data import PaddedBatches as PaddedBatches
from .data import encode_texts as encode_texts
from .data import read_examples_csv as read_examples_csv
from .data import read_texts as read_texts
from .data import train_tokenizer as train_tokenizer

__all__ = ["Split", "split_examples", "read_csv_columns", "Shifted", "WordTokenizer", "tokenizer_from_dict",
           "RESULTS_FILE", "ClassifyApp", "CLASSIFIER_FILE", "EVAL_BATCH", "Classifier", "predict_probabilities",
           "ClassifyConfig", "Examples", "PaddedBatches", "encode_texts", "read_examples_csv", "read_texts",
           "train_tokenizer"]  # fmt: skip
