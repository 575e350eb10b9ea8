"""What each served run offers: a :class:`Service` per run, chosen by the app's predictor.

A run directory is loaded as its app loads it (``rnnkit.apps.get_app(task_name).load(run_dir)``:
the text app's :class:`~rnnkit.apps.text.TextGenerator`, the classifier's
:class:`~rnnkit.apps.classify.Classifier`, a :class:`~rnnkit.apps.forecast.ForecastRun`, the
detector...), and :data:`SERVICES` maps the predictor's class to the service that puts it on the
network: its endpoints (``POST /models/NAME/ACTION``, each an :class:`Endpoint`) and, where the
app gives a stream a meaning, its stream pool. A run of no app (a bare model's ``config.json``)
and an app whose predictor is the model itself are served as the model's raw streams.

Register a service for another predictor with ``@register_service(PredictorClass)``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import read_json, run_file
from ..apps.anomaly import RNNDetector
from ..apps.base import finite
from ..apps.classify import Classifier
from ..apps.forecast import ForecastRun
from ..apps.forecast.many import PanelRun
from ..apps.tagging import Tagger
from ..apps.text import TextGenerator
from ..apps.translate import Translator
from ._protocol import RequestError, ServeConfig, int_field, number_field, text_field, texts_field
from ._streams import ScorerPool, StreamPool


@dataclass(frozen=True)
class Endpoint:
    """``POST /models/NAME/ACTION``: ``parse(body)`` checks the request (a JSON object) and returns
    the keyword arguments of ``call``, which runs in a worker thread and returns the answer
    (JSON-able). A ``streams`` endpoint's ``call`` also gets ``emit(event, data)``, and the answer
    goes out as Server-Sent Events, each ``emit`` as it happens and the answer last (``done``).
    An error ``call`` raises (``ValueError``, ``TypeError``) is about ``field`` of the request."""

    parse: Callable[[dict], dict[str, Any]]
    call: Callable[..., Any]
    help: str
    field: str
    streams: bool = False


class Service:
    """A served run: its endpoints by action, its stream pool (None: it has no streams)."""

    app: str | None = None  # the app whose run it serves

    def __init__(self, name: str, predictor: Any, config: ServeConfig) -> None:
        self.name, self.predictor, self.config = name, predictor, config

    def endpoints(self) -> dict[str, Endpoint]:
        return {}

    def pool(self) -> StreamPool | None:
        return None

    def describe(self) -> dict[str, Any]:
        """What a client needs to know to call it (``GET /models`` adds the name, app, endpoints)."""
        return {}


#: predictor class -> the service that serves it
SERVICES: dict[type, type[Service]] = {}


def register_service(predictor: type) -> Callable[[type[Service]], type[Service]]:
    def add(cls: type[Service]) -> type[Service]:
        SERVICES[predictor] = cls
        return cls

    return add


def service_for(name: str, predictor: Any, config: ServeConfig = ServeConfig()) -> Service:
    """The service of ``predictor`` (an app's predictor, or a model) named ``name``."""
    for cls in type(predictor).__mro__:
        if cls in SERVICES:
            return SERVICES[cls](name, predictor, config)
    if isinstance(predictor, nn.Module):
        return ModelService(name, predictor, config)
    known = ", ".join(sorted(c.__name__ for c in SERVICES))
    raise TypeError(f"{name}: rnnkit serve serves a model or an app's predictor ({known}), got {type(predictor).__name__}")


def load_service(run_dir: str | Path, config: ServeConfig = ServeConfig()) -> Service:
    """The service of the run in ``run_dir``, named by the directory: loaded by its app (the
    ``task_name`` of its ``config.json``), or as a bare model without one. Only JSON and
    safetensors are read."""
    from ..apps import get_app
    from ..training.run import load

    run_dir = Path(run_dir)
    name = run_dir.resolve().name
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: it has no config.json")
    task = read_json(run_file(run_dir, "config.json")).get("task_name")
    predictor = load(run_dir) if task is None else get_app(task).load(run_dir)
    service = service_for(name, predictor, config)
    service.app = task
    try:
        pool = service.pool()
    except (TypeError, ValueError) as error:  # a model no stream can step (bidirectional, encoder-decoder)
        if service.endpoints():
            raise
        raise ValueError(f"{run_dir}: rnnkit serve has nothing to serve for this {task or 'model'} run: {error}") from None
    if pool is None and not service.endpoints():
        raise ValueError(f"{run_dir}: rnnkit serve has nothing to serve for this {task} run")
    return service


# --- a bare model: its raw streams -----------------------------------------------------------


class ModelService(Service):
    """A model of no app (or one its app serves as it is): streams of its raw outputs."""

    def pool(self) -> StreamPool:
        if not hasattr(self, "_pool"):
            self._pool = StreamPool(self.name, self.predictor, getattr(torch, self.config.dtype))
        return self._pool

    def describe(self) -> dict[str, Any]:
        return self.pool().describe()


# --- text: generate, streamed token by token -------------------------------------------------


@register_service(TextGenerator)
class TextService(Service):
    app = "text"

    def endpoints(self) -> dict[str, Endpoint]:
        return {"generate": Endpoint(self._parse, self._generate, "text after a prime, streamed as Server-Sent Events"
                                     " (one 'text' event per piece, 'done' with the whole text)", "prime", streams=True)}

    def describe(self) -> dict[str, Any]:
        return {"vocab_size": self.predictor.tokenizer.vocab_size, "max_length": self.config.max_generate,
                "max_prime": self.config.max_prime}  # fmt: skip

    def _parse(self, data: dict) -> dict[str, Any]:
        c = self.config
        return {"prime": text_field(data, "prime", max_length=c.max_prime, default="\n"),
                "length": int_field(data, "length", low=1, high=c.max_generate, default=min(200, c.max_generate)),
                "temperature": number_field(data, "temperature", low=0, high=100, default=0.8),
                "top_k": int_field(data, "top_k", low=1, high=self.predictor.tokenizer.vocab_size, optional=True),
                "top_p": number_field(data, "top_p", low=0, high=1, optional=True, open_low=True),
                "seed": int_field(data, "seed", low=0, high=2**63 - 1, optional=True)}  # fmt: skip

    def _generate(self, emit: Callable[[str, dict], None] | None = None, **settings) -> dict[str, Any]:
        on_text = None if emit is None else (lambda piece: emit("text", {"text": piece}))
        text = self.predictor.generate(settings.pop("prime"), settings.pop("length"), on_text=on_text, **settings)
        return {"text": text}


# --- classify: predict ----------------------------------------------------------------------


@register_service(Classifier)
class ClassifyService(Service):
    app = "classify"

    def endpoints(self) -> dict[str, Endpoint]:
        return {"predict": Endpoint(self._parse, self._predict, "the label of each text, with every label's"
                                    " probability", "texts")}  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {"labels": self.predictor.labels}

    def _parse(self, data: dict) -> dict[str, Any]:
        texts, _ = texts_field(data, "texts", "text", max_items=self.config.max_items, max_length=self.config.max_prime)
        return {"texts": texts}

    def _predict(self, texts: list[str]) -> dict[str, Any]:
        labels = self.predictor.labels
        probabilities = self.predictor.probabilities(texts).tolist()  # (N, C)
        out = []
        for row in probabilities:
            best = max(range(len(row)), key=row.__getitem__)
            out.append({"label": labels[best], "probability": row[best], "probabilities": dict(zip(labels, row))})
        return {"predictions": out}


# --- forecast: a CSV in, the forecast with its interval out -----------------------------------


@register_service(ForecastRun)
@register_service(PanelRun)
class ForecastService(Service):
    app = "forecast"

    def endpoints(self) -> dict[str, Endpoint]:
        return {"forecast": Endpoint(self._parse, self._forecast, "the next horizon steps after a CSV's series, with"
                                     " the interval", "csv")}  # fmt: skip

    def describe(self) -> dict[str, Any]:
        from ..apps.forecast.config import interval_label, point_column

        c, saved = self.predictor.config, self.predictor.saved
        columns = saved.get("columns") or [c.target]
        return {"horizon": c.horizon, "point": point_column(c), "interval": interval_label(c),
                "time_column": c.time_column or saved.get("time_column"), "columns": columns,
                "id_column": c.id_column if isinstance(self.predictor, PanelRun) else None}  # fmt: skip

    def _parse(self, data: dict) -> dict[str, Any]:
        return {"csv": text_field(data, "csv", max_length=self.config.max_body)}

    def _forecast(self, csv: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="rnnkit-serve-") as folder:
            path = Path(folder) / "series.csv"
            path.write_text(csv, encoding="utf-8")
            try:
                if isinstance(self.predictor, PanelRun):
                    result, history = self.predictor.predict(path), None
                else:
                    result, history = self.predictor.predict_with_history(path)
            except (ValueError, KeyError) as error:  # not the run's columns, too short, not a CSV
                message = str(error) if isinstance(error, ValueError) else f"the CSV has no column {error}"
                raise ValueError(message.replace(str(path), "the CSV")) from None
        describe = self.describe()
        out: dict[str, Any] = {"point": describe["point"], "interval": describe["interval"]}
        if history is None:  # many series: the long frame, one row per series and step
            out["forecast"] = _columns(result)
        else:
            tail = history.iloc[-4 * max(self.predictor.config.season or 1, self.predictor.config.horizon):, 0]
            out["forecast"] = {"time": _values(result.index), **_columns(result)}
            out["target"], out["history"] = str(history.columns[0]), {"time": _values(tail.index), "value": _values(tail)}
        return finite(out)


def _values(column) -> list:
    """A pandas column or index as JSON values: times as ISO text, numbers as floats, else text."""
    if str(column.dtype).startswith("datetime"):
        return [t.isoformat() for t in column]
    if column.dtype.kind in "iu":
        return [int(v) for v in column]
    if column.dtype.kind in "fb":
        return [float(v) for v in column]
    return [str(v) for v in column]


def _columns(frame) -> dict[str, list]:
    return {str(name): _values(frame[name]) for name in frame.columns}


# --- detect: streams of the detector's scores and flags; a whole series at once ---------------


@register_service(RNNDetector)
class DetectService(Service):
    app = "detect"

    def endpoints(self) -> dict[str, Endpoint]:
        return {"detect": Endpoint(self._parse, self._detect, "the scores and flags of a whole series (null: a missing"
                                   " reading); a stream (POST /streams) scores one value at a time", "values")}  # fmt: skip

    def pool(self) -> ScorerPool:
        if not hasattr(self, "_pool"):
            self._pool = ScorerPool(self.name, self.predictor.scorer, self.predictor.model)
        return self._pool

    def describe(self) -> dict[str, Any]:
        c, info = self.predictor.config, self.predictor.info
        return {"threshold": c.threshold, "hold_off": c.hold_off, "online": c.online.every > 0,
                "target": info.get("target"), "time_column": info.get("time_column"), **self.pool().describe()}  # fmt: skip

    def _parse(self, data: dict) -> dict[str, Any]:
        values = data.get("values")
        if not isinstance(values, list) or not values:
            raise RequestError(422, f"request must have 'values', a non-empty list of numbers (null: a missing"
                                    f" reading), got {type(values).__name__}", "values")  # fmt: skip
        pool = self.pool()
        try:
            return {"values": [pool.parse(v) for v in values]}
        except RequestError as error:
            raise RequestError(422, error.message.replace("input must", "each of values must"), "values") from None

    def _detect(self, values: list[float]) -> dict[str, Any]:
        scores, flags = self.predictor.score_series(values)
        return finite({"scores": scores.tolist(), "flags": [bool(f) for f in flags]})


# --- translate, tag -------------------------------------------------------------------------


@register_service(Translator)
class TranslateService(Service):
    app = "translate"

    def endpoints(self) -> dict[str, Endpoint]:
        return {"translate": Endpoint(self._parse, self._translate, "the translation of each text", "texts")}

    def describe(self) -> dict[str, Any]:
        d = self.predictor.defaults
        return {"beam_size": d.beam_size, "max_length": d.max_length}

    def _parse(self, data: dict) -> dict[str, Any]:
        texts, one = texts_field(data, "texts", "text", max_items=self.config.max_items, max_length=self.config.max_prime)
        return {"texts": texts, "one": one, "beam_size": int_field(data, "beam_size", low=1, high=64, optional=True),
                "max_length": int_field(data, "max_length", low=1, high=self.config.max_generate, optional=True)}  # fmt: skip

    def _translate(self, texts: list[str], one: bool, **settings) -> dict[str, Any]:
        settings = {k: v for k, v in settings.items() if v is not None}
        out = self.predictor.translate(texts, **settings)
        return {"translation": out[0]} if one else {"translations": out}


@register_service(Tagger)
class TagService(Service):
    app = "tag"

    def endpoints(self) -> dict[str, Endpoint]:
        return {"tag": Endpoint(self._parse, self._tag, "one label per token of each sentence (a text is split at"
                                " white space)", "sentences")}  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {"labels": self.predictor.labels.symbols}

    def _parse(self, data: dict) -> dict[str, Any]:
        if "text" in data and "sentences" not in data:
            return {"sentences": [text_field(data, "text", max_length=self.config.max_prime).split()]}
        sentences = data.get("sentences")
        if (not isinstance(sentences, list) or not 1 <= len(sentences) <= self.config.max_items
                or not all(isinstance(s, list) and all(isinstance(t, str) for t in s) for s in sentences)):  # fmt: skip
            raise RequestError(422, f"request must have 'sentences', 1 to {self.config.max_items} lists of tokens"
                                    " (strings), or 'text', one sentence", "sentences")  # fmt: skip
        return {"sentences": sentences}

    def _tag(self, sentences: list[list[str]]) -> dict[str, Any]:
        return {"tags": self.predictor.tag(sentences)}
