"""Experiments: runs that compare cells rather than train an application.

- :mod:`~rnnkit.experiments.compare`: an LSTM and a tanh RNN side by side on the adding problem
  (``rnnkit compare``);
- :mod:`~rnnkit.experiments.gradients`: how gradients decay through time, per cell, before and
  after training (``rnnkit gradients``).

:data:`rnnkit.experiments.commands.COMMANDS` are their command-line commands.
"""
