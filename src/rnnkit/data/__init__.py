"""Data: reading files, vocabularies and tokenizers, splits, series, generated tasks.

- :mod:`~rnnkit.data.textfiles`: UTF-8 text files with clear errors; the corpus every Python has;
- :mod:`~rnnkit.data.tables`: the columns of a CSV file;
- :mod:`~rnnkit.data.tokenizers`: :class:`Vocabulary`, the character, word and BPE tokenizers;
- :mod:`~rnnkit.data.splits`: seeded train/validation/test splits, by row or by group;
- :mod:`~rnnkit.data.series`: time series: reading, validation, scaling, windows, embedded data
  sets (pandas, imported only when used);
- :mod:`~rnnkit.data.nab`: the Numenta Anomaly Benchmark's files;
- :mod:`~rnnkit.data.synthetic`: the adding problem and copy memory.

Nothing here imports pandas, statsmodels or tokenizers until a function needs it.
"""

from .splits import Split as Split
from .splits import split_examples as split_examples
from .synthetic import ADDING_BASELINE_MSE as ADDING_BASELINE_MSE
from .synthetic import adding_problem as adding_problem
from .synthetic import copy_memory as copy_memory
from .synthetic import copy_memory_baseline as copy_memory_baseline
from .tables import read_csv_columns as read_csv_columns
from .textfiles import default_corpus as default_corpus
from .textfiles import read_text_file as read_text_file
from .tokenizers import BPETokenizer as BPETokenizer
from .tokenizers import CharTokenizer as CharTokenizer
from .tokenizers import Vocabulary as Vocabulary
from .tokenizers import WordTokenizer as WordTokenizer
from .tokenizers import tokenizer_from_json as tokenizer_from_json

__all__ = ["Split", "split_examples", "ADDING_BASELINE_MSE", "adding_problem", "copy_memory", "copy_memory_baseline",
           "read_csv_columns", "default_corpus", "read_text_file", "BPETokenizer", "CharTokenizer", "Vocabulary",
           "WordTokenizer", "tokenizer_from_json"]  # fmt: skip
