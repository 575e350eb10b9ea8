"""Deprecated: moved to :mod:`rnnkit.apps.classify`."""

from rnnkit.apps.classify import Classifier as Classifier
from rnnkit.apps.classify import CLASSIFIER_FILE as CLASSIFIER_FILE
from rnnkit.apps.classify import ClassifyConfig as ClassifyConfig
from rnnkit.apps.classify import encode_texts as encode_texts
from rnnkit.apps.classify import EVAL_BATCH as EVAL_BATCH
from rnnkit.apps.classify import Examples as Examples
from rnnkit.apps.classify import PaddedBatches as PaddedBatches
from rnnkit.apps.classify import predict_probabilities as predict_probabilities
from rnnkit.apps.classify import read_csv_columns as read_csv_columns
from rnnkit.apps.classify import read_examples_csv as read_examples_csv
from rnnkit.apps.classify import read_texts as read_texts
from rnnkit.apps.classify import RESULTS_FILE as RESULTS_FILE
from rnnkit.apps.classify import Shifted as Shifted
from rnnkit.apps.classify import Split as Split
from rnnkit.apps.classify import split_examples as split_examples
from rnnkit.apps.classify import tokenizer_from_dict as tokenizer_from_dict
from rnnkit.apps.classify import train_tokenizer as train_tokenizer
from rnnkit.apps.classify import WordTokenizer as WordTokenizer
from rnnkit.data.tokenizers import TOKEN_PATTERN as TOKEN_PATTERN
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.apps.classify")
