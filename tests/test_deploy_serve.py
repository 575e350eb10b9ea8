"""rnnkit serve: streams with server-held state, batched across streams, snapshots that survive a
restart, 4xx JSON errors, the web page."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
import torch

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient  # noqa: E402

from rnnkit.deploy.serve import ServeConfig, StreamServer, create_app  # noqa: E402
from rnnkit.models import create_model  # noqa: E402


def _model(cell="lstm", features=2, layers=2):
    torch.manual_seed(0)
    return create_model("many_to_many", {"input": {"features": features}, "outputs": 3,
                                         "encoder": {"cell": cell, "hidden_size": 8, "num_layers": layers}})  # fmt: skip


def _tokens():
    torch.manual_seed(1)
    return create_model("many_to_one", {"input": {"vocab_size": 7, "embedding_dim": 4}, "outputs": 2,
                                        "encoder": {"cell": "gru", "hidden_size": 5}})  # fmt: skip


def test_stream_lifecycle_matches_the_model_stepped_by_hand():
    model = _model()
    with TestClient(create_app({"detect": model})) as client:
        assert client.get("/models").json()["models"][0]["input"] == {"features": 2}
        opened = client.post("/streams", json={"model": "detect"})
        assert opened.status_code == 201
        sid = opened.json()["id"]
        xs = torch.randn(4, 2)
        state = None
        for t, x in enumerate(xs):
            answer = client.post(f"/streams/{sid}/step", json={"input": x.tolist()}).json()
            with torch.no_grad():
                expected, state = model.eval().step(x.unsqueeze(0), state)
            torch.testing.assert_close(torch.tensor(answer["output"]), expected[0], atol=1e-6, rtol=1e-6)
            assert answer["steps"] == t + 1
        assert client.get(f"/streams/{sid}").json()["steps"] == 4
        assert client.delete(f"/streams/{sid}").status_code == 200
        gone = client.post(f"/streams/{sid}/step", json={"input": [0, 0]})
        assert gone.status_code == 404 and gone.json()["field"] == "id"


def test_batched_steps_equal_each_stream_alone_in_float64():
    """Three streams of different lengths stepped together (one model call per tick) against each
    served alone; a finished stream leaves the batch without disturbing the others.

    Equal to 1e-12, not bit for bit: the CPU's matrix product takes another kernel for one row
    than for several (its last bit can differ, measured ~1e-16 relative)."""
    model = _model("gru")
    lengths = [5, 2, 4]
    g = torch.Generator().manual_seed(2)
    data = [torch.randn(n, 2, generator=g, dtype=torch.float64).tolist() for n in lengths]

    async def serve(together: bool):
        # alone: no batching at all, each step run in its request's turn (what serve_load.py compares with)
        config = ServeConfig(dtype="float64", batch_window_ms=1) if together else ServeConfig(dtype="float64", max_batch=1)
        server = StreamServer({"m": model}, config)
        ticks = asyncio.create_task(server.run_ticks())
        await asyncio.sleep(0)
        ids = [server.open("m") for _ in lengths]
        outputs = [[] for _ in lengths]
        for t in range(max(lengths)):
            live = [k for k, n in enumerate(lengths) if t < n]
            if together:
                answers = await asyncio.gather(*(server.step(ids[k], data[k][t]) for k in live))
            else:
                answers = [await server.step(ids[k], data[k][t]) for k in live]
            for k, answer in zip(live, answers):
                outputs[k].append(answer["output"])
        ticks.cancel()
        return outputs, server.ticks

    together, ticks_together = asyncio.run(serve(True))
    alone, ticks_alone = asyncio.run(serve(False))
    for a, b in zip(together, alone):
        torch.testing.assert_close(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64),
                                   rtol=1e-12, atol=1e-14)
    assert ticks_together == max(lengths) and ticks_alone == sum(lengths)


def test_state_survives_a_restart_without_shutdown(tmp_path):
    """A server that dies between steps (no shutdown code runs: SIGKILL) leaves every acknowledged
    step on disk; a new server on the directory resumes each stream where it was."""
    model = _model()
    xs = torch.randn(6, 2).tolist()
    with TestClient(create_app({"m": model})) as client:  # reference: one uninterrupted stream
        sid = client.post("/streams", json={}).json()["id"]
        expected = [client.post(f"/streams/{sid}/step", json={"input": x}).json()["output"] for x in xs]
    config = ServeConfig(state_dir=str(tmp_path / "states"))
    first = TestClient(create_app({"m": model}, config))
    first.__enter__()
    sid = first.post("/streams", json={"model": "m"}).json()["id"]
    for x in xs[:3]:
        first.post(f"/streams/{sid}/step", json={"input": x})
    killed = tmp_path / "at-kill"
    shutil.copytree(tmp_path / "states", killed)  # the directory as a SIGKILL would leave it
    first.__exit__(None, None, None)
    with TestClient(create_app({"m": model}, ServeConfig(state_dir=str(killed)))) as client:
        assert client.get(f"/streams/{sid}").json()["steps"] == 3
        resumed = [client.post(f"/streams/{sid}/step", json={"input": x}).json()["output"] for x in xs[3:]]
    torch.testing.assert_close(torch.tensor(resumed), torch.tensor(expected[3:]), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("path, body, status, field", [
    ("/streams/{sid}/step", b"{not json", 400, "body"),
    ("/streams/{sid}/step", b"[1, 2]", 400, "body"),
    ("/streams/{sid}/step", b'{"x": 1}', 422, "input"),
    ("/streams/{sid}/step", b'{"input": [1.0]}', 422, "input"),
    ("/streams/{sid}/step", b'{"input": [NaN, 1.0]}', 422, "input"),
    ("/streams/{sid}/step", b'{"input": ["a", 1.0]}', 422, "input"),
    ("/streams/unknown/step", b'{"input": [1.0, 2.0]}', 404, "id"),
    ("/streams", b'{"model": "other"}', 404, "model"),
])  # fmt: skip
def test_bad_requests_get_4xx_json_naming_the_field(path, body, status, field):
    with TestClient(create_app({"m": _model()})) as client:
        sid = client.post("/streams", json={}).json()["id"]
        answer = client.post(path.format(sid=sid), content=body, headers={"content-type": "application/json"})
        assert answer.status_code == status
        assert answer.json()["field"] == field and answer.json()["error"]


def test_token_ids_limits_and_token():
    config = ServeConfig(max_streams=2, max_body=200, token="s3cret")
    with TestClient(create_app({"tok": _tokens()}, config)) as client:
        assert client.post("/streams", json={}).status_code == 401
        assert client.get("/").status_code == 200  # the page itself; its requests carry the token
        auth = {"Authorization": "Bearer s3cret"}
        sid = client.post("/streams", json={}, headers=auth).json()["id"]
        client.post("/streams", json={}, headers=auth)
        full = client.post("/streams", json={}, headers=auth)
        assert full.status_code == 429
        ok = client.post(f"/streams/{sid}/step", json={"input": 3}, headers=auth)
        assert ok.status_code == 200 and len(ok.json()["output"]) == 2
        bad = client.post(f"/streams/{sid}/step", json={"input": 7}, headers=auth)
        assert bad.status_code == 422 and "[0, 7)" in bad.json()["error"]
        big = client.post(f"/streams/{sid}/step", json={"input": [0.0] * 100}, headers=auth)
        assert big.status_code == 413


def test_a_websocket_steps_a_stream_as_its_http_steps_do():
    """Messages on /streams/{id}/ws step the same stream, state and batching as POST .../step: a
    stream stepped partly over the socket and partly over HTTP equals one stepped over HTTP only;
    a bad message is answered with an error naming the field, and the socket stays open."""
    from starlette.websockets import WebSocketDisconnect

    xs = torch.randn(5, 2).tolist()
    with TestClient(create_app({"m": _model()})) as client:
        sid = client.post("/streams", json={}).json()["id"]
        expected = [client.post(f"/streams/{sid}/step", json={"input": x}).json() for x in xs]
        sid = client.post("/streams", json={}).json()["id"]
        got, errors = [], []
        with client.websocket_connect(f"/streams/{sid}/ws") as socket:
            for x in xs[:3]:
                socket.send_text(json.dumps({"input": x}))
                got.append(json.loads(socket.receive_text()))
            for message in ("{not json", json.dumps({"input": [1.0]}), json.dumps({"x": 1})):
                socket.send_text(message)
                errors.append(json.loads(socket.receive_text()))
        got += [client.post(f"/streams/{sid}/step", json={"input": x}).json() for x in xs[3:]]
        with client.websocket_connect("/streams/unknown/ws") as socket:
            gone = json.loads(socket.receive_text())
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_text()
    assert [g["steps"] for g in got] == [1, 2, 3, 4, 5]
    torch.testing.assert_close(torch.tensor([g["output"] for g in got]), torch.tensor([e["output"] for e in expected]))
    assert [(e["status"], e["field"]) for e in errors] == [(400, "body"), (422, "input"), (422, "input")]
    assert gone["status"] == 404 and gone["field"] == "id" and closed.value.code == 4404


def test_a_websocket_needs_the_token_and_counts_against_the_rate_limit():
    from starlette.websockets import WebSocketDisconnect

    config = ServeConfig(token="s3cret", rate_limit=0.001, rate_burst=4)
    with TestClient(create_app({"m": _model()}, config)) as client:
        sid = client.post("/streams", json={}, headers={"Authorization": "Bearer s3cret"}).json()["id"]  # 1 request
        with pytest.raises(WebSocketDisconnect):  # no token: refused before the handshake (2)
            with client.websocket_connect(f"/streams/{sid}/ws") as socket:
                socket.send_text(json.dumps({"input": [0.5, 0.5]}))  # had it been let in, this answers
                socket.receive_text()
        with client.websocket_connect(f"/streams/{sid}/ws?token=s3cret") as socket:  # 3
            socket.send_text(json.dumps({"input": [0.5, 0.5]}))  # 4
            ok = json.loads(socket.receive_text())
            socket.send_text(json.dumps({"input": [0.5, 0.5]}))  # 5: over the burst
            limited = json.loads(socket.receive_text())
    assert ok["steps"] == 1 and limited["status"] == 429 and "rate limit" in limited["error"]


def test_steps_count_against_the_rate_limit():
    config = ServeConfig(rate_limit=0.001, rate_burst=3)
    with TestClient(create_app({"m": _model()}, config)) as client:
        sid = client.post("/streams", json={}).json()["id"]
        answers = [client.post(f"/streams/{sid}/step", json={"input": [0.1, 0.2]}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[-1].headers["retry-after"] == "1" and "rate limit" in answers[-1].json()["error"]


def test_idle_streams_expire():
    server = StreamServer({"m": _model()}, ServeConfig(idle_timeout=0.0))
    sid = server.open("m")
    assert server.expire() == [sid] and sid not in server.owner


def test_bidirectional_model_is_refused_with_the_reason():
    model = create_model("many_to_many", {"input": {"features": 1}, "encoder": {"cell": "gru", "hidden_size": 4, "bidirectional": True}})
    with pytest.raises(ValueError, match="unidirectional"):
        StreamServer({"m": model})


def test_the_page_is_served_and_names_its_endpoints():
    with TestClient(create_app({"m": _model()})) as client:
        page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/streams" in page.text and "<canvas" in page.text and "http" not in page.text.split("<script>")[1]


def test_the_page_in_a_headless_browser(tmp_path, tiny_run):
    """Chromium from the system's packages, driven by Playwright, on a bare model and trained text,
    detect and forecast runs: a stream's outputs draw points; a generation streams text into the
    page piece by piece; a detection stream draws values, scores and flags; a CSV's forecast is
    drawn with its interval. A screenshot of each is saved (their paths are printed)."""
    playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: no browser test")
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        pytest.skip("no Chromium on this machine (apt install chromium): no browser test")
    import math
    import threading
    import time

    import uvicorn

    from rnnkit.deploy.serve import load_services

    services = load_services([str(tiny_run(app)) for app in ("text", "detect", "forecast")])
    app = create_app({"m": _model(), **services})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    csv = tmp_path / "series.csv"
    csv.write_text("time,y\n" + "".join(f"{i},{5 + math.cos(i / 3):.4f}\n" for i in range(120)))
    shots = []
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path)
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#model option", state="attached")  # an <option> is never "visible" itself

            page.select_option("#model", "m")  # a bare model's stream, over its WebSocket
            page.fill("#values", "0.1,0.2\n0.5,0.1\n0.9,-0.3")
            page.click("#send")
            page.wait_for_function("document.getElementById('chart').dataset.points === '3'")

            page.select_option("#model", "text")
            page.fill("#prime", "the ")
            page.fill("#length", "60")
            page.click("#generate")
            page.wait_for_function("document.getElementById('generated').dataset.done === '1'")
            generated = page.eval_on_selector("#generated", "e => [e.textContent, Number(e.dataset.pieces)]")
            shots.append(tmp_path / "serve-generate.png")
            page.screenshot(path=str(shots[-1]))

            page.select_option("#model", "detect")
            page.fill("#values", "0.1\n0.5\n0.9\n\n0.7\n3.5\n0.2\n-0.3\n-0.8\n-0.2")  # a missing reading, a spike
            page.click("#send")
            page.wait_for_function("document.getElementById('chart').dataset.points === '10'")
            flags = page.eval_on_selector("#chart", "e => Number(e.dataset.flags)")
            shots.append(tmp_path / "serve-detect.png")
            page.screenshot(path=str(shots[-1]))

            page.select_option("#model", "forecast")
            page.set_input_files("#csv", str(csv))
            page.wait_for_function("document.getElementById('forecast-chart').dataset.forecast === '4'")
            shots.append(tmp_path / "serve-forecast.png")
            page.screenshot(path=str(shots[-1]))
            log = page.text_content("#log")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(5)
    print("screenshots:", *shots)
    assert generated[0].startswith("the ") and len(generated[0]) > len("the ") and generated[1] > 1
    assert flags >= 1  # the spike (the same values flag it in test_deploy_apps)
    assert "failed" not in log and "error" not in log.lower(), log


def test_a_server_killed_with_sigkill_resumes_its_streams(tmp_path):
    """``rnnkit serve --state-dir`` as a process, killed with SIGKILL between steps, restarted."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    from rnnkit._io import save_tensors, write_json
    from rnnkit.models import model_spec

    model = _model()
    run = tmp_path / "detect"
    run.mkdir()
    write_json(run / "config.json", {"model": model_spec(model)})
    save_tensors(run / "model.safetensors", model.state_dict())
    xs = torch.randn(5, 2).tolist()
    with TestClient(create_app({"detect": model})) as client:  # the uninterrupted stream
        sid = client.post("/streams", json={}).json()["id"]
        expected = [client.post(f"/streams/{sid}/step", json={"input": x}).json()["output"] for x in xs]

    def start():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
        process = subprocess.Popen([sys.executable, "-m", "rnnkit.cli", "serve", str(run), "--port", str(port),
                                    "--state-dir", str(tmp_path / "states")], env=env)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/models", timeout=1)
                return process, f"http://127.0.0.1:{port}"
            except httpx.HTTPError:
                time.sleep(0.05)
        process.kill()
        pytest.fail("rnnkit serve did not start within 60 s")

    process, url = start()
    try:
        sid = httpx.post(f"{url}/streams", json={}).json()["id"]
        for x in xs[:2]:
            httpx.post(f"{url}/streams/{sid}/step", json={"input": x}).raise_for_status()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    process, url = start()
    try:
        assert httpx.get(f"{url}/streams/{sid}").json()["steps"] == 2
        resumed = [httpx.post(f"{url}/streams/{sid}/step", json={"input": x}).json()["output"] for x in xs[2:]]
    finally:
        process.terminate()
        process.wait(10)
    torch.testing.assert_close(torch.tensor(resumed), torch.tensor(expected[2:]), atol=1e-6, rtol=1e-6)
