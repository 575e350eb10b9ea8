"""Plots of forecasts: the history, the forecast and its interval (and what happened, in a backtest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..._io import save_figure
from ...data.series import require
from .config import interval_label


def forecast_figure(history, forecast, *, title: str = "", interval_label: str = "interval", point: str = "mean"):
    """A matplotlib figure of the history (its last few seasons), the forecast and its interval;
    ``forecast`` is a DataFrame with the ``point`` column, ``lower``, ``upper`` and optionally ``actual``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=110)
    FigureCanvasAgg(figure)  # the Agg canvas, without pyplot's global state
    axes = figure.subplots()
    axes.plot(history.index, history.to_numpy(), color="black", linewidth=1.2, label="history")
    axes.fill_between(forecast.index, forecast["lower"], forecast["upper"], color="tab:blue", alpha=0.25,
                      label=interval_label)  # fmt: skip
    axes.plot(forecast.index, forecast[point], color="tab:blue", linewidth=1.6, label=f"forecast ({point})")
    if "actual" in forecast:
        axes.plot(forecast.index, forecast["actual"], color="tab:red", linewidth=1, linestyle="--", label="actual")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    return figure


def plot_forecast(history, forecast, path: str | Path, *, title: str = "", interval_label: str = "interval",
                  point: str = "mean") -> Path:  # fmt: skip
    """A PNG of :func:`forecast_figure` at ``path``."""
    figure = forecast_figure(history, forecast, title=title, interval_label=interval_label, point=point)
    return save_figure(figure, path, bbox_inches="tight")


def backtest_figure(setup: Any, bt: Any):
    """The backtest's last origin: its forecast against what happened (``setup``: a
    :class:`~rnnkit.apps.forecast.data.SeriesSetup`, ``bt``: its :class:`~rnnkit.apps.forecast.Backtest`)."""
    pd = require("pandas")
    c, o = setup.config, bt.origins[-1]
    index = setup.frame.index[o : o + c.horizon]
    forecast = pd.DataFrame({"RNN": bt.forecasts["RNN"][-1], "lower": bt.lower[-1], "upper": bt.upper[-1],
                             "actual": setup.frame.iloc[o : o + c.horizon, 0].to_numpy()}, index=index)  # fmt: skip
    history = setup.frame.iloc[max(0, o - 4 * max(c.season, c.horizon)) : o, 0]
    return forecast_figure(history, forecast, title=f"backtest: forecast from {time_text(setup.frame.index[o])}",
                           interval_label=interval_label(c), point="RNN")  # fmt: skip


def time_text(time) -> str:
    """A timestamp without a midnight time of day: '1960-01-01', not '1960-01-01 00:00:00'."""
    text = str(time)
    return text[:-9] if text.endswith(" 00:00:00") else text
