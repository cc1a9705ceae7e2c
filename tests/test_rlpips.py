"""R-LPIPS: LPIPS trained on BAPPS 2AFC judgements (train_metric.py --objective 2afc), with and without PGD triplets.

Reference values come from the ``lpips`` package itself (its Dist2LogitLayer, BCERankingLoss, score_2afc_dataset and
LPIPS network, loaded with the same tensors) or from hand computations; BAPPS-layout fixtures are written here.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

from conftest import reset_accelerate_state  # noqa: E402
from peers import lpips_like  # noqa: E402

import train_metric  # noqa: E402
from asym import LPIPS  # noqa: E402
from asym.core.errors import UserError  # noqa: E402
from asym.core.training import run_cli  # noqa: E402
from asym.iqa.data.layouts.bapps import TwoAFCDataset, bapps_subsets, load_two_afc, read_bapps_subset  # noqa: E402
from asym.iqa.two_afc import Dist2Logit, perturb_triplet, ranking_loss, triplet_distances, two_afc_scores  # noqa: E402

pytestmark = [pytest.mark.usefixtures("fresh_accelerate_state"), pytest.mark.filterwarnings("ignore::UserWarning")]
SIZE = 32  # fixture patches (BAPPS's are 64; 32 keeps VGG-16 fast on CPU)


# --- fixtures ----------------------------------------------------------------------------------------------------


def _png(path: Path, image: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


def write_subset(folder: Path, n: int, seed: int, size: int = SIZE) -> list[float]:
    """A learnable BAPPS subset: ``ref`` (smooth random texture), a mildly and a strongly distorted copy (noise,
    box blur or contrast, one kind per triplet), in alternating order; 90% of "humans" prefer the mild one."""
    g = torch.Generator().manual_seed(seed)
    low = F.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=(size, size), mode="bicubic", align_corners=False)
    ref = (low + 0.05 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)

    def distort(x, kind, level):
        if kind == 0:
            return (x + (0.03, 0.2)[level] * torch.randn(x.shape, generator=g)).clamp(0, 1)
        if kind == 1:
            k = (1, 3)[level]
            return F.avg_pool2d(F.pad(x[None], (k, k, k, k), mode="reflect"), 2 * k + 1, stride=1)[0]
        mean = x.mean((1, 2), keepdim=True)
        return mean + (0.85, 0.4)[level] * (x - mean)

    judges = []
    for i, kind in enumerate(torch.randint(0, 3, (n,), generator=g).tolist()):
        mild, strong = distort(ref[i], kind, 0), distort(ref[i], kind, 1)
        p0, p1, judge = (mild, strong, 0.1) if i % 2 == 0 else (strong, mild, 0.9)  # judge: share preferring p1
        for name, image in (("ref", ref[i]), ("p0", p0), ("p1", p1)):
            _png(folder / name / f"{i:06d}.png", image)
        (folder / "judge").mkdir(exist_ok=True)
        np.save(folder / "judge" / f"{i:06d}.npy", np.array([judge], dtype=np.float32))
        judges.append(judge)
    return judges


@pytest.fixture(scope="module")
def bapps(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bapps")
    write_subset(root / "2afc" / "train" / "traditional", 64, seed=0)
    write_subset(root / "2afc" / "val" / "traditional", 16, seed=1)
    write_subset(root / "2afc" / "val" / "cnn", 16, seed=2)
    return root


def run_2afc(bapps: Path, out: Path, *extra: str, seed: int = 0) -> dict:
    reset_accelerate_state()
    args = train_metric.parse_args([
        "--objective", "2afc", "--dataset_name", str(bapps), "--weights", "random", "--load_size", str(SIZE),
        "--train_batch_size", "8", "--validation_steps", "1000", "--checkpointing_steps", "1000", "--report_to",
        "none", "--seed", str(seed), "--output_dir", str(out), *extra,
    ])  # fmt: skip
    return train_metric.main(args)


# --- Dist2Logit, the ranking loss, the 2AFC score ---------------------------------------------------------------


def test_dist2logit_matches_lpips_layer_and_bce_by_hand():
    import lpips

    ours = Dist2Logit()
    theirs = lpips.Dist2LogitLayer()
    assert set(ours.state_dict()) == set(theirs.state_dict())  # same keys: lpips's *_net_rank.pth files load
    theirs.load_state_dict(ours.state_dict())
    d0, d1 = torch.rand(7) * 0.5, torch.rand(7) * 0.5
    d1[0] = d0[0]  # a tie
    judge = torch.tensor([0.0, 1.0, 0.5, 0.25, 0.9, 0.1, 0.6])
    p = ours(d0, d1)
    assert p.shape == (7,) and ((p > 0) & (p < 1)).all()
    reference = theirs(d0.view(-1, 1, 1, 1), d1.view(-1, 1, 1, 1)).flatten()
    torch.testing.assert_close(p, reference, atol=1e-6, rtol=0)
    by_hand = -(judge * reference.log() + (1 - judge) * (1 - reference).log()).mean()
    loss = ranking_loss(ours, d0, d1, judge)
    torch.testing.assert_close(loss, by_hand, atol=1e-6, rtol=0)
    bce = lpips.BCERankingLoss()
    bce.net.load_state_dict(ours.state_dict())  # lpips's trainer passes judge * 2 - 1
    torch.testing.assert_close(loss, bce(d0.view(-1, 1, 1, 1), d1.view(-1, 1, 1, 1), judge.view(-1, 1, 1, 1) * 2 - 1))


def test_two_afc_score_by_hand_and_against_lpips_with_ties():
    from lpips.trainer import score_2afc_dataset

    d0 = torch.tensor([1.0, 2.0, 3.0, 3.0, 0.5])
    d1 = torch.tensor([2.0, 1.0, 3.0, 4.0, 0.2])
    judge = torch.tensor([0.2, 0.3, 0.9, 0.6, 1.0])
    # p0 closer -> 1 - judge; p1 closer -> judge; a tie -> 0.5
    expected = torch.tensor([0.8, 0.3, 0.5, 0.4, 1.0], dtype=torch.float64)
    torch.testing.assert_close(two_afc_scores(d0, d1, judge), expected)

    class Loader:  # what score_2afc_dataset iterates: batches of ref/p0/p1/judge; func gives the distances
        def load_data(self):
            yield {"ref": torch.zeros(5), "p0": d0, "p1": d1, "judge": judge}

    mean, _ = score_2afc_dataset(Loader(), lambda ref, p: p, name="fixture")
    assert two_afc_scores(d0, d1, judge).mean().item() == pytest.approx(mean, abs=1e-7)


def test_triplet_distances_take_the_reference_first_as_lpips_does():
    """An asymmetric metric (the mean of ``a - b`` where positive): lpips's score_2afc_dataset calls func(ref, p); our
    distances and 2AFC score must be its, not those of func(p, ref), which here prefer the other patch."""
    from lpips.trainer import score_2afc_dataset

    def brighter(a, b):  # how much brighter the first image is than the second: not symmetric
        return (a - b).clamp(min=0).mean((1, 2, 3))

    g = torch.Generator().manual_seed(0)
    ref = 0.3 + 0.4 * torch.rand(6, 3, 8, 8, generator=g)
    p0 = (ref + 0.2).clamp(0, 1)  # brighter than ref: brighter(ref, p0) = 0, brighter(p0, ref) > 0
    p1 = ref - 0.1 * torch.rand(6, 1, 1, 1, generator=g)  # darker
    judge = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.6, 0.1])  # most "humans" prefer p0

    class Loader:
        def load_data(self):
            yield {"ref": ref, "p0": p0, "p1": p1, "judge": judge}

    mean, theirs = score_2afc_dataset(Loader(), brighter, name="asymmetric")
    d0, d1 = triplet_distances(brighter, ref, p0, p1)
    np.testing.assert_array_equal(d0.numpy(), theirs["d0s"].astype(np.float32))
    np.testing.assert_array_equal(d1.numpy(), theirs["d1s"].astype(np.float32))
    assert two_afc_scores(d0, d1, judge).mean().item() == pytest.approx(mean, abs=1e-12)
    swapped = two_afc_scores(brighter(p0, ref), brighter(p1, ref), judge).mean().item()
    assert mean == pytest.approx(1 - judge.mean().item()) and swapped == pytest.approx(judge.mean().item())
    assert mean > 0.7 and swapped < 0.3  # the order decides this metric's 2AFC score


# --- loading lpips-format weights (LPIPS, R-LPIPS checkpoints) ---------------------------------------------------


def _lpips_vgg_random(seed: int = 0):
    """The lpips package's LPIPS-VGG with a random trunk and random non-negative linear weights."""
    import lpips

    torch.manual_seed(seed)
    model = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False)
    for lin in model.lins:
        lin.model[1].weight.data = torch.rand_like(lin.model[1].weight)
    return model.eval()


def test_lpips_state_dict_with_trunk_matches_lpips_package(tmp_path):
    """A whole lpips state dict (as its trainer saves: net.slice*, lin*, lins.*, scaling_layer) -> the same distances;
    the trunk travels with save_pretrained."""
    reference = _lpips_vgg_random()
    path = tmp_path / "latest_net_.pth"
    torch.save({f"module.{k}": v for k, v in reference.state_dict().items()}, path)  # DataParallel-saved
    ours = LPIPS.from_lpips_state_dict(str(path))
    assert ours.backbone.weights_source == f"lpips state dict {path}"
    x, y = torch.rand(3, 3, 40, 48), torch.rand(3, 3, 40, 48)
    expected = reference(x, y, normalize=True).flatten()
    torch.testing.assert_close(ours(x, y), expected, atol=1e-5, rtol=0)
    ours.save_pretrained(tmp_path / "saved")
    torch.testing.assert_close(LPIPS.from_pretrained(tmp_path / "saved")(x, y), expected, atol=1e-5, rtol=0)


def test_lpips_linear_only_state_dict_matches_lpips_package(tmp_path):
    """The release format (lin<k>.model.1.weight only, as R-LPIPS's published files hold them): linear weights from
    the file, backbone from ``weights``."""
    state = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate([64, 128, 256, 512, 512])}
    torch.save(state, tmp_path / "lins.pth")
    torch.manual_seed(3)
    ours = LPIPS.from_lpips_state_dict(str(tmp_path / "lins.pth"), weights="random")
    reference = lpips_like(ours)  # the lpips package's LPIPS-VGG on our random trunk
    reference.load_state_dict(state, strict=False)  # its linear weights read from the file, as lpips reads its release
    x, y = torch.rand(2, 3, 33, 37), torch.rand(2, 3, 33, 37)
    torch.testing.assert_close(ours(x, y), reference(x, y, normalize=True).flatten(), atol=1e-5, rtol=0)
    for w, k in zip(ours.lins, range(5)):
        assert torch.equal(w, state[f"lin{k}.model.1.weight"].flatten())


def test_lpips_release_file_loads_as_the_official_weights():
    import lpips

    path = str(Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth")
    loaded = LPIPS.from_lpips_state_dict(path, weights="random")
    official = LPIPS("vgg16", weights="random", linear="lpips")
    for a, b in zip(loaded.lins, official.lins):
        assert torch.equal(a, b)


def test_published_r_lpips_format_is_lpips_alexnet_and_matches_lpips_package(tmp_path):
    """The published R-LPIPS checkpoints are LPIPS-AlexNet state dicts (lin<k>.model.1.weight, trained with
    --net alex); a whole one (trunk included, as lpips's trainer saves) gives the lpips package's distances."""
    import lpips

    torch.manual_seed(0)
    reference = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False)
    for lin in reference.lins:
        lin.model[1].weight.data = torch.rand_like(lin.model[1].weight)
    reference.eval()
    path = tmp_path / "latest_net_linf_x0.pth"
    torch.save(reference.state_dict(), path)
    ours = LPIPS.from_lpips_state_dict(str(path), backbone="alexnet")
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(ours(x, y), reference(x, y, normalize=True).flatten(), atol=1e-5, rtol=0)


def test_lpips_state_dict_user_errors(tmp_path):
    alex = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate([64, 192, 384, 256, 256])}
    torch.save(alex, tmp_path / "latest_net_linf_x0.pth")
    with pytest.raises(UserError, match=r"LPIPS-alex.*backbone='alexnet'"):  # given to the default vgg16
        LPIPS.from_lpips_state_dict(str(tmp_path / "latest_net_linf_x0.pth"), weights="random")
    torch.save({"conv.weight": torch.rand(3)}, tmp_path / "foreign.pth")
    with pytest.raises(UserError, match="holds no LPIPS linear weights"):
        LPIPS.from_lpips_state_dict(str(tmp_path / "foreign.pth"), weights="random")
    (tmp_path / "truncated.pth").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(UserError, match="cannot be read"):
        LPIPS.from_lpips_state_dict(str(tmp_path / "truncated.pth"), weights="random")

    class Evil:  # a pickle that would run code: refused by weights_only, never executed
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"lin0.model.1.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(UserError, match="tensors-only"):
        LPIPS.from_lpips_state_dict(str(tmp_path / "evil.pth"), weights="random")
    vgg = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate([64, 128, 256, 512, 512])}
    torch.save(vgg | {"net.slice1.0.weight": torch.rand(64, 3, 3, 3)}, tmp_path / "partial_trunk.pth")
    with pytest.raises(UserError, match="do not fit vgg16"):
        LPIPS.from_lpips_state_dict(str(tmp_path / "partial_trunk.pth"))


def test_lpips_random_init_and_dropout():
    metric = LPIPS("vgg16", weights="random", linear="random", seed=5)
    for w, c in zip(metric.lins, [64, 128, 256, 512, 512]):
        assert w.abs().max() <= c**-0.5 and (w < 0).any() and (w > 0).any()  # PyTorch's 1x1-conv init: +-1/sqrt(C)
    assert torch.equal(metric.lins[3], LPIPS("vgg16", weights="random", linear="random", seed=5).lins[3])
    metric.clamp_()
    assert all((w >= 0).all() for w in metric.lins)
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    assert torch.equal(metric.train()(x, y), metric.eval()(x, y))  # no dropout unless asked for
    torch.manual_seed(0)
    dropped = torch.stack([metric(x, y, dropout=0.5) for _ in range(30)])
    assert not torch.allclose(dropped[0], dropped[1])
    torch.testing.assert_close(dropped.mean(0), metric(x, y), rtol=0.1, atol=0)  # inverted dropout: same mean


# --- the BAPPS reader --------------------------------------------------------------------------------------------


def test_bapps_reader_lists_subsets_reads_judges_and_names_missing_files(tmp_path):
    judges = write_subset(tmp_path / "2afc" / "val" / "cnn", 3, seed=4, size=64)
    write_subset(tmp_path / "2afc" / "val" / "color", 2, seed=5, size=64)
    assert bapps_subsets(str(tmp_path), "val") == ["cnn", "color"]
    assert bapps_subsets(str(tmp_path / "2afc"), "val") == ["cnn", "color"]  # the 2afc folder itself works too
    triplets = read_bapps_subset(str(tmp_path), "val", "cnn")
    assert [t.judge for t in triplets] == pytest.approx(judges) and [t.key for t in triplets][0] == "cnn/000000"
    item = TwoAFCDataset(triplets)[1]
    assert item["ref"].shape == item["p1"].shape == (3, 64, 64) and item["judge"].item() == pytest.approx(0.9)
    assert TwoAFCDataset(triplets, load_size=32)[0]["p0"].shape == (3, 32, 32)
    assert {s: len(t) for s, t in load_two_afc(str(tmp_path), "val").items()} == {"cnn": 3, "color": 2}

    (tmp_path / "2afc" / "val" / "cnn" / "p1" / "000001.png").unlink()
    with pytest.raises(UserError, match=r"cnn/p1/000001\.png is missing"):
        read_bapps_subset(str(tmp_path), "val", "cnn")
    np.save(tmp_path / "2afc" / "val" / "color" / "judge" / "000001.npy", np.array([1.5]))
    with pytest.raises(UserError, match=r"judge .*000001\.npy is 1\.5, expected .* in \[0, 1\]"):
        read_bapps_subset(str(tmp_path), "val", "color")
    (tmp_path / "2afc" / "val" / "color" / "judge" / "000000.npy").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"000000\.npy cannot be read"):
        read_bapps_subset(str(tmp_path), "val", "color")
    with pytest.raises(UserError, match=r"subset 'superres' does not exist .*found: cnn, color"):
        read_bapps_subset(str(tmp_path), "val", "superres")
    with pytest.raises(UserError, match="holds no 2afc/train/ folder"):
        bapps_subsets(str(tmp_path), "train")


# --- perturbing triplets (R-LPIPS) -------------------------------------------------------------------------------


@pytest.mark.parametrize("norm, eps, inputs", [("l2", 1.33, ("ref", "p0", "p1")), ("linf", 4 / 255, ("p0",))])
def test_perturbed_triplet_stays_in_the_ball_and_raises_the_loss(norm, eps, inputs):
    metric = LPIPS("vgg16", weights="random", linear="ones")
    logit = Dist2Logit()
    torch.manual_seed(1)
    ref = torch.rand(3, 3, 16, 16)
    p0, p1 = (ref + 0.1 * torch.randn_like(ref)).clamp(0, 1), (ref + 0.3 * torch.randn_like(ref)).clamp(0, 1)
    judge = torch.tensor([0.1, 0.9, 0.5])
    metric.train()
    adv = perturb_triplet(metric, logit, ref, p0, p1, judge, inputs, eps=eps, steps=3, norm=norm)
    assert metric.training and logit.training  # modes restored
    assert all(p.grad is None for p in [*metric.parameters(), *logit.parameters()])  # the model was held fixed
    for name, clean, perturbed in zip(("ref", "p0", "p1"), (ref, p0, p1), adv):
        delta = (perturbed - clean).flatten(1)
        if name not in inputs:
            assert torch.equal(perturbed, clean)
            continue
        size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)
        assert (size <= eps + 1e-5).all() and (size > 0.5 * eps).all(), (name, size)  # in each image's own ball
        assert perturbed.min() >= 0 and perturbed.max() <= 1
    with torch.no_grad():
        before = ranking_loss(logit, *triplet_distances(metric, ref, p0, p1), judge)
        after = ranking_loss(logit, *triplet_distances(metric, *adv), judge)
    assert after > before
    with pytest.raises(ValueError, match="some of ref, p0, p1"):
        perturb_triplet(metric, logit, ref, p0, p1, judge, ("p2",))


# --- train_metric.py --objective 2afc ----------------------------------------------------------------------------


def test_training_raises_val_2afc_score_on_several_seeds(bapps, tmp_path):
    """LPIPS's recipe from its random (signed) linear weights: whatever the start, every seed ends near the ceiling
    (0.9: a tenth of the "humans" disagree with every answer), and the ranking loss falls."""
    initial, final = [], []
    for seed in (0, 1):
        result = run_2afc(bapps, tmp_path / f"seed{seed}", "--learning_rate", "1e-2", "--max_train_steps", "24",
                          seed=seed)  # fmt: skip
        initial.append(result["initial"]["mean"])
        final.append(result["validation"]["mean"])
        losses = [h["loss"] for h in result["history"]]
        assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.05, losses
        assert set(result["validation"]["2afc"]) == {"traditional", "cnn"}
    assert all(0.85 <= f <= 0.9 + 1e-9 for f in final), (initial, final)
    assert np.mean(final) > np.mean(initial) + 0.2, (initial, final)

    out = tmp_path / "seed0"
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "2afc" and results["validation"]["mean"] == pytest.approx(final[0])
    assert results["test"] == results["validation"] and results["validation"]["n"] == {"cnn": 16, "traditional": 16}
    saved = LPIPS.from_pretrained(out)
    assert all((w >= 0).all() for w in saved.lins)  # clamped after every step
    assert "2AFC" in (out / "README.md").read_text()
    from huggingface_hub import ModelCard  # the card's model-index: results.json's 2AFC score of each val subset, mean

    card = ModelCard.load(out / "README.md").data
    assert {(r.dataset_type, r.dataset_name, r.dataset_split, r.metric_type) for r in card.eval_results} == {
        (results["dataset"], results["dataset"], "val", "2afc")
    }
    expected = {**results["validation"]["2afc"], None: results["validation"]["mean"]}  # None: no subset, the mean
    assert {r.dataset_config: r.metric_value for r in card.eval_results} == expected
    from safetensors.torch import load_file

    Dist2Logit().load_state_dict(load_file(out / "dist2logit.safetensors"))
    # the saved metric scores the val set as the run reported
    val = load_two_afc(str(bapps), "val", ["cnn"])["cnn"]
    batch = next(iter(torch.utils.data.DataLoader(TwoAFCDataset(val, SIZE), batch_size=16)))
    with torch.no_grad():
        scores = two_afc_scores(*triplet_distances(saved, batch["ref"], batch["p0"], batch["p1"]), batch["judge"])
    assert scores.mean().item() == pytest.approx(results["validation"]["2afc"]["cnn"], abs=1e-6)


class Interrupted(Exception):
    pass


def test_adversarial_training_runs_and_resumes_exactly(bapps, tmp_path, monkeypatch):
    """6 steps == 3, a crash, resume, 3 more: with PGD triplets (random start: a generator per step) and dropout (the
    global RNG, restored with the checkpoint); the schedule runs over --max_train_steps, so the crash is simulated."""
    attack = ["--backbone", "timm:resnet10t", "--attack", "pgd", "--attack_steps", "2", "--attack_random_start",
              "--learning_rate", "1e-2", "--checkpointing_steps", "3", "--max_eval_samples", "4", "--max_train_steps",
              "6"]  # fmt: skip
    straight = run_2afc(bapps, tmp_path / "straight", *attack)["history"]
    save = train_metric.save_checkpoint

    def save_then_crash(*args, **kwargs):
        save(*args, **kwargs)
        raise Interrupted

    monkeypatch.setattr(train_metric, "save_checkpoint", save_then_crash)
    with pytest.raises(Interrupted):
        run_2afc(bapps, tmp_path / "split", *attack)
    monkeypatch.setattr(train_metric, "save_checkpoint", save)
    resumed = run_2afc(bapps, tmp_path / "split", *attack, "--resume_from_checkpoint", "latest")["history"]
    assert len(resumed) == 3
    assert [h["lr"] for h in resumed] == [h["lr"] for h in straight[3:]]
    for a, b in zip(straight[3:], resumed):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
    a, b = LPIPS.from_pretrained(tmp_path / "straight"), LPIPS.from_pretrained(tmp_path / "split")
    for wa, wb in zip(a.lins, b.lins):
        torch.testing.assert_close(wa, wb, atol=1e-7, rtol=0)
    card = json.loads((tmp_path / "straight" / "config.json").read_text())["card"]
    attack = card["adversarial training"]
    assert attack.startswith("PGD-2, l2 eps 1.33") and attack.endswith("random start, on ref,p0,p1"), attack
    # LPIPS's schedule (the rate for the next step is logged): constant for the first half, then linearly to 0
    assert [h["lr"] for h in straight] == pytest.approx([1e-2, 1e-2, 1e-2, 1e-2 * 2 / 3, 1e-2 / 3, 0.0], abs=1e-12)


def test_objective_defaults_and_flag_errors(capsys, tmp_path):
    plcc = train_metric.parse_args([])
    assert (plcc.objective, plcc.init, plcc.train_batch_size, plcc.adam_beta1, plcc.max_train_steps) == \
        ("plcc", "uniform", 32, 0.9, 5000)  # fmt: skip
    two = train_metric.parse_args(["--objective", "2afc"])
    assert (two.init, two.train_batch_size, two.adam_beta1, two.load_size, two.lpips_dropout, two.attack) == \
        ("random", 50, 0.5, 64, 0.5, "none")  # fmt: skip
    study = train_metric.parse_args(["--objective", "2afc", "--attack", "pgd"])
    assert (study.attack_norm, study.attack_eps, study.attack_steps, study.attack_inputs) == ("l2", 1.33, 10,
                                                                                             "ref,p0,p1")  # fmt: skip
    public = ["--attack_norm", "linf", "--attack_eps", "4/255", "--attack_steps", "50", "--attack_inputs", "p0"]
    public = train_metric.parse_args(["--objective", "2afc", "--attack", "pgd", *public])
    assert public.attack_eps == pytest.approx(4 / 255) and public.attack_inputs == "p0"
    for argv, message in [
        (["--attack", "pgd"], "--attack applies to --objective 2afc only"),
        (["--init", "lpips"], "invalid choice: 'lpips'"),
        (["--objective", "2afc", "--attack_eps", "0.1"], "--attack_eps needs --attack pgd"),
        (["--objective", "2afc", "--attack", "pgd", "--attack_inputs", "p0,p2"], "name some of ref, p0, p1"),
        (["--objective", "2afc", "--attack", "pgd", "--attack_eps", "1/0"], "not a number or a fraction"),
        (["--objective", "2afc", "--split_file", "split.json"], "do not apply to --objective 2afc"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            train_metric.parse_args(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err, argv
    # data mistakes: one line, exit status 2, nothing written
    args = train_metric.parse_args(["--objective", "2afc", "--dataset_name", str(tmp_path / "nowhere"),
                                    "--output_dir", str(tmp_path / "out"), "--report_to", "none"])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_metric.main, args)
    assert exit_info.value.code == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.json").exists()
    # a truncated patch in BAPPS (its last 20 bytes, which PIL's decoder does not miss): one error naming it, before
    # anything is written (it used to train on with no word)
    broken = tmp_path / "bapps"
    write_subset(broken / "2afc" / "train" / "traditional", 3, seed=0)
    write_subset(broken / "2afc" / "val" / "traditional", 3, seed=1)
    bad = broken / "2afc" / "train" / "traditional" / "p1" / "000001.png"
    bad.write_bytes(bad.read_bytes()[:-20])
    args = train_metric.parse_args(["--objective", "2afc", "--dataset_name", str(broken), "--max_train_steps", "1",
                                    "--output_dir", str(tmp_path / "out"), "--report_to", "none"])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_metric.main, args)
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert exit_info.value.code == 2 and len(errors) == 1 and f"BAPPS image {bad} cannot be read" in errors[0]
    assert not (tmp_path / "out").exists()
