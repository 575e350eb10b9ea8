"""rnnkit serve on trained runs: each app's endpoints answer what the app's own predictor answers
(text streamed as Server-Sent Events, a classifier's labels, a forecast from a CSV, a detector's
scores and flags on a stream and on a whole series, translations, tags), bad requests get a 4xx
JSON error naming the field, and the rate limit answers 429."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

pytest.importorskip("starlette")
pytest.importorskip("httpx")
pytest.importorskip("pandas")
from starlette.testclient import TestClient  # noqa: E402

from rnnkit.apps.anomaly import OnlineConfig, RNNDetector  # noqa: E402
from rnnkit.deploy.serve import ServeConfig, StreamServer, create_app, load_services  # noqa: E402


def _events(text: str) -> list[tuple[str, dict]]:
    """``(event, data)`` of a Server-Sent Events body."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_models_lists_every_run_with_its_app_and_endpoints(tiny_run):
    runs = [tiny_run(app) for app in ("text", "classify", "forecast", "detect", "translate", "tag")]
    with TestClient(create_app(load_services([str(r) for r in runs]))) as client:
        models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert {n: sorted(m["endpoints"]) for n, m in models.items()} == {
        "text": ["generate"], "classify": ["predict"], "forecast": ["forecast"], "detect": ["detect", "streams"],
        "translate": ["translate"], "tag": ["tag"]}  # fmt: skip
    assert {n: m["app"] for n, m in models.items()} == {n: n for n in models}
    assert models["classify"]["labels"] == ["neg", "pos"] and models["forecast"]["horizon"] == 4
    assert models["detect"]["threshold"] == "gaussian" and models["detect"]["batched"] is True
    assert models["text"]["endpoints"]["generate"]["streams"] is True


# --- text -------------------------------------------------------------------------------------


def test_generate_streams_the_generators_text_piece_by_piece(tiny_run):
    run = tiny_run("text")
    services = load_services([str(run)])
    generator = services["text"].predictor
    expected = generator.generate("the ", 30, temperature=1.0, seed=3)
    with TestClient(create_app(services)) as client:
        answer = client.post("/models/text/generate", json={"prime": "the ", "length": 30, "temperature": 1.0, "seed": 3})
        whole = client.post("/models/text/generate", json={"prime": "the ", "length": 30, "temperature": 1.0, "seed": 3,
                                                            "stream": False})  # fmt: skip
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    events = _events(answer.text)
    pieces = [data["text"] for event, data in events if event == "text"]
    assert len(pieces) > 5 and events[-1] == ("done", {"text": expected})
    assert "".join(pieces) == expected
    assert whole.json() == {"text": expected}


@pytest.mark.parametrize("body, field", [
    ({"prime": ""}, "prime"),
    ({"prime": 3}, "prime"),
    ({"prime": "x" * 11}, "prime"),
    ({"length": 0}, "length"),
    ({"length": 51}, "length"),
    ({"temperature": "hot"}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_k": 1.5}, "top_k"),
    ({"seed": -1}, "seed"),
    ({"stream": "yes"}, "stream"),
])  # fmt: skip
def test_generate_refuses_bad_settings_naming_the_field(tiny_run, body, field):
    config = ServeConfig(max_prime=10, max_generate=50)
    with TestClient(create_app(load_services([str(tiny_run("text"))], config), config)) as client:
        answer = client.post("/models/text/generate", json={"prime": "the ", **body})
    assert answer.status_code == 422 and answer.json()["field"] == field, answer.json()


# --- classify ---------------------------------------------------------------------------------


def test_predict_answers_the_classifiers_labels_and_probabilities(tiny_run):
    services = load_services([str(tiny_run("classify"))])
    texts = ["good great film", "bad awful film", ""]
    expected = services["classify"].predictor.probabilities(texts)
    with TestClient(create_app(services)) as client:
        many = client.post("/models/classify/predict", json={"texts": texts}).json()["predictions"]
        one = client.post("/models/classify/predict", json={"text": texts[0]}).json()["predictions"]
    got = torch.tensor([[p["probabilities"]["neg"], p["probabilities"]["pos"]] for p in many])
    torch.testing.assert_close(got, expected)
    assert [p["label"] for p in many] == [["neg", "pos"][i] for i in expected.argmax(-1).tolist()]
    assert one == many[:1]


@pytest.mark.parametrize("body, field", [
    ({}, "texts"), ({"texts": "one"}, "texts"), ({"texts": []}, "texts"), ({"texts": ["a", 1]}, "texts"),
    ({"texts": ["a", "b", "c"]}, "texts"), ({"text": 5}, "text"),
])  # fmt: skip
def test_predict_refuses_bad_texts(tiny_run, body, field):
    config = ServeConfig(max_items=2)
    with TestClient(create_app(load_services([str(tiny_run("classify"))], config), config)) as client:
        answer = client.post("/models/classify/predict", json=body)
    assert answer.status_code == 422 and answer.json()["field"] == field, answer.json()


# --- forecast ---------------------------------------------------------------------------------


def test_forecast_from_a_csv_equals_the_runs_forecast_with_its_interval(tiny_run, tmp_path):
    services = load_services([str(tiny_run("forecast"))])
    csv = "time,y\n" + "".join(f"{i},{5 + math.cos(i / 3):.4f}\n" for i in range(120))
    (tmp_path / "new.csv").write_text(csv)
    expected = services["forecast"].predictor.predict(tmp_path / "new.csv")
    with TestClient(create_app(services)) as client:
        answer = client.post("/models/forecast/forecast", json={"csv": csv})
        assert answer.status_code == 200, answer.text
        got = answer.json()
        wrong = client.post("/models/forecast/forecast", json={"csv": "a,b\n1,2\n"})
        short = client.post("/models/forecast/forecast", json={"csv": "time,y\n0,1\n1,2\n"})
        missing = client.post("/models/forecast/forecast", json={})
    f = got["forecast"]
    assert f["time"] == [120, 121, 122, 123] and got["point"] == "mean" and got["interval"] == "80% interval"
    np.testing.assert_allclose([f["mean"], f["lower"], f["upper"]], expected[["mean", "lower", "upper"]].to_numpy().T)
    assert all(lo <= m <= hi for lo, m, hi in zip(f["lower"], f["mean"], f["upper"]))
    assert got["target"] == "y" and got["history"]["time"][-1] == 119 and got["history"]["value"][-1] == pytest.approx(5 + math.cos(119 / 3), abs=1e-4)
    for bad in (wrong, short, missing):
        assert bad.status_code == 422 and bad.json()["field"] == "csv", bad.json()
    assert "no column 'time'" in wrong.json()["error"] and "rnnkit-serve-" not in wrong.json()["error"]


# --- detect -----------------------------------------------------------------------------------

VALUES = [0.1, 0.5, 0.9, None, 0.7, 3.5, 0.2, -0.3, -0.8, -0.2]


def _scorer_answers(detector: RNNDetector, values) -> list[tuple]:
    scorer = detector.scorer()
    out = []
    for v in values:
        score, flag = scorer.score(math.nan if v is None else v)
        out.append((None if math.isnan(score) else score, flag, scorer.prediction()))
    return out


def _close(answers: list[dict], expected: list[tuple]) -> None:
    assert [a["flag"] for a in answers] == [e[1] for e in expected]
    assert [a["score"] is None for a in answers] == [e[0] is None for e in expected]
    np.testing.assert_allclose([a["score"] or 0 for a in answers], [e[0] or 0 for e in expected], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([a["prediction"] for a in answers], [e[2] for e in expected], rtol=1e-5, atol=1e-6)


def test_a_detect_stream_answers_the_detectors_scores_flags_and_predictions(tiny_run):
    services = load_services([str(tiny_run("detect"))])
    detector = services["detect"].predictor
    expected = _scorer_answers(detector, VALUES)
    assert any(e[1] for e in expected) and expected[3][0] is None  # a flag, and the missing reading
    with TestClient(create_app(services)) as client:
        sid = client.post("/streams", json={"model": "detect"}).json()["id"]
        answers = [client.post(f"/streams/{sid}/step", json={"input": v}).json() for v in VALUES]
        whole = client.post("/models/detect/detect", json={"values": VALUES}).json()
        bad = client.post(f"/streams/{sid}/step", json={"input": [1.0]})
        bad_values = client.post("/models/detect/detect", json={"values": [1.0, "x"]})
    _close(answers, expected)
    assert [a["steps"] for a in answers] == list(range(1, len(VALUES) + 1))
    scores, flags = detector.score_series([math.nan if v is None else v for v in VALUES])
    assert whole["flags"] == flags.tolist() and whole["scores"][3] is None
    np.testing.assert_allclose([s or 0 for s in whole["scores"]], np.nan_to_num(scores), rtol=1e-5, atol=1e-6)
    assert bad.status_code == 422 and bad.json()["field"] == "input"
    assert bad_values.status_code == 422 and bad_values.json()["field"] == "values"


def test_detect_streams_stepped_together_equal_each_alone_in_one_model_call_per_tick(tiny_run):
    """Three detect streams of different lengths in one tick each step: the batched LSTM step, the
    scorers after it, equal to each stream's own scorer."""
    detector = RNNDetector.load(tiny_run("detect"))
    data = [VALUES, VALUES[::-1][:6], [v + 1 for v in VALUES if v is not None][:8]]

    async def serve():
        services = load_services([str(tiny_run("detect"))])
        server = StreamServer({"d": services["detect"].pool()}, ServeConfig(batch_window_ms=1))
        ticks = asyncio.create_task(server.run_ticks())
        ids = [server.open("d") for _ in data]
        outputs = [[] for _ in data]
        for t in range(max(map(len, data))):
            live = [k for k, values in enumerate(data) if t < len(values)]
            for k, answer in zip(live, await asyncio.gather(*(server.step(ids[k], data[k][t]) for k in live))):
                outputs[k].append(answer)
        ticks.cancel()
        return outputs, server.ticks

    outputs, ticks = asyncio.run(serve())
    assert ticks == max(map(len, data))
    for answers, values in zip(outputs, data):
        _close(answers, _scorer_answers(detector, values))


def test_a_detector_that_learns_online_scores_each_stream_with_its_own_model(tiny_run):
    detector = RNNDetector.load(tiny_run("detect"))
    detector.config = replace(detector.config, online=OnlineConfig(every=4, window=8, steps=1))
    expected = _scorer_answers(detector, VALUES)
    with TestClient(create_app({"d": detector})) as client:
        assert client.get("/models").json()["models"][0]["batched"] is False
        sids = [client.post("/streams", json={}).json()["id"] for _ in range(2)]
        answers = [[client.post(f"/streams/{sid}/step", json={"input": v}).json() for v in VALUES] for sid in sids]
    for a in answers:
        _close(a, expected)


def test_detect_streams_resume_after_a_restart_with_their_thresholds(tiny_run, tmp_path):
    run = str(tiny_run("detect"))
    expected = _scorer_answers(RNNDetector.load(run), VALUES)
    config = ServeConfig(state_dir=str(tmp_path / "states"))
    with TestClient(create_app(load_services([run]), config)) as client:
        sid = client.post("/streams", json={}).json()["id"]
        first = [client.post(f"/streams/{sid}/step", json={"input": v}).json() for v in VALUES[:5]]
    with TestClient(create_app(load_services([run]), config)) as client:
        assert client.get(f"/streams/{sid}").json()["steps"] == 5
        rest = [client.post(f"/streams/{sid}/step", json={"input": v}).json() for v in VALUES[5:]]
    _close(first + rest, expected)


# --- translate, tag ---------------------------------------------------------------------------


def test_translate_and_tag_answer_the_apps_predictors(tiny_run):
    pytest.importorskip("tokenizers")
    services = load_services([str(tiny_run("translate")), str(tiny_run("tag"))])
    translator, tagger = services["translate"].predictor, services["tag"].predictor
    with TestClient(create_app(services)) as client:
        one = client.post("/models/translate/translate", json={"text": "The red cat sleeps."}).json()
        many = client.post("/models/translate/translate", json={"texts": ["The big dog sleeps.", ""], "beam_size": 1}).json()
        tags = client.post("/models/tag/tag", json={"sentences": [["EU", "rejects", "German", "call"], []]}).json()
        text = client.post("/models/tag/tag", json={"text": "EU rejects French call"}).json()
        bad = client.post("/models/tag/tag", json={"sentences": [["EU", 3]]})
        bad_beam = client.post("/models/translate/translate", json={"text": "a", "beam_size": 0})
    assert one == {"translation": translator.translate(["The red cat sleeps."])[0]}
    assert many == {"translations": translator.translate(["The big dog sleeps.", ""], beam_size=1)}
    assert tags == {"tags": tagger.tag([["EU", "rejects", "German", "call"], []])}
    assert text == {"tags": tagger.tag([["EU", "rejects", "French", "call"]])}
    assert bad.status_code == 422 and bad.json()["field"] == "sentences"
    assert bad_beam.status_code == 422 and bad_beam.json()["field"] == "beam_size"


def test_unknown_models_and_actions_are_404_naming_the_field(tiny_run):
    with TestClient(create_app(load_services([str(tiny_run("classify"))]))) as client:
        unknown = client.post("/models/other/predict", json={"texts": ["a"]})
        action = client.post("/models/classify/generate", json={})
        streams = client.post("/streams", json={"model": "classify"})
    assert unknown.status_code == 404 and unknown.json()["field"] == "model"
    assert action.status_code == 404 and action.json()["field"] == "action" and "'predict'" in action.json()["error"]
    assert streams.status_code == 404 and streams.json()["field"] == "model"


# --- the rate limit ---------------------------------------------------------------------------


def test_a_client_over_the_rate_limit_gets_429_as_json(tiny_run):
    config = ServeConfig(rate_limit=0.5, rate_burst=3)
    with TestClient(create_app(load_services([str(tiny_run("classify"))], config), config)) as client:
        answers = [client.post("/models/classify/predict", json={"text": "good"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["field"] is None and "rate limit" in answers[-1].json()["error"]
    assert answers[-1].headers["retry-after"] == "1"
