"""#31: ImageNet validation in its three real layouts, labelled by WordNet ID, and the reproduce verdict.

The model is a small 'cifar' AlexNet with four outputs whose WordNet IDs are deliberately not in
sorted order; fc8 is scaled and centred so its answers spread over the four classes with clear
margins. Each image's "true" class is written from the model's own answer, so the expected score
is known exactly: 100%, or 10/12 after swapping the labels of two images. Folder order (sorted
WNIDs -> outputs 0..3) would give another score, so a pass proves labels go by WordNet ID.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli, smooth_image

WNIDS = ("n02123045", "n01440764", "n15075141", "n01443537")  # outputs 0..3; sorted order is 1, 3, 0, 2
NAMES = ("tabby", "tench", "toilet tissue", "goldfish")
PER_CLASS = 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(weights file, bundle, {wnid: [JPEG paths the model answers with that wnid]})."""
    import torch
    from PIL import Image

    from alexnet_lab.core.bundle import ModelMeta, WeightBundle
    from alexnet_lab.core.preprocessing import CIFAR_32 as CIFAR_PREPROCESS
    from alexnet_lab.data.datasets import decode_all
    from alexnet_lab.data.index import DatasetIndex, Sample
    from alexnet_lab.evaluate.dataset_eval import logits_for_store
    from alexnet_lab.frameworks import get_backend
    from alexnet_lab.weights.files import save_weights

    root = tmp_path_factory.mktemp("imagenet-val")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(40):
        paths.append(str(root / f"pool_{i:02d}.JPEG"))
        Image.fromarray(smooth_image(rng, 40, 48)).save(paths[-1], quality=90)
    images = decode_all(DatasetIndex([Sample(p, 0) for p in paths], ("any",)), CIFAR_PREPROCESS)[0]
    torch.manual_seed(0)
    tensors = dict(get_backend("torch").to_canonical(get_backend("torch").build_model("cifar", 4)))
    meta = ModelMeta("cifar", NAMES, CIFAR_PREPROCESS, source="tests: tiny", class_ids=WNIDS)
    tensors["fc8.weight"] = tensors["fc8.weight"] * 1000  # logits a few units apart ...
    tensors["fc8.bias"] = np.zeros(4, np.float32)
    logits = logits_for_store(WeightBundle(tensors, meta), images, "torch", device="cpu")
    tensors["fc8.bias"] = -logits.mean(axis=0).astype(np.float32)  # ... and every class answered about as often
    bundle = WeightBundle(tensors, meta)
    logits = logits_for_store(bundle, images, "torch", device="cpu")
    top2 = np.sort(logits, axis=1)[:, -2:]
    answers: dict[str, list[str]] = {wnid: [] for wnid in WNIDS}
    for path, row, (second, first) in zip(paths, logits, top2):
        if first - second > 0.05:  # clear answers only, so another batch size cannot flip them
            answers[WNIDS[int(row.argmax())]].append(path)
    assert all(len(found) >= PER_CLASS for found in answers.values()), {k: len(v) for k, v in answers.items()}
    weights = save_weights(bundle, root / "tiny.safetensors")
    return weights, bundle, {wnid: found[:PER_CLASS] for wnid, found in answers.items()}


def labelled(answers, swap: bool = False) -> list[tuple[str, str]]:
    """(image, true wnid) pairs, classes interleaved; swap: two images of two classes trade labels."""
    pairs = [(answers[wnid][k], wnid) for k in range(PER_CLASS) for wnid in WNIDS]
    if swap:
        (a, wa), (b, wb) = pairs[0], pairs[1]
        pairs[0], pairs[1] = (a, wb), (b, wa)
    return pairs


def folder_order_score(pairs, answers) -> float:
    """What mapping sorted folder names to outputs 0..3 (ImageFolder's labels) would score."""
    model_answer = {path: wnid for wnid, found in answers.items() for path in found}
    output_of_folder = {wnid: WNIDS[position] for position, wnid in enumerate(sorted(WNIDS))}
    return float(np.mean([output_of_folder[wnid] == model_answer[path] for path, wnid in pairs]))


def write_folders(root: Path, pairs) -> Path:
    for n, (path, wnid) in enumerate(pairs, start=1):
        (root / wnid).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / wnid / f"ILSVRC2012_val_{n:08d}.JPEG")
    return root


def write_flat(folder: Path, pairs) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = {}
    for n, (path, wnid) in enumerate(pairs, start=1):
        names[f"ILSVRC2012_val_{n:08d}"] = wnid
        shutil.copy(path, folder / f"ILSVRC2012_val_{n:08d}.JPEG")
    return names


def write_devkit(root: Path, pairs) -> Path:
    """Flat images in root/val and the devkit beside them: meta.mat's synsets struct (ILSVRC2012_IDs
    in an order of their own, plus a non-leaf synset as the real file has) and the ground truth."""
    from scipy.io import savemat

    names = write_flat(root / "val", pairs)
    ids = {"n15075141": 1, "n01443537": 2, "n02123045": 3, "n01440764": 4}  # neither sorted nor output order
    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children", "wordnet_height",
              "num_train_images"]
    synsets = np.zeros((len(ids) + 1, 1), dtype=[(f, "O") for f in fields])
    for row, (wnid, number) in enumerate([*ids.items(), ("n00001740", 5)]):
        leaf = number <= len(ids)
        synsets[row, 0] = (np.array([[number]], np.uint16), wnid, "words", "gloss",
                           np.array([[0 if leaf else 4]], np.uint8), np.array([[]] if leaf else [[1, 2, 3, 4]]),
                           np.array([[0 if leaf else 1]], np.uint8), np.array([[1300 if leaf else 0]], np.uint16))
    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    savemat(str(data / "meta.mat"), {"synsets": synsets})
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{ids[w]}\n" for w in names.values()))
    return root / "val"


def write_kaggle(root: Path, pairs, mapping=WNIDS) -> Path:
    """Kaggle's tree: ILSVRC/Data/CLS-LOC/val/*.JPEG, LOC_val_solution.csv (rows in another order)
    and LOC_synset_mapping.txt at the top."""
    names = write_flat(root / "ILSVRC" / "Data" / "CLS-LOC" / "val", pairs)
    rows = [f"{name},{wnid} 10 12 200 180 {wnid} 5 5 30 30" for name, wnid in reversed(names.items())]
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    lines = {wnid: name for wnid, name in zip(WNIDS, NAMES)}
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} {lines[w]}, a gloss\n" for w in mapping))
    return root


def evaluate_json(weights, data_dir, *extra):
    out = run_cli("evaluate", str(weights), "--data", "imagenet-val", "--data-dir", str(data_dir), "--device", "cpu",
                  "--json", *extra)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout), out.stderr


@pytest.fixture(scope="module")
def answers(tiny):
    return tiny[2]


def test_wnid_folders_are_labelled_by_wordnet_id_not_folder_order(tiny, answers, tmp_path):
    pairs = labelled(answers, swap=True)
    data, stderr = evaluate_json(tiny[0], write_folders(tmp_path / "val", pairs))
    assert data["layout"] == "wnid-folders" and "layout wnid-folders" in stderr
    assert data["num_images"] == 12 and data["top1"] == pytest.approx(10 / 12)
    assert folder_order_score(pairs, answers) != pytest.approx(10 / 12)  # the mapping a folder walk would give
    assert set(data["per_class"]) == set(NAMES) and data["top5"] == 1.0  # four classes: top-5 is all of them
    assert data["reproduce"]["verdict"] is None and "no published figures" in data["reproduce"]["note"]
    for key in ("top1", "top5", "loss", "num_images", "per_class", "confusion"):
        assert key in data


def test_devkit_layout_maps_ilsvrc_ids_through_meta_mat(tiny, answers, tmp_path):
    pairs = labelled(answers)
    data, stderr = evaluate_json(tiny[0], write_devkit(tmp_path, pairs))
    assert data["layout"] == "devkit" and "layout devkit" in stderr
    assert (data["num_images"], data["top1"]) == (12, 1.0)
    limited, _ = evaluate_json(tiny[0], tmp_path, "--limit-per-class", "1")  # the folder above val/ works too
    assert (limited["num_images"], limited["top1"]) == (4, 1.0)
    assert limited["per_class_count"] == dict.fromkeys(NAMES, 1)


def test_kaggle_layout_from_its_top_folder(tiny, answers, tmp_path):
    pairs = labelled(answers, swap=True)
    data, stderr = evaluate_json(tiny[0], write_kaggle(tmp_path, pairs))
    assert data["layout"] == "kaggle" and "LOC_val_solution.csv" in data["labels_from"]
    assert data["top1"] == pytest.approx(10 / 12)


def refusal(weights, data_dir) -> str:
    out = run_cli("evaluate", str(weights), "--data", "imagenet-val", "--data-dir", str(data_dir), "--json")
    assert out.returncode != 0 and out.stdout == ""
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    return out.stderr


def test_broken_sets_are_refused_in_one_line(tiny, answers, tmp_path):
    pairs = labelled(answers)
    val = write_devkit(tmp_path / "devkit", pairs)
    (val / "ILSVRC2012_val_00000005.JPEG").unlink()
    assert "labels 12 images but the folder holds 11" in refusal(tiny[0], val)
    kaggle = write_kaggle(tmp_path / "kaggle", pairs, mapping=sorted(WNIDS))
    assert "another order than the weights'" in refusal(tiny[0], kaggle)
    folders = write_folders(tmp_path / "folders", pairs)
    shutil.copytree(folders / WNIDS[0], folders / "n09999999")
    assert "do not know: n09999999" in refusal(tiny[0], folders)
    shutil.rmtree(folders / "n09999999")
    shutil.rmtree(folders / WNIDS[2])
    assert "a partial set" in refusal(tiny[0], folders)


def test_weights_without_wordnet_ids_and_a_missing_data_dir(tiny, tmp_path):
    from alexnet_lab.weights.files import save_weights

    bare = save_weights(tiny[1].with_meta(class_ids=()), tmp_path / "bare.safetensors")
    assert "carry no WordNet IDs" in refusal(bare, tmp_path)
    out = run_cli("evaluate", str(tiny[0]), "--data", "imagenet-val")
    assert out.returncode != 0 and "--data-dir is missing" in out.stderr and "Traceback" not in out.stderr


def test_class_ids_survive_every_format(tiny, tmp_path):
    from alexnet_lab.weights.files import load_weights, save_weights

    for name in ("w.safetensors", "w.pth", "w.weights.h5"):
        assert load_weights(save_weights(tiny[1], tmp_path / name)).meta.class_ids == WNIDS


def test_predictions_carry_the_wnid_where_the_weights_know_it(tiny, answers):
    from alexnet_lab.data.images import read_image_rgb
    from alexnet_lab.inference.predict import predict_images

    image = read_image_rgb(answers[WNIDS[2]][0])
    best = predict_images(tiny[1], [image], k=2, device="cpu")[0][0].to_dict()
    assert (best["index"], best["label"], best["wnid"]) == (2, "toilet tissue", "n15075141")
    assert list(best) == ["rank", "index", "label", "wnid", "probability"]
    bare = predict_images(tiny[1].with_meta(class_ids=()), [image], k=1, device="cpu")[0][0].to_dict()
    assert "wnid" not in bare


def test_the_shipped_wnids_line_up_with_the_class_names():
    from alexnet_lab.core.bundle import imagenet_categories
    from alexnet_lab.core.wordnet import imagenet_class_ids
    from alexnet_lab.weights.registry import get_entry

    ids, names = imagenet_class_ids(), imagenet_categories()
    assert (len(ids), ids == tuple(sorted(ids))) == (1000, True)  # the standard sorted-synset order
    for index, wnid, name in ((0, "n01440764", "tench"), (281, "n02123045", "tabby"), (999, "n15075141", "toilet tissue")):
        assert (ids[index], names[index]) == (wnid, name)
    assert get_entry("torchvision").class_ids() == get_entry("bvlc").class_ids() == ids


def test_damaged_class_ids_are_refused():
    from alexnet_lab.core.bundle import ModelMeta
    from alexnet_lab.core.errors import WeightFormatError
    from alexnet_lab.core.preprocessing import CIFAR_32 as CIFAR_PREPROCESS

    data = ModelMeta("cifar", NAMES, CIFAR_PREPROCESS, class_ids=WNIDS).to_metadata()
    for bad in (list(WNIDS[:3]), ["tabby", *WNIDS[1:]], [WNIDS[0], *WNIDS[:3]]):
        with pytest.raises(WeightFormatError, match="class ID"):
            ModelMeta.from_metadata({**data, "class_ids": json.dumps(bad)})
    with pytest.raises(WeightFormatError, match="3 class IDs for 4 classes"):  # the one validator, in code too
        ModelMeta("cifar", NAMES, CIFAR_PREPROCESS, class_ids=WNIDS[:3])
    assert ModelMeta("cifar", NAMES, CIFAR_PREPROCESS, class_ids=list(WNIDS)).class_ids == WNIDS
    assert "class_ids" not in ModelMeta("cifar", NAMES, CIFAR_PREPROCESS).to_metadata()  # old files unchanged


def test_wilson_interval_known_values():
    from alexnet_lab.evaluate.reproduce import wilson_interval

    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)  # not empty at 0 successes
    assert wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    low, high = wilson_interval(28_261, 50_000)  # torchvision's 56.522% on the full set: about +-0.43 points
    assert low < 0.56522 < high and high - low == pytest.approx(0.00869, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


class _Measured:  # the EvalResult fields the verdict reads
    def __init__(self, top1: float, top5: float, n: int):
        self.top1, self.top5, self.num_images = top1, top5, n


def test_reproduce_verdict_against_the_published_figures():
    from alexnet_lab.core.bundle import ModelMeta, imagenet_categories
    from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET
    from alexnet_lab.evaluate.reproduce import NOT_REPRODUCED, REPRODUCED, reproduce_verdict

    owt = ModelMeta("owt", imagenet_categories(), TORCHVISION_IMAGENET, source="torchvision")
    good = reproduce_verdict(_Measured(0.5650, 0.7901, 50_000), owt, layout="devkit")
    assert good.verdict == REPRODUCED and good.published == {"top1": 0.56522, "top5": 0.79066} and not good.check
    bad = reproduce_verdict(_Measured(0.554, 0.785, 50_000), owt, layout="devkit", crops=10)  # the 55.4 complaint
    assert bad.verdict == NOT_REPRODUCED and bad.interval["top1"][1] < 0.56522
    assert any("--crops 10" in item for item in bad.check) and any("preprocessing" in item for item in bad.check)
    assert reproduce_verdict(_Measured(0.554, 0.785, 1_000), owt).verdict == REPRODUCED  # 1,000 images: +-3 points
    json.dumps(bad.to_json_dict())
    file_from_registry = ModelMeta("original", imagenet_categories(), BVLC_CAFFE, source="x.npy")
    assert reproduce_verdict(_Measured(0.54, 0.78, 50_000), file_from_registry, weights="bvlc").verdict == NOT_REPRODUCED
    tuned = ModelMeta("owt", NAMES + tuple(f"c{i}" for i in range(996)), TORCHVISION_IMAGENET, source="torchvision")
    none = reproduce_verdict(_Measured(0.9, 0.99, 100), tuned)
    assert none.verdict is None and "no published figures" in none.lines()[0]


def test_verify_runs_the_reproduce_check(tiny, answers, tmp_path, monkeypatch):
    from alexnet_lab.verify import FAIL, PASS, SKIP, VerifyOptions, run_verify
    from alexnet_lab.weights.registry import WeightEntry

    val = write_devkit(tmp_path, labelled(answers))
    options = VerifyOptions(images=f"imagenet-val:{val}", framework_parity=False)

    def reproduce_check():
        checks = run_verify(str(tiny[0]), options).checks
        names = [c.name for c in checks]
        assert names.count("reproduce") == 1 and "preprocessing" not in names
        return checks[names.index("reproduce")]

    assert reproduce_check().status == SKIP  # no published figures for the tiny model
    for published, status in ((100.0, PASS), (50.0, FAIL)):
        entry = WeightEntry(name="tiny", variant="cifar", url="", filename="tiny", source_format="torchvision-pth",
                            preprocess=tiny[1].meta.preprocess, categories=lambda: NAMES, class_ids=lambda: WNIDS,
                            metrics=(("acc@1", published), ("acc@5", 100.0)), metrics_note="made up")
        monkeypatch.setattr("alexnet_lab.evaluate.reproduce.published_entry", lambda meta, weights, e=entry: e)
        check = reproduce_check()
        assert check.status == status and check.figures["layout"] == "devkit", check.detail


def test_evaluation_decodes_in_chunks_with_the_same_result(tiny, answers, tmp_path, monkeypatch):
    from alexnet_lab.data import datasets
    from alexnet_lab.data.imagenet_val import read_imagenet_val
    from alexnet_lab.evaluate import dataset_eval as on_data

    index = read_imagenet_val(write_devkit(tmp_path, labelled(answers, swap=True)), WNIDS).index
    whole = on_data.evaluate_index(tiny[1], index, device="cpu")
    decode_all, decoded = datasets.decode_all, []
    monkeypatch.setattr(datasets, "decode_all", lambda part, *a, **k: decoded.append(len(part)) or decode_all(part, *a, **k))
    monkeypatch.setattr(on_data, "EVAL_CHUNK", 5)
    chunked = on_data.evaluate_index(tiny[1], index, device="cpu")  # batches of 5: float sums differ in the last bits
    assert (chunked.top1, chunked.top5, chunked.confusion) == (whole.top1, whole.top5, whole.confusion)
    assert chunked.loss == pytest.approx(whole.loss, rel=1e-5) and whole.top1 == pytest.approx(10 / 12)
    assert decoded == [5, 5, 2]
    monkeypatch.setattr(on_data, "EVAL_CHUNK", 4)
    for sample in index.samples[:4]:  # a whole chunk unreadable: skipped with a warning, the rest evaluated
        Path(sample.path).write_bytes(b"not a JPEG")
    assert on_data.evaluate_index(tiny[1], index, device="cpu").num_images == 8
