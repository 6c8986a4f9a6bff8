"""The Keras model on KERAS_BACKEND=torch matches torchvision too (a fresh process: the backend
is fixed when keras is first imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = r"""
import json, sys, numpy as np, torch, torchvision, keras
from alexnet_lab.frameworks import keras as kb
from alexnet_lab.frameworks.torch.convert import state_dict_to_canonical
from alexnet_lab.frameworks.torch import build_model
assert keras.backend.backend() == "torch", keras.backend.backend()
ref_model = torchvision.models.alexnet()
ref_model.load_state_dict(torch.load(sys.argv[1], weights_only=True)); ref_model.eval()
canonical = state_dict_to_canonical(ref_model.state_dict(), build_model("owt"))
x = np.random.default_rng(7).standard_normal((8, 224, 224, 3), dtype=np.float32)
with torch.no_grad():
    ref = ref_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
ours = kb.predict_logits(kb.from_canonical(kb.build_model("owt"), canonical), x)
top = lambda a: np.argsort(-a, axis=1, kind="stable")[:, :5].tolist()
print(json.dumps({"max_diff": float(np.abs(ours - ref).max()), "scale": float(np.abs(ref).max()),
                  "top5_equal": top(ours) == top(ref)}))
"""


def test_keras_on_torch_backend_matches_torchvision(torchvision_pth):
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(torchvision_pth)], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["max_diff"] <= 1e-4 * report["scale"], report
    assert report["top5_equal"], report
