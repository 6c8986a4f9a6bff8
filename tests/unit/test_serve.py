"""`alexnet serve`: a real server process on a free port, its JSON API, its limits, and the page
driven by a real headless browser (Debian's chromium + chromedriver, installed by `make test`).

Two servers: one with both frameworks (class names in Cyrillic and CJK, micro-batching on with a
wait long enough that concurrent requests share forward passes), and one as an
operator exposes it (all addresses, a token, a short deadline and a one-image queue) whose torch
worker the tests stop and kill."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, run_cli, smooth_image

MAX_UPLOAD_MB = 1.0
PIXEL_BUDGET = 2_000_000
LABELS = tuple(f"класс {i} 猫" for i in range(10))  # outside Latin-1: cannot travel in a plain HTTP header
TOKEN = "s3cret-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A randomly initialised `cifar` model with named classes, as a .safetensors file."""
    import torch

    from alexnet_lab.core.bundle import ModelMeta, WeightBundle
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.frameworks.torch import build_model, to_canonical
    from alexnet_lab.weights import save_weights

    torch.manual_seed(0)
    tensors = to_canonical(build_model("cifar", 10))
    tensors["fc8.weight"] = tensors["fc8.weight"] * 20  # spread the probabilities
    spec = TORCHVISION_IMAGENET.__class__(**{**TORCHVISION_IMAGENET.to_dict(), "resize": 36, "crop": 32})
    meta = ModelMeta("cifar", LABELS, spec, source="/home/someone/private/serve-test.pth")
    return save_weights(WeightBundle(tensors, meta), tmp_path_factory.mktemp("serve") / "model.safetensors")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("serve-images")
    rng = np.random.default_rng(7)
    paths = []
    for i, (h, w) in enumerate([(40, 48), (64, 64), (90, 60)]):
        path = folder / f"picture{i}.png"
        Image.fromarray(smooth_image(rng, h, w)).save(path)
        paths.append(path)
    return paths


def _start_server(weights: Path, log: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """`alexnet serve` in a process of its own, once /readyz says every worker is ready."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "ALEXNET_LAB_MAX_IMAGE_PIXELS": str(PIXEL_BUDGET)}
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "alexnet_lab", "serve", str(weights), "--port", str(port),
                                    "--max-upload-mb", str(MAX_UPLOAD_MB), *flags], stdout=out,
                                   stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        if process.poll() is not None:
            pytest.fail(f"the server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/readyz", timeout=2)
            return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    pytest.fail(f"the server did not start: {log.read_text()[-2000:]}")


def _stop_server(process: subprocess.Popen, log: Path, in_flight=None) -> None:
    """Ctrl-C; with `in_flight` (a call returning (status, body)) running when the signal comes,
    its request must still be answered: graceful shutdown drains before the workers stop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(in_flight) if in_flight else None
        time.sleep(0.3)
        process.send_signal(2)
        if pending is not None:
            assert pending.result(timeout=120)[0] == 200
    assert process.wait(timeout=60) == 0, log.read_text()[-2000:]


@pytest.fixture(scope="module")
def server(weights, tmp_path_factory):
    """Both frameworks, as a user starts it; yields its base URL and log."""
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    process, url = _start_server(weights, log, "--max-batch", "32", "--max-wait-ms", "50")
    yield url, log
    rng = np.random.default_rng(3)
    uploads = [(f"last{i}.png", _png(smooth_image(rng, 300, 400))) for i in range(16)]
    _stop_server(process, log, lambda: _post(url + "/api/compare", uploads))  # a second or more of work


def _post(url: str, files: list[tuple[str, bytes]], headers: dict | None = None) -> tuple[int, object]:
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for name, data in files:
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"{name}\"\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n".encode())
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(url, data=body.getvalue(), method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def cli_predictions(weights, images) -> dict[str, list[dict]]:
    result = run_cli("predict", *map(str, images), "--weights", str(weights), "--json", "--precision", "fp32")
    assert result.returncode == 0, result.stderr
    return {Path(entry["image"]).name: entry["predictions"] for entry in json.loads(result.stdout)}


def test_info_is_the_model_card(server, weights):
    url, _ = server
    card = json.loads(urllib.request.urlopen(url + "/api/info").read())
    assert card["variant"] == "cifar" and card["num_classes"] == 10 and card["frameworks"] == ["torch", "keras"]
    assert card["categories"][3] == LABELS[3] and card["preprocessing"]["crop"] == 32
    assert card["weights"] == "model.safetensors" and card["source"] == "serve-test.pth"  # names, never paths
    assert "/" not in json.dumps({k: card[k] for k in ("weights", "source")})


def test_predict_matches_the_command_line(server, images, cli_predictions):
    url, _ = server
    status, document = _post(url + "/api/predict", [(p.name, p.read_bytes()) for p in images])
    assert status == 200
    for entry in document:
        expected = cli_predictions[entry["image"]]
        assert [p["index"] for p in entry["predictions"]] == [p["index"] for p in expected]
        np.testing.assert_allclose([p["probability"] for p in entry["predictions"]],
                                   [p["probability"] for p in expected], atol=1e-6)


def test_concurrent_clients_get_their_own_answers(server, images, cli_predictions):
    url, _ = server
    jobs = [(i, images[(i * 7 + j) % len(images)]) for i in range(8) for j in range(10)]  # 8 clients x 10

    def ask(job):
        _, path = job
        status, document = _post(url + "/api/predict", [(path.name, path.read_bytes())])
        return path.name, status, document

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, jobs))
    for name, status, document in answers:
        assert status == 200 and document[0]["image"] == name
        assert document[0]["predictions"][0]["index"] == cli_predictions[name][0]["index"]
        assert abs(document[0]["predictions"][0]["probability"] - cli_predictions[name][0]["probability"]) < 1e-6


def test_frameworks_side_by_side_with_the_network_input(server, images):
    url, _ = server
    status, document = _post(url + "/api/compare", [(images[0].name, images[0].read_bytes())])
    assert status == 200
    entry = document[0]
    torch_top, keras_top = entry["frameworks"]["torch"], entry["frameworks"]["keras"]
    assert [p["index"] for p in torch_top] == [p["index"] for p in keras_top]
    assert entry["max_probability_difference"] < 1e-4
    view = Image.open(io.BytesIO(base64.b64decode(entry["input_png"])))
    assert view.size == (32, 32)  # the 32x32 crop, not the 40x48 upload


def test_explain_overlays_agree_between_frameworks(server, images):
    url, _ = server
    answers = {}
    for framework in ("torch", "keras"):
        request = urllib.request.Request(f"{url}/api/explain?framework={framework}&class=3", method="POST")
        boundary = uuid.uuid4().hex
        request.data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.png\"\r\n\r\n"
                        ).encode() + images[1].read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
        with urllib.request.urlopen(request, timeout=120) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}  # HTTP header names are case-insensitive
            answers[framework] = (np.asarray(Image.open(io.BytesIO(response.read()))), headers)
    (torch_png, torch_headers), (keras_png, keras_headers) = answers["torch"], answers["keras"]
    assert torch_png.shape == (32, 32, 3) and torch_headers["x-explained-class"] == "3"
    encoded = torch_headers["x-explained-label*"]  # RFC 8187: charset''percent-encoded UTF-8
    assert encoded.startswith("UTF-8''") and urllib.parse.unquote(encoded[7:]) == LABELS[3]
    assert keras_headers["x-explained-label*"] == encoded and torch_headers["x-explained-label"].isascii()
    assert np.abs(torch_png.astype(int) - keras_png.astype(int)).max() <= 2  # the same map, drawn the same
    status, document = _post(url + "/api/explain?method=nope", [(images[1].name, images[1].read_bytes())])
    assert status == 422 and "method" in document["detail"]
    status, document = _post(url + "/api/explain?class=3&format=json", [(images[1].name, images[1].read_bytes())])
    assert status == 200 and document["label"] == LABELS[3] and document["class_index"] == 3
    as_json = np.asarray(Image.open(io.BytesIO(base64.b64decode(document["png"]))))
    assert np.array_equal(as_json, torch_png)  # the same overlay as the PNG answer


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_bad_uploads_get_a_status_not_a_crash(server, images):
    url, log = server
    noise = np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)
    oversize = _png(noise)
    assert len(oversize) > MAX_UPLOAD_MB * 1024 * 1024
    too_many_pixels = _png(np.zeros((1500, 1500, 3), np.uint8))  # small file, 2.25 MP > the budget
    truncated = images[1].read_bytes()[:200]
    for name, data, status in [("big.png", oversize, 413), ("huge.png", too_many_pixels, 413),
                               ("notes.txt", b"not an image at all", 415), ("cut.png", truncated, 422)]:
        got, document = _post(url + "/api/predict", [(name, data)])
        assert got == status, (name, document)
        assert name in document["detail"]
    huge = urllib.request.Request(url + "/api/predict", data=b"x", method="POST",
                                  headers={"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(10**11)})
    with pytest.raises(urllib.error.HTTPError) as refused:  # declared too large: refused before the body is read
        urllib.request.urlopen(huge, timeout=30)
    assert refused.value.code == 413
    mixed_status, mixed = _post(url + "/api/predict", [("cut.png", truncated), (images[0].name, images[0].read_bytes())])
    assert mixed_status == 200 and "error" in mixed[0] and "predictions" in mixed[1]  # predict --json's shape
    assert _post(url + "/api/predict", [(images[0].name, images[0].read_bytes())])[0] == 200  # still serving
    lines = [line for line in log.read_text().splitlines() if "POST /api/predict" in line]
    assert any(" 413 " in line for line in lines) and any(" 415 " in line for line in lines)


def _browser():
    """Headless chromium through chromedriver (Debian's packages, installed by `make test`)."""
    if os.environ.get("ALEXNET_LAB_NO_BROWSER"):
        pytest.skip("ALEXNET_LAB_NO_BROWSER is set")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
    assert chromium.exists() and driver_path.exists(), "install Debian's chromium and chromium-driver (make test does)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(driver_path)), options=options)


def test_the_page_in_a_real_browser(server, images, cli_predictions, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    browser = _browser()
    try:
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(lambda b: "cifar" in b.find_element(By.ID, "card").text)
        browser.find_element(By.ID, "files").send_keys(str(images[2]))
        top = WebDriverWait(browser, 120).until(lambda b: b.find_elements(
            By.CSS_SELECTOR, '.result .framework[data-framework="torch"] .row[data-rank="1"]'))[0]
        expected = cli_predictions[images[2].name][0]
        assert top.find_element(By.CLASS_NAME, "label").text == expected["label"]
        assert top.find_element(By.CLASS_NAME, "probability").text == f"{100 * expected['probability']:.2f}%"
        keras_top = browser.find_element(By.CSS_SELECTOR, '.framework[data-framework="keras"] .row[data-rank="1"]')
        assert keras_top.find_element(By.CLASS_NAME, "label").text == expected["label"]
        loaded = browser.execute_script("const i = document.querySelector('.result img.input');"
                                        "return i.complete && i.naturalWidth;")
        assert loaded == 32
        overlays = WebDriverWait(browser, 120).until(lambda b: len(b.execute_script(
            "return [...document.querySelectorAll('img.overlay')].filter(i => i.complete && i.naturalWidth)"
            ".map(i => i.dataset.framework);")) == 2 and b.execute_script(
            "return [...document.querySelectorAll('img.overlay')].map(i => i.naturalWidth);"))
        assert overlays == [32, 32]  # the Grad-CAM overlay of each framework, over the 32x32 input
        captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".explained")]
        assert len(captions) == 2 and all(f'"{expected["label"]}"' in c for c in captions)  # Unicode labels shown
        screenshot = tmp_path / "serve-page.png"
        browser.save_screenshot(str(screenshot))  # kept as the test's artifact (pytest keeps failed tests' folders)
        assert screenshot.stat().st_size > 10_000
        if os.environ.get("ALEXNET_LAB_SCREENSHOT"):  # how docs/images/serve-page.png was made
            Path(os.environ["ALEXNET_LAB_SCREENSHOT"]).write_bytes(screenshot.read_bytes())
    finally:
        browser.quit()


def _metrics(url: str, headers: dict | None = None) -> dict[tuple[str, tuple], float]:
    """/metrics parsed by prometheus_client's own parser: {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    status, _, body = _get(url + "/metrics", headers)
    assert status == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode()) for sample in family.samples}


@pytest.fixture(scope="module")
def many_images(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("serve-many")
    rng = np.random.default_rng(11)
    paths = []
    for i in range(16):
        path = folder / f"photo{i}.png"
        Image.fromarray(smooth_image(rng, int(rng.integers(33, 90)), int(rng.integers(33, 90)))).save(path)
        paths.append(path)
    return paths


def test_batched_answers_equal_unbatched_ones_under_16_clients(server, many_images):
    url, _ = server
    before = _metrics(url)
    alone = {p.name: _post(url + "/api/predict?top=10", [(p.name, p.read_bytes())])[1][0] for p in many_images}
    barrier = threading.Barrier(16)

    def together(path):
        barrier.wait()  # all 16 requests leave at once, so they share forward passes
        return _post(url + "/api/predict?top=10", [(path.name, path.read_bytes())])

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(together, many_images))
    for path, (status, document) in zip(many_images, answers):
        assert status == 200 and document[0] == alone[path.name]  # identical, to the last bit of each probability
    after = _metrics(url)
    key = ("alexnet_serve_batch_size_count", (("framework", "torch"),))
    single = ("alexnet_serve_batch_size_bucket", (("framework", "torch"), ("le", "1.0")))
    passes = after[key] - before.get(key, 0)
    singles = after[single] - before.get(single, 0)
    assert passes < 32 and passes - singles >= 1, (passes, singles)  # some of the 16 were batched together


def test_metrics_health_and_openapi(server):
    url, _ = server
    assert _get(url + "/healthz")[0] == 200
    status, _, body = _get(url + "/readyz")
    ready = json.loads(body)
    assert status == 200 and ready["ready"] and set(ready["workers"]) == {"torch", "keras"}
    samples = _metrics(url)
    assert samples[("alexnet_serve_requests_total", (("endpoint", "/readyz"), ("status", "200")))] >= 1
    assert ("alexnet_serve_worker_restarts_total", (("framework", "keras"),)) in samples
    assert ("alexnet_serve_queue_depth", (("framework", "torch"),)) in samples
    assert any(name == "alexnet_serve_request_seconds_bucket" for name, _ in samples)
    status, _, body = _get(url + "/openapi.json")
    paths = json.loads(body)["paths"]
    assert status == 200 and {"/api/predict", "/api/explain", "/healthz", "/readyz", "/metrics"} <= set(paths)
    assert "requestBody" in paths["/api/predict"]["post"]  # the multipart upload is described
    answer = json.dumps(paths["/api/predict"]["post"]["responses"]["200"])
    assert "ImageAnswer" in answer and "503" in paths["/api/predict"]["post"]["responses"]  # and the answers' shapes
    assert _get(url + "/docs")[0] == 200


def test_every_error_is_json_without_a_path(server, images):
    url, _ = server
    for path, status in [("/api/nope", 404), ("/api/predict?top=0", 422), ("/api/predict?framework=jax", 422)]:
        got, body = _post(url + path, [(images[0].name, images[0].read_bytes())])
        assert got == status and isinstance(body["detail"], str) and "/tmp" not in body["detail"], (path, body)
    got, body = _post(url + "/api/predict?top=1", [("evil\x00name\n.png", images[0].read_bytes())])
    assert got == 200 and body[0]["image"] == "evilname.png"  # control characters dropped, not a 500


def test_exposed_without_a_token_it_refuses_to_start(weights):
    started = time.perf_counter()
    result = run_cli("serve", str(weights), "--host", "0.0.0.0", "--port", str(_free_port()),
                     env={"ALEXNET_SERVE_TOKEN": ""})
    assert result.returncode != 0 and "--token" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and time.perf_counter() - started < 60


@pytest.fixture(scope="module")
def exposed(weights, tmp_path_factory):
    """torch only, on all addresses with a token, a 4 s deadline, no batching, a one-image queue and
    one origin allowed to call it from a browser."""
    log = tmp_path_factory.mktemp("serve-exposed") / "server.log"
    process, url = _start_server(weights, log, "--frameworks", "torch", "--host", "0.0.0.0", "--token", TOKEN,
                                 "--timeout-s", "4", "--max-batch", "1", "--max-queue", "1",
                                 "--max-request-mb", "2", "--cors", ALLOWED_ORIGIN)
    yield process, url, log
    _stop_server(process, log)


AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALLOWED_ORIGIN = "http://dashboard.example"


def _worker_pid(server_pid: int) -> int:
    """The framework worker: the server's child started by multiprocessing's spawn."""
    for child in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split():
        if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text():
            return int(child)
    raise AssertionError("no worker process")


def _wait_ready(url: str, seconds: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if _get(url + "/readyz")[0] == 200:
            return time.perf_counter() - started
        time.sleep(0.2)
    raise AssertionError("the worker did not come back")


def test_the_token_is_required_off_loopback(exposed, images):
    _, url, _ = exposed
    upload = [(images[0].name, images[0].read_bytes())]
    assert _post(url + "/api/predict", upload)[0] == 401
    assert _post(url + "/api/predict", upload, {"Authorization": "Bearer wrong"})[0] == 401
    status, headers, body = _get(url + "/api/info")
    assert status == 401 and headers.get("www-authenticate") == "Bearer" and "token" in json.loads(body)["detail"]
    assert _get(url + "/metrics")[0] == 401
    assert _post(url + "/api/predict", upload, AUTH)[0] == 200
    assert _get(url + "/healthz")[0] == 200 and _get(url + "/")[0] == 200  # probes and the page stay open


def test_a_stuck_worker_is_replaced_and_the_queue_is_bounded(exposed, images):
    process, url, _ = exposed
    upload = [(images[0].name, images[0].read_bytes())]
    worker = _worker_pid(process.pid)
    os.kill(worker, signal.SIGSTOP)  # stuck: alive, never answers
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            first = pool.submit(_post, url + "/api/predict", upload, AUTH)
            time.sleep(0.5)
            second = pool.submit(_post, url + "/api/predict", upload, AUTH)  # waits in the one-image queue
            time.sleep(0.5)
            started = time.perf_counter()
            status, body = _post(url + "/api/predict", upload, AUTH)  # the queue is full
            assert status == 503 and "queue" in body["detail"] and time.perf_counter() - started < 2
            assert _get(url + "/healthz")[0] == 200 and _get(url + "/api/info", AUTH)[0] == 200  # not frozen
            status, body = first.result(timeout=30)
            assert status == 503 and "did not answer" in body["detail"]
            assert second.result(timeout=30)[0] == 503
    finally:
        if Path(f"/proc/{worker}").exists():
            os.kill(worker, signal.SIGCONT)
    _wait_ready(url)
    assert _worker_pid(process.pid) != worker
    assert _post(url + "/api/predict", upload, AUTH)[0] == 200
    assert _metrics(url, AUTH)[("alexnet_serve_worker_restarts_total", (("framework", "torch"),))] >= 1


def test_a_killed_worker_is_restarted(exposed, images):
    process, url, _ = exposed
    upload = [(images[0].name, images[0].read_bytes())]
    expected = _post(url + "/api/predict", upload, AUTH)[1]
    os.kill(_worker_pid(process.pid), signal.SIGKILL)
    request = urllib.request.Request(url + "/readyz")
    with pytest.raises(urllib.error.HTTPError) as not_ready:
        urllib.request.urlopen(request, timeout=30)
    assert not_ready.value.code == 503
    status, body = _post(url + "/api/predict", upload, AUTH)
    assert status == 503 or body == expected
    _wait_ready(url)
    assert _post(url + "/api/predict", upload, AUTH) == (200, expected)  # the reloaded model answers the same


def test_a_chunked_oversize_upload_is_refused_while_it_streams(exposed):
    import http.client

    _, url, _ = exposed
    port = int(url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest("POST", "/api/predict")
    for name, value in [("Content-Type", "multipart/form-data; boundary=x"), ("Transfer-Encoding", "chunked"),
                        *AUTH.items()]:
        connection.putheader(name, value)
    connection.endheaders()
    chunk, sent = b"--x\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.png\"\r\n\r\n", 0
    try:
        for _ in range(160):  # 40 MB offered against the 2 MB limit, no Content-Length to check first
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            chunk = b"A" * (256 * 1024)
    except OSError:
        pass  # the server closed the connection: refused while streaming
    response = connection.getresponse()
    assert response.status == 413 and "limit" in json.loads(response.read())["detail"]
    assert sent < 20 * 1024 * 1024, sent  # it stopped reading near the limit, not after the whole body


def test_the_page_asks_for_the_token_once(exposed, images):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    _, url, _ = exposed
    browser = _browser()
    try:
        browser.get(url + "/")
        prompt = WebDriverWait(browser, 30).until(expected_conditions.alert_is_present())
        assert "token" in prompt.text
        prompt.send_keys(TOKEN)
        prompt.accept()
        WebDriverWait(browser, 30).until(lambda b: "cifar" in b.find_element(By.ID, "card").text)
        browser.find_element(By.ID, "files").send_keys(str(images[0]))
        WebDriverWait(browser, 120).until(lambda b: b.find_elements(
            By.CSS_SELECTOR, '.result .framework[data-framework="torch"] .row[data-rank="1"]'))
        browser.refresh()  # the same tab: the token is remembered, no second prompt
        WebDriverWait(browser, 30).until(lambda b: "cifar" in b.find_element(By.ID, "card").text)
    finally:
        browser.quit()


def test_cors_is_off_unless_an_origin_is_given(server, exposed):
    def allowed(url: str, origin: str, headers: dict | None = None) -> tuple[int, str | None]:
        status, answer_headers, _ = _get(url + "/api/info", {"Origin": origin, **(headers or {})})
        return status, {k.lower(): v for k, v in answer_headers.items()}.get("access-control-allow-origin")

    assert allowed(server[0], ALLOWED_ORIGIN) == (200, None)  # no --cors: no browser on another origin may read it
    _, url, _ = exposed
    assert allowed(url, ALLOWED_ORIGIN, AUTH) == (200, ALLOWED_ORIGIN)
    assert allowed(url, ALLOWED_ORIGIN) == (401, ALLOWED_ORIGIN)  # a page elsewhere can tell "token needed" from CORS
    assert allowed(url, "http://elsewhere.example", AUTH) == (200, None)
