"""evaluate.py classify (the robust-loss study's Fig. 1): top-1 errors recomputed here from the same restorations."""

import functools
import io
import json
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evaluate  # noqa: E402
from asym import SRModel  # noqa: E402
from asym.classify import imagenet_crop, load_classification_set  # noqa: E402
from asym.data import BUILTIN_IMAGES, load_sr_images  # noqa: E402
from asym.errors import UserError  # noqa: E402

CLASSES = {"cat": ("chelsea", "astronaut"), "drink": ("coffee", "rocket"), "ground": ("brick", "gravel")}
SIZE, SEED = 64, 3  # 64x64 HR crops (resized to 73 first), 16x16 LR


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (conftest)


def run(argv):
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        records = evaluate.main(evaluate.parse_args(argv))
    return records, buffer.getvalue()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """A 3-class ImageFolder of builtin photographs, as ImageNet's validation layout (DIR/<class>/<name>.JPEG)."""
    root = tmp_path_factory.mktemp("imagenet") / "val"
    photos = load_sr_images("builtin")
    for cls, names in CLASSES.items():
        (root / cls).mkdir(parents=True)
        for name in names:
            Image.fromarray(photos[BUILTIN_IMAGES.index(name)]).save(root / cls / f"{name}.JPEG", quality=95)
    return root


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("sr") / "ep-robust"
    torch.manual_seed(0)
    SRModel("tiny", 4, card={"--loss": "mse+feat", "--feat_weights": "runs/robust-vgg19.safetensors"}).save_pretrained(
        path
    )
    return str(path)


@functools.cache
def restorations(folder: Path, files: tuple[str, ...], sr_model: str) -> dict[str, list[torch.Tensor]]:
    """Each image's HR crop (torchvision's own ImageNet preset), its bicubic x4 LR and the three restorations, made
    here without asym's pipeline (quantised to 16 bits as the output cache stores them)."""
    preset = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.transforms(
        crop_size=SIZE, resize_size=round(SIZE * 256 / 224)
    )
    mean, std = torch.tensor(preset.mean)[:, None, None], torch.tensor(preset.std)[:, None, None]
    model = SRModel.from_pretrained(sr_model).eval()
    out = {"sr": [], "bicubic": [], "hr": []}
    for file in files:
        image = torch.from_numpy(np.array(Image.open(folder / file).convert("RGB"))).permute(2, 0, 1).float() / 255
        hr = (preset(image) * std + mean).clamp(0, 1)[None]  # undo the preset's normalisation
        lr = F.interpolate(hr, size=(SIZE // 4, SIZE // 4), mode="bicubic", antialias=True).clamp(0, 1)
        with torch.no_grad():
            sr = model(lr)
        bicubic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False)
        out["sr"].append((sr.clamp(0, 1) * 65535).round() / 65535)
        out["bicubic"].append((bicubic.clamp(0, 1) * 65535).round() / 65535)
        out["hr"].append(hr)
    return out


@functools.cache
def random_classifier(name: str) -> torch.nn.Module:
    """A random-weight torchvision model, drawn as ``--classifier_weights random --seed SEED`` says."""
    torch.manual_seed(SEED)
    return torchvision.models.get_model(name, weights=None).eval()


def predictions(name: str, images: list[torch.Tensor]) -> list[int]:
    """Top-1 classes of ``random_classifier(name)`` on ImageNet-normalised inputs."""
    model = random_classifier(name)
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        return [int(model((x - mean) / std).argmax(1)) for x in images]


def classify_argv(dataset, sr_model, out, classifiers="alexnet,squeezenet1_0"):
    return ["classify", "--classifiers", classifiers, "--classifier_weights", "random", "--seed", str(SEED),
            "--models", f"{sr_model},bicubic,hr", "--dataset", str(dataset), "--image_size", str(SIZE),
            "--output_dir", str(out), "--device", "cpu"]  # fmt: skip


def test_crop_is_torchvisions_imagenet_evaluation_transform(image_folder):
    image = torch.from_numpy(np.array(Image.open(image_folder / "cat" / "chelsea.JPEG"))).permute(2, 0, 1) / 255
    preset = torchvision.models.VGG19_Weights.IMAGENET1K_V1.transforms()  # resize 256, crop 224, normalise
    expected = preset(image) * torch.tensor(preset.std)[:, None, None] + torch.tensor(preset.mean)[:, None, None]
    assert torch.allclose(imagenet_crop(image, 224), expected.clamp(0, 1), atol=1e-5)
    dataset = load_classification_set(str(image_folder), 224, 4)
    item = dataset[dataset.names.index("cat/chelsea.JPEG")]
    assert item["hr"].shape == (3, 224, 224) and item["lr"].shape == (3, 56, 56)
    assert dataset.labels == [0, 0, 1, 1, 2, 2] and dataset.class_names == list(CLASSES)


def test_top1_error_matches_an_independent_classification(image_folder, sr_model, tmp_path):
    records, printed = run(classify_argv(image_folder, sr_model, tmp_path))
    files = tuple(f"{c}/{n}.JPEG" for c, names in CLASSES.items() for n in sorted(names))
    images = restorations(image_folder, files, sr_model)
    labels = [list(CLASSES).index(f.split("/")[0]) for f in files]
    for classifier in ("alexnet", "squeezenet1_0"):
        for key, model in (("sr", "ep-robust"), ("bicubic", "bicubic"), ("hr", "hr")):
            wrong = sum(p != y for p, y in zip(predictions(classifier, images[key]), labels))
            record = next(r for r in records if r["classifier"] == classifier and r["model"] == model)
            assert (record["errors"], record["images"]) == (wrong, 6)
            assert record["top1_error"] == pytest.approx(wrong / 6)
    assert next(r for r in records if r["model"] == "ep-robust")["feat_weights"] == "runs/robust-vgg19.safetensors"
    assert "alexnet: labels as class indices" in printed
    with Image.open(tmp_path / "classify.png") as png:
        assert png.format == "PNG" and png.size[0] > 300
    saved = json.loads((tmp_path / "classify.json").read_text())
    assert [(r["classifier"], r["model"], r["errors"]) for r in saved] == [
        (r["classifier"], r["model"], r["errors"]) for r in records
    ]
    assert "| ep-robust |" in (tmp_path / "classify.md").read_text()


def test_labels_csv_gives_errors_between_none_and_all(image_folder, sr_model, tmp_path):
    """Labels chosen from the independent predictions: HR images alexnet gets right, restorations it may not."""
    files = tuple(f"{c}/{n}.JPEG" for c, names in CLASSES.items() for n in sorted(names))
    images = restorations(image_folder, files, sr_model)
    hr_classes = predictions("alexnet", images["hr"])
    labels = [p if i % 2 == 0 else (p + 1) % 1000 for i, p in enumerate(hr_classes)]  # every other one right
    folder = tmp_path / "csv"
    folder.mkdir()
    rows = ["image,label"] + [f"{os.path.relpath(image_folder / f, folder)},{y}" for f, y in zip(files, labels)]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    records, _ = run(classify_argv(folder, sr_model, tmp_path / "out", classifiers="alexnet") + ["--max_images", "5"])
    keep = [0, 1, 2, 4, 5]  # --max_images 5: evenly spaced over 6
    for key, model in (("sr", "ep-robust"), ("bicubic", "bicubic"), ("hr", "hr")):
        predicted = predictions("alexnet", [images[key][i] for i in keep])
        wrong = sum(p != labels[i] for p, i in zip(predicted, keep))
        record = next(r for r in records if r["model"] == model)
        assert (record["errors"], record["images"]) == (wrong, 5)
    assert next(r for r in records if r["model"] == "hr")["errors"] == 2  # images 1 and 5 are labelled wrong


def test_bad_datasets_and_classifiers_are_user_errors(image_folder, sr_model, tmp_path):
    def fails(dataset, match, **changes):
        argv = classify_argv(dataset, sr_model, tmp_path / "out")
        for flag, value in changes.items():
            argv[argv.index(f"--{flag}") + 1] = value
        with pytest.raises(UserError, match=match):
            run(argv)

    fails(tmp_path / "missing", "does not exist")
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (80, 80)).save(flat / "a.png")
    fails(flat, "no class sub-folders")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    fails(tmp_path / "empty", "no images in its 1 class sub-folders")
    bad_csv = tmp_path / "bad_csv"
    bad_csv.mkdir()
    (bad_csv / "labels.csv").write_text("image,label\na.png,cat\n")
    fails(bad_csv, "line 2: expected an image path and a class index")
    fails(image_folder, "multiple of --scale", image_size="66")
    fails(image_folder, "unknown classifier 'vgg91'", classifiers="vgg91")
    fails(image_folder, "--classifier_weights 'IMAGENET9K'", classifier_weights="IMAGENET9K")
    assert not (tmp_path / "out" / "classify.json").exists()


def test_a_train_robust_classifier_maps_labels_by_class_name(image_folder, sr_model, tmp_path):
    robust = pytest.importorskip("asym.robust")
    torch.manual_seed(0)
    names = ["ground", "cat", "drink"]  # another order than the folders': labels must be mapped by name
    classifier = robust.Classifier("timm:mobilenetv3_small_050", num_classes=3, class_names=names)
    classifier.save_pretrained(tmp_path / "robust-mobilenet")
    records, printed = run(
        classify_argv(image_folder, sr_model, tmp_path / "out", classifiers=str(tmp_path / "robust-mobilenet"))
    )
    assert "robust-mobilenet: by class name" in printed
    model = robust.Classifier.from_pretrained(tmp_path / "robust-mobilenet").eval()
    files = tuple(f"{c}/{n}.JPEG" for c, names_ in CLASSES.items() for n in sorted(names_))
    images = restorations(image_folder, files, sr_model)
    targets = [names.index(f.split("/")[0]) for f in files]
    for key, name in (("sr", "ep-robust"), ("bicubic", "bicubic"), ("hr", "hr")):
        with torch.no_grad():
            predicted = [int(model(x).argmax(1)) for x in images[key]]
        wrong = sum(p != t for p, t in zip(predicted, targets))
        assert next(r for r in records if r["model"] == name)["errors"] == wrong


def test_a_saved_datasets_table_reads_as_the_image_folder(image_folder, tmp_path):
    """The Hub / datasets path (offline here: a save_to_disk folder) gives the same images, labels and classes."""
    import datasets

    files = [f"{c}/{n}.JPEG" for c, names in CLASSES.items() for n in sorted(names)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(CLASSES))})
    table = {
        "image": [str(image_folder / f) for f in files],
        "label": [list(CLASSES).index(f[: f.index("/")]) for f in files],
    }
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "saved"))
    folder, saved = (load_classification_set(str(p), SIZE, 4) for p in (image_folder, tmp_path / "saved"))
    assert saved.labels == folder.labels and saved.class_names == folder.class_names == list(CLASSES)
    for i in range(len(files)):
        assert torch.equal(saved[i]["hr"], folder[i]["hr"]) and torch.equal(saved[i]["lr"], folder[i]["lr"])
    bad = datasets.Dataset.from_dict({"image": table["image"], "label": [-1] * 6}, features=datasets.Features(
        {"image": datasets.Image(), "label": datasets.Value("int64")}))  # fmt: skip
    bad.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(UserError, match="must hold class indices >= 0"):
        load_classification_set(str(tmp_path / "bad"), SIZE, 4)
