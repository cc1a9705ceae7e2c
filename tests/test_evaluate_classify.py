"""evaluate.py classify (the robust-loss study's Fig. 1): top-1 errors recomputed here from the same restorations."""

import functools
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

from conftest import perturbed_tiny, run_evaluate  # noqa: E402

from asym import SRModel  # noqa: E402
from asym.core.errors import UserError  # noqa: E402
from asym.core.images import BUILTIN_IMAGES  # noqa: E402
from asym.robust.data import EvalCrop  # noqa: E402
from asym.robust.image_classifiers import load_classifier, target_indices  # noqa: E402
from asym.robust.labelled_images import load_classification_set, load_labelled_set  # noqa: E402
from asym.sr.data import load_sr_images  # noqa: E402

CLASSES = {"cat": ("chelsea", "astronaut"), "drink": ("coffee", "rocket"), "ground": ("brick", "gravel")}
SIZE, SEED = 64, 3  # 64x64 HR crops (resized to 73 first), 16x16 LR


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (conftest)


def run(argv):
    return run_evaluate(argv, capture=True)


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
    """A generator that is not bicubic (an untrained tiny is), perturbed enough that the near-constant random
    classifiers below label some of its restorations otherwise than bicubic's: so a swapped column shows."""
    path = tmp_path_factory.mktemp("sr") / "ep-robust"
    card = {"--loss": "mse+feat", "--feat_weights": "runs/robust-vgg19.safetensors"}
    perturbed_tiny(0, card=card, strength=0.05).save_pretrained(path)
    return str(path)


FILES = tuple(f"{c}/{n}.JPEG" for c, names in CLASSES.items() for n in sorted(names))
COLUMNS = (("sr", "ep-robust"), ("bicubic", "bicubic"), ("hr", "hr"))  # restorations() key, record model


def preset(weights: str, size: int = SIZE):
    """torchvision's own preset of ``weights`` (e.g. ``"ResNet50_Weights.IMAGENET1K_V2"``) for a ``size`` crop, its
    resize kept in the preset's ratio to its crop."""
    enum, member = weights.split(".")
    full = getattr(torchvision.models, enum)[member].transforms()
    resize = round(size * full.resize_size[0] / full.crop_size[0])
    return getattr(torchvision.models, enum)[member].transforms(crop_size=size, resize_size=resize)


@functools.cache
def restorations(folder: Path, files: tuple[str, ...], sr_model: str,
                 weights: str = "AlexNet_Weights.IMAGENET1K_V1") -> dict[str, list[torch.Tensor]]:  # fmt: skip
    """Each image's HR crop (torchvision's own preset of ``weights``), its bicubic x4 LR and the three restorations,
    made here without asym's pipeline (quantised to 16 bits as the output cache stores them)."""
    cut = preset(weights)
    mean, std = torch.tensor(cut.mean)[:, None, None], torch.tensor(cut.std)[:, None, None]
    model = SRModel.from_pretrained(sr_model).eval()
    out = {"sr": [], "bicubic": [], "hr": []}
    for file in files:
        image = torch.from_numpy(np.array(Image.open(folder / file).convert("RGB"))).permute(2, 0, 1).float() / 255
        hr = (cut(image) * std + mean).clamp(0, 1)[None]  # undo the preset's normalisation
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


def classify_argv(dataset, sr_model, out, classifiers="alexnet,resnet50"):
    return ["classify", "--classifiers", classifiers, "--classifier_weights", "random", "--seed", str(SEED),
            "--models", f"{sr_model},bicubic,hr", "--dataset", str(dataset), "--image_size", str(SIZE),
            "--output_dir", str(out), "--device", "cpu"]  # fmt: skip


@pytest.mark.parametrize("weights", ["VGG19_Weights.IMAGENET1K_V1", "ResNet50_Weights.IMAGENET1K_V2",
                                     "ViT_B_16_Weights.IMAGENET1K_SWAG_LINEAR_V1"])  # fmt: skip
def test_crops_are_torchvisions_own_presets(image_folder, weights, monkeypatch):
    """256/224 bilinear, 232/224 bilinear (the default ResNet-50 weights), 224/224 bicubic: each classifier's cut is
    its weights' preset, at full size and scaled by --image_size."""
    image = torch.from_numpy(np.array(Image.open(image_folder / "cat" / "chelsea.JPEG"))).permute(2, 0, 1) / 255
    enum, member = weights.split(".")
    full = getattr(torchvision.models, enum)[member].transforms()
    mean, std = torch.tensor(full.mean)[:, None, None], torch.tensor(full.std)[:, None, None]
    for cut, size in ((full, 224), (preset(weights), SIZE)):
        crop = EvalCrop.from_preset(full) if size == 224 else EvalCrop.from_preset(full).scaled(SIZE)
        torch.testing.assert_close(crop(image), (cut(image) * std + mean).clamp(0, 1), atol=1e-5, rtol=0)
    if enum != "ResNet50_Weights":
        return
    # load_classifier gives a model its weights' cut (the weights themselves replaced by random ones: offline)
    real = torchvision.models.get_model
    monkeypatch.setattr(torchvision.models, "get_model", lambda name, weights=None: real(name, weights=None))
    v1 = load_classifier("resnet50", "IMAGENET1K_V1", image_size=SIZE)
    assert v1.crop == EvalCrop(SIZE, 73) and "IMAGENET1K_V1 preset" in v1.crop_source
    assert v1.class_names == list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    # --classifier_weights pretrained: the default weights, IMAGENET1K_V2, whose preset resizes to 232; random
    # weights are cut as the default weights are
    assert load_classifier("resnet50", "pretrained").crop == EvalCrop(224, 232) == EvalCrop.from_preset(full)
    assert load_classifier("resnet50", "random", image_size=SIZE).crop == EvalCrop.from_preset(preset(weights))


def test_top1_error_matches_an_independent_classification(image_folder, sr_model, tmp_path):
    """alexnet (256/224) and resnet50 (232/224) on their own crops: two passes of the SR models, each classifier's
    records recomputed here on its crop."""
    records, printed = run(classify_argv(image_folder, sr_model, tmp_path))
    labels = [list(CLASSES).index(f.split("/")[0]) for f in FILES]
    for classifier, weights in (("alexnet", "AlexNet_Weights.IMAGENET1K_V1"),
                                ("resnet50", "ResNet50_Weights.IMAGENET1K_V2")):  # fmt: skip
        images = restorations(image_folder, FILES, sr_model, weights)
        for key, model in COLUMNS:
            wrong = sum(p != y for p, y in zip(predictions(classifier, images[key]), labels))
            record = next(r for r in records if r["classifier"] == classifier and r["model"] == model)
            assert (record["errors"], record["images"]) == (wrong, 6)
            assert record["top1_error"] == pytest.approx(wrong / 6)
            assert record["label_mapping"].startswith("labels as class indices (")
    crops = {r["classifier"]: (r["dataset"], r["crop"]) for r in records}
    assert crops == {"alexnet": ("val-64px-x4", "resize 73 (bilinear), centre 64"),
                     "resnet50": ("val-64px-resize66-x4", "resize 66 (bilinear), centre 64")}  # fmt: skip
    assert next(r for r in records if r["model"] == "ep-robust")["feat_weights"] == "runs/robust-vgg19.safetensors"
    assert "alexnet: val-64px-x4, HR crop resize 73 (bilinear), centre 64 (the AlexNet_Weights.IMAGENET1K_V1" in printed
    assert "preset, random weights cut as the default ones); labels as class indices (alexnet names no " in printed
    with Image.open(tmp_path / "classify.png") as png:
        assert png.format == "PNG" and png.size[0] > 300
    saved = json.loads((tmp_path / "classify.json").read_text())
    assert [(r["classifier"], r["model"], r["errors"], r["crop"]) for r in saved] == [
        (r["classifier"], r["model"], r["errors"], r["crop"]) for r in records
    ]
    markdown = (tmp_path / "classify.md").read_text()
    assert "| ep-robust |" in markdown and "resnet50: HR crop resize 66 (bilinear), centre 64; labels as" in markdown


def test_labels_csv_gives_errors_between_none_and_all(image_folder, sr_model, tmp_path):
    """Labels chosen from the independent predictions: HR images alexnet gets right, restorations it may not. The
    three columns get three different error counts, so a swapped column or record fails."""
    images = restorations(image_folder, FILES, sr_model)
    hr_classes = predictions("alexnet", images["hr"])
    labels = [p if i % 2 == 0 else (p + 1) % 1000 for i, p in enumerate(hr_classes)]  # every other one right
    folder = tmp_path / "csv"
    folder.mkdir()
    rows = ["image,label"] + [f"{os.path.relpath(image_folder / f, folder)},{y}" for f, y in zip(FILES, labels)]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    argv = classify_argv(folder, sr_model, tmp_path / "out", classifiers="alexnet,squeezenet1_0")
    records, printed = run(argv + ["--max_images", "5"])
    assert "default ones); labels as class indices (the dataset gives class indices)\n" in printed
    keep = [0, 1, 2, 4, 5]  # --max_images 5: evenly spaced over 6
    counts = {}
    for classifier in ("alexnet", "squeezenet1_0"):
        for key, model in COLUMNS:
            predicted = predictions(classifier, [images[key][i] for i in keep])
            counts[classifier, model] = sum(p != labels[i] for p, i in zip(predicted, keep))
    assert counts["alexnet", "hr"] == 2  # images 1 and 5 are labelled wrong
    assert len({counts["alexnet", m] for _, m in COLUMNS}) == 3  # sr, bicubic and hr apart: a swap shows
    assert [(r["classifier"], r["model"], r["errors"], r["images"]) for r in records] == [
        (c, m, n, 5) for (c, m), n in counts.items()
    ]


def test_bad_datasets_and_classifiers_are_user_errors(image_folder, sr_model, tmp_path):
    out = tmp_path / "out"

    def fails(dataset, match, **changes):
        argv = classify_argv(dataset, sr_model, out, classifiers="alexnet")
        for flag, value in changes.items():
            argv[argv.index(f"--{flag}") + 1] = value
        with pytest.raises(UserError, match=match):
            run(argv)
        assert not out.exists()  # nothing written, no SR output cached

    fails(tmp_path / "missing", "does not exist")
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (80, 80)).save(flat / "a.png")
    fails(flat, "has no class folders: expected .*labels.csv")
    # a class folder without images: an error naming it, as torchvision's ImageFolder raises
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    fails(tmp_path / "empty", r"1 of its 1 class folders hold no images .*: cls; add images or remove")
    partly = tmp_path / "partly"
    shutil.copytree(image_folder, partly)
    (partly / "zebra").mkdir()
    (partly / "zebra" / "notes.txt").write_text("not an image")
    fails(partly, r"1 of its 4 class folders hold no images .*: zebra;")
    # a truncated image (the last one read): refused before the first image is restored
    broken = tmp_path / "broken"
    shutil.copytree(image_folder, broken)
    data = (broken / "ground" / "gravel.JPEG").read_bytes()
    (broken / "ground" / "gravel.JPEG").write_bytes(data[: len(data) // 2])
    fails(broken, "image ground/gravel.JPEG of broken cannot be read .*truncated")
    bad_csv = tmp_path / "bad_csv"
    bad_csv.mkdir()
    (bad_csv / "labels.csv").write_text("image,label\na.png,cat\n")
    fails(bad_csv, "line 2: expected an image path and a class index")
    fails(image_folder, "alexnet: an HR crop of 66 pixels .* multiple of --scale 4: pass --image_size", image_size="66")
    fails(image_folder, "unknown classifier 'vgg91'", classifiers="vgg91")
    fails(image_folder, "--classifier_weights 'IMAGENET9K'", classifier_weights="IMAGENET9K")


def test_a_train_robust_classifier_maps_labels_by_class_name(image_folder, sr_model, tmp_path):
    robust = pytest.importorskip("asym.robust.classifier")
    torch.manual_seed(0)
    names = ["ground", "cat", "drink"]  # another order than the folders': labels must be mapped by name
    classifier = robust.Classifier("timm:mobilenetv3_small_050", num_classes=3, class_names=names)
    classifier.card = {"--crop_size": 32}  # trained (and validated) at 32: classified at --image_size all the same
    classifier.save_pretrained(tmp_path / "robust-mobilenet")
    records, printed = run(
        classify_argv(image_folder, sr_model, tmp_path / "out", classifiers=str(tmp_path / "robust-mobilenet"))
    )
    assert "(the standard cut at --image_size; trained at --crop_size 32); by class name" in printed
    model = robust.Classifier.from_pretrained(tmp_path / "robust-mobilenet").eval()
    images = restorations(image_folder, FILES, sr_model)
    targets = [names.index(f.split("/")[0]) for f in FILES]
    for key, name in COLUMNS:
        with torch.no_grad():
            predicted = [int(model(x).argmax(1)) for x in images[key]]
        wrong = sum(p != t for p, t in zip(predicted, targets))
        assert next(r for r in records if r["model"] == name)["errors"] == wrong
    # Its own crop without --image_size: 32 pixels (resize 37)
    own = load_classifier(str(tmp_path / "robust-mobilenet"))
    assert own.crop == EvalCrop.standard(32) == EvalCrop(32, 37) and "cut at its card" in own.crop_source
    # The case: a classifier right on cat and dog, given a set of cat, dog and bird. Labels were taken as
    # class indices: bird (0 in sorted order) scored against "cat". Now refused, naming the class it lacks.
    pets = tmp_path / "pets"
    for cls in ("bird", "cat", "dog"):
        (pets / cls).mkdir(parents=True)
        Image.new("RGB", (80, 80)).save(pets / cls / "a.png")
    robust.Classifier("timm:mobilenetv3_small_050", num_classes=2, class_names=["cat", "dog"]).save_pretrained(
        tmp_path / "cat-dog"
    )
    with pytest.raises(UserError, match=r"classifier cat-dog has no class 'bird' \(1 of the dataset's 3 classes; "
                                        r"it names 2, e.g. 'cat', 'dog'\): name the class folders"):  # fmt: skip
        run(classify_argv(pets, sr_model, tmp_path / "pets-out", classifiers=str(tmp_path / "cat-dog")))
    assert not (tmp_path / "pets-out").exists()


def test_imagenet_synset_folders_map_to_imagenet_indices(tmp_path):
    """ImageNet's validation layout (DIR/<synset>/): any subset of the synsets maps to the ImageNet-1k indices, for
    named (pretrained) and unnamed (random) ImageNet classifiers alike; sorted folder order would give 0, 1, 2."""
    from asym.robust.image_classifiers import ImageClassifier, imagenet_synsets

    synsets = imagenet_synsets()
    categories = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
    assert len(synsets) == 1000 and synsets == sorted(synsets)  # the index order of ImageNet-1k
    from timm.data import ImageNetInfo  # torchvision's categories follow the same order: 998 of 1000 names agree

    info = ImageNetInfo()
    lemmas = [info.index_to_description(i).lower().split(", ") for i in range(1000)]
    assert sum(c.lower() in lemma for c, lemma in zip(categories, lemmas)) >= 998
    for synset in ("n01440764", "n01443537", "n15075141"):  # tench, goldfish, toilet tissue
        (tmp_path / "val" / synset).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "val" / synset / "a.JPEG")
    images = load_labelled_set(str(tmp_path / "val"))
    assert images.labels == [0, 1, 2]
    identity = torch.nn.Identity()
    named = ImageClassifier("resnet50", identity, list(categories), 1000, synsets=synsets)
    unnamed = ImageClassifier("resnet50", identity, None, 1000, synsets=synsets)
    for classifier in (named, unnamed):
        assert target_indices(images, classifier) == ([0, 1, 999], "by ImageNet synset")
    (tmp_path / "val" / "n99999999").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "n99999999" / "a.JPEG")
    with pytest.raises(UserError, match="classifier resnet50 has no class 'n99999999' .* or as ImageNet synsets"):
        target_indices(load_labelled_set(str(tmp_path / "val")), named)


def test_chart_title_fits_the_figure(monkeypatch, tmp_path):
    """The title of classify.png lies inside the figure, wrapped, however narrow the chart (it was cut off at both
    edges: an axes title centred over a narrow axes)."""
    import asym.reporting.figures
    from asym.reporting.figures import plot_top1_errors

    figures = []
    real = asym.reporting.figures.save_figure
    monkeypatch.setattr(asym.reporting.figures, "save_figure", lambda fig, path: figures.append(fig) or real(fig, path))
    records = [{"classifier": c, "model": m, "dataset": "imagenet-val-224px-resize232-x4", "images": 5000,
                "top1_error": 0.5} for c in ("vgg19", "resnet50") for m in ("hr",)]  # fmt: skip
    plot_top1_errors(records, str(tmp_path / "classify.png"))
    fig = figures[0]
    fig.canvas.draw()  # lays the figure out as saving does
    titles = [t for t in (fig._suptitle, *(ax.title for ax in fig.axes)) if t is not None and t.get_text()]
    assert [t.get_text().replace("\n", " ") for t in titles] == [
        "Classifiers on super-resolved images (imagenet-val-224px-resize232-x4, 5000 images)"
    ]
    box, frame = titles[0].get_window_extent(fig.canvas.get_renderer()), fig.bbox
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1, (box, frame)


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
    with pytest.raises(UserError, match="labels outside 0 and up \\(e.g. -1, row 0; .*with --split"):
        load_classification_set(str(tmp_path / "bad"), SIZE, 4)


@pytest.mark.slow
def test_two_processes_count_what_one_process_counts(image_folder, sr_model, tmp_path):
    """`accelerate launch --num_processes 2 evaluate.py classify` (gloo): each process classifies every other image,
    the main process sums the errors and writes classify.json equal to a one-process run's."""
    import subprocess

    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    launch = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_cpu_threads_per_process", "1"]
    for prefix, out in ((launch, "two"), ([sys.executable], "one")):
        done = subprocess.run([*prefix, "evaluate.py", *classify_argv(image_folder, sr_model, tmp_path / out)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = (json.loads((tmp_path / out / "classify.json").read_text()) for out in ("one", "two"))
    assert one == two and sum(r["errors"] for r in one) > 0 and {r["images"] for r in one} == {6}
