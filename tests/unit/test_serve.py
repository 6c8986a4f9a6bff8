"""`alexnet serve`: a real server process on a free port, its JSON API, its limits, and the page
driven by a real headless browser (Debian's chromium + chromedriver, installed by `make test`)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
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
    meta = ModelMeta("cifar", tuple(f"class {i}" for i in range(10)), spec, source="serve-test")
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


@pytest.fixture(scope="module")
def server(weights, tmp_path_factory):
    """`alexnet serve` in a process of its own; yields its base URL, then stops it with Ctrl-C."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "ALEXNET_LAB_MAX_IMAGE_PIXELS": str(PIXEL_BUDGET)}
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "alexnet_lab", "serve", str(weights), "--port", str(port),
                                    "--max-upload-mb", str(MAX_UPLOAD_MB)], stdout=out, stderr=subprocess.STDOUT,
                                   env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        if process.poll() is not None:
            pytest.fail(f"the server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/api/info", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"the server did not start: {log.read_text()[-2000:]}")
    yield url, log
    process.send_signal(2)  # Ctrl-C
    assert process.wait(timeout=60) == 0, log.read_text()[-2000:]


def _post(url: str, files: list[tuple[str, bytes]]) -> tuple[int, object]:
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for name, data in files:
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"{name}\"\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n".encode())
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(url, data=body.getvalue(), method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def cli_predictions(weights, images) -> dict[str, list[dict]]:
    result = run_cli("predict", *map(str, images), "--weights", str(weights), "--json", "--precision", "fp32")
    assert result.returncode == 0, result.stderr
    return {Path(entry["image"]).name: entry["predictions"] for entry in json.loads(result.stdout)}


def test_info_is_the_model_card(server, weights):
    url, _ = server
    card = json.loads(urllib.request.urlopen(url + "/api/info").read())
    assert card["variant"] == "cifar" and card["num_classes"] == 10 and card["frameworks"] == ["torch", "keras"]
    assert card["categories"][3] == "class 3" and card["preprocessing"]["crop"] == 32


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
    import base64

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
    assert torch_headers["x-explained-label"] == keras_headers["x-explained-label"] == "class 3"
    assert np.abs(torch_png.astype(int) - keras_png.astype(int)).max() <= 2  # the same map, drawn the same
    status, document = _post(url + "/api/explain?method=nope", [(images[1].name, images[1].read_bytes())])
    assert status == 422 and "method" in document["detail"]


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


def test_the_page_in_a_real_browser(server, images, cli_predictions, tmp_path):
    if os.environ.get("ALEXNET_LAB_NO_BROWSER"):
        pytest.skip("ALEXNET_LAB_NO_BROWSER is set")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver_path = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
    assert chromium.exists() and driver_path.exists(), "install Debian's chromium and chromium-driver (make test does)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    url, _ = server
    browser = webdriver.Chrome(service=Service(str(driver_path)), options=options)
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
        screenshot = tmp_path / "serve-page.png"
        browser.save_screenshot(str(screenshot))  # kept as the test's artifact (pytest keeps failed tests' folders)
        assert screenshot.stat().st_size > 10_000
        if os.environ.get("ALEXNET_LAB_SCREENSHOT"):  # how docs/images/serve-page.png was made
            Path(os.environ["ALEXNET_LAB_SCREENSHOT"]).write_bytes(screenshot.read_bytes())
    finally:
        browser.quit()
