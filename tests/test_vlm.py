"""VLM quality scorers: answer parsing, Q-Align read-out, square padding, and tiny random models end to end."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
import torch
from stand_in import save_qwen25_vl, tiny_tokenizer

from asym.core.errors import UserError
from asym.metrics import MetricUnavailable, NRMetric, correlations
from asym.metrics.vlm import (
    DeQAScore,
    UnparsableAnswer,
    UnparsableAnswerWarning,
    VisualQualityR1,
    image_prompt_ids,
    level_score,
    level_token_ids,
    pad_to_square,
    parse_answer,
)

# --- parse_answer --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ("<think>sharp, little noise</think><answer>3.75</answer>", 3.75),
        ("<answer>2.00</answer> then <answer>4.5</answer>", 4.5),
        ("<answer>\n   4.25 \n</answer>", 4.25),
        ("<answer>-1</answer>", -1.0),
        ("<answer>4</answer>", 4.0),
        ("<answer>score: +3.5 out of 5</answer>", 3.5),
    ],
)
def test_parse_answer(text, value):
    assert parse_answer(text) == value


@pytest.mark.parametrize("text", ["3.75", "<think>good</think>", "<answer></answer>", "<answer>good</answer>", ""])
def test_parse_answer_malformed_raises(text):
    with pytest.raises(UnparsableAnswer):
        parse_answer(text)


def test_last_answer_block_wins_even_if_empty():
    with pytest.raises(UnparsableAnswer):
        parse_answer("<answer>3.0</answer><answer> </answer>")


# --- DeQA read-out and padding -------------------------------------------------------------------------------


def test_level_score_matches_hand_computation():
    logits = torch.full((2, 10), -50.0)
    logits[0, [7, 3, 5, 1, 9]] = torch.tensor([0.0, math.log(2), math.log(3), math.log(4), 0.0])  # weights 1,2,3,4,1
    logits[1, 7] = 30.0  # all mass on "excellent"
    got = level_score(logits, [7, 3, 5, 1, 9])
    expected0 = (5 * 1 + 4 * 2 + 3 * 3 + 2 * 4 + 1 * 1) / 11
    assert torch.allclose(got, torch.tensor([expected0, 5.0]), atol=1e-5)


def test_pad_to_square_size_and_fill():
    from PIL import Image

    image = Image.new("RGB", (6, 2), (255, 0, 0))
    padded = pad_to_square(image)
    assert padded.size == (6, 6)
    assert padded.getpixel((0, 0)) == (122, 116, 104)  # int(255 * CLIP mean)
    assert padded.getpixel((3, 2)) == (255, 0, 0) and padded.getpixel((3, 4)) == (122, 116, 104)
    assert pad_to_square(Image.new("RGB", (2, 5))).size == (5, 5)


def images(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, 40, 56, generator=torch.Generator().manual_seed(0))


# --- VisualQuality-R1 end to end -----------------------------------------------------------------------------

# The authors' non-thinking prompt (README.md of TianheWu/VisualQuality-R1 at a16dcdb6), typed out again here
AUTHORS_PROMPT = ("You are doing the image quality assessment task. Here is the question: What is your overall rating "
                  "on the quality of this picture? The rating should be a float between 1 and 5, rounded to two "
                  "decimal places, with 1 representing very poor quality and 5 representing excellent quality. "
                  "Please only output the final answer with only one score in <answer> </answer> tags.")  # fmt: skip


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    """A tiny random Qwen2.5-VL and its processor, saved to a folder."""
    text = dict(vocab_size=len(tiny_tokenizer()), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]})  # fmt: skip
    vision = dict(depth=2, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1])  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny_qwen")
    save_qwen25_vl(folder, text, vision, image_size={"shortest_edge": 56 * 56, "longest_edge": 112 * 112})
    return str(folder)


def test_visualquality_r1_random_model_reports_unparsable(tiny_qwen):
    scorer = VisualQualityR1.from_pretrained(tiny_qwen, "cpu", max_new_tokens=4)
    with pytest.warns(UnparsableAnswerWarning):
        scores = scorer.score(images())
    assert scores.shape == (2,) and torch.isnan(scores).all()
    assert [s.split(":")[0] for s in scorer.last_status] == ["unparsable", "unparsable"]
    again = scorer.last_text
    with pytest.warns(UnparsableAnswerWarning):
        scorer.score(images())
    assert scorer.last_text == again  # greedy: deterministic


def test_visualquality_r1_prompt_is_the_authors(tiny_qwen, monkeypatch):
    """The text the model reads: the image numbered as with the authors' add_vision_id=True, then their prompt."""
    scorer = VisualQualityR1.from_pretrained(tiny_qwen, "cpu", max_new_tokens=4)
    rendered = []
    template = scorer.processor.apply_chat_template
    monkeypatch.setattr(scorer.processor, "apply_chat_template",
                        lambda *a, **k: rendered.append(template(*a, **k)) or rendered[-1])  # fmt: skip
    scorer._inputs(images(1))
    assert rendered == ["<|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>" + AUTHORS_PROMPT
                        + "<|im_end|>\n<|im_start|>assistant\n"]  # fmt: skip
    assert scorer.identity.startswith(f"VisualQuality-R1 {os.path.abspath(tiny_qwen)} revision local files ")


def test_visualquality_r1_batch_generates_what_each_image_generates_alone(tiny_qwen):
    """``--batch_size`` images per ``generate`` (left-padded prompts): greedy replies identical, token for token, to
    scoring each image alone."""
    scorer = VisualQualityR1.from_pretrained(tiny_qwen, max_new_tokens=6)
    batch = torch.cat([images(2), torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(5))])
    together = scorer.generate_text(batch)
    alone = [scorer.generate_text(batch[i : i + 1])[0] for i in range(len(batch))]
    assert together == alone and len(together) == 4


def test_unparsable_answers_get_their_status_in_the_sr_table(tiny_qwen, monkeypatch, tmp_path):
    """evaluate.py sr with a VisualQuality-R1 that answers nothing usable (a random tiny model): no number and status
    ok, but the reason, per image (sr_scores.csv) and per model (sr_results, the table)."""
    import csv
    import dataclasses

    import evaluate
    from asym.metrics import vlm
    from asym.metrics.table import VLM_METRICS

    class Short(VisualQualityR1):  # the tiny model, with replies of 4 tokens
        @classmethod
        def from_pretrained(cls, source, device="cpu"):
            return super().from_pretrained(source, device, max_new_tokens=4)

    monkeypatch.setattr(vlm, "VisualQualityR1", Short)  # the table row names the class, and its weights:
    monkeypatch.setitem(VLM_METRICS, "visualquality-r1", dataclasses.replace(VLM_METRICS["visualquality-r1"],
                                                                              weights=tiny_qwen))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnparsableAnswerWarning)
        records = evaluate.main(evaluate.parse_args(["sr", "--models", "bicubic,hr", "--metrics", "visualquality-r1",
                                                     "--datasets", "builtin", "--max_images", "1", "--output_dir",
                                                     str(tmp_path), "--device", "cpu"]))  # fmt: skip
    assert [(r["model"], r["score"], r["status"]) for r in records] == [
        (m, None, "unparsable: no score for 1 of 1 images (sr_scores.csv)") for m in ("bicubic", "hr")]  # fmt: skip
    with open(tmp_path / "sr_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"].split(":")[0] for r in rows] == ["unparsable", "unparsable"] and rows[0]["score"] == "nan"
    table = (tmp_path / "sr_results.md").read_text()
    assert "| visualquality-r1 (raw) | n/a | n/a |" in table
    assert "n/a: visualquality-r1 of bicubic: unparsable: no score for 1 of 1 images (sr_scores.csv)" in table


def test_visualquality_r1_known_answer_through_the_same_path(tiny_qwen, monkeypatch):
    scorer = VisualQualityR1.from_pretrained(tiny_qwen, "cpu", max_new_tokens=4)
    inputs = scorer._inputs(images())
    assert (inputs["input_ids"] == scorer.model.config.image_token_id).any()  # the image is in the prompt
    answer = scorer.processor.tokenizer("<answer> 3.75 </answer>", add_special_tokens=False).input_ids

    def generate(**kwargs):
        assert kwargs["do_sample"] is False and kwargs["max_new_tokens"] == 4
        prompt = kwargs["input_ids"]
        return torch.cat([prompt, torch.tensor([answer, answer[:1] + [0, 0]])], dim=1)

    monkeypatch.setattr(scorer.model, "generate", generate)
    with pytest.warns(UnparsableAnswerWarning):
        scores = scorer.score(images())
    assert scores[0].item() == 3.75 and math.isnan(scores[1].item())
    assert scorer.last_status[0] == "ok" and scorer.last_status[1].startswith("unparsable")
    with pytest.raises(UserError, match="NaN"):  # NaN scores cannot reach a correlation unnoticed
        correlations(np.r_[scores.numpy(), 1.0, 2.0, 3.0], np.arange(5.0))


# --- DeQA-Score with a fake model ---------------------------------------------------------------------------


class FakeOwl(torch.nn.Module):
    """Logits that put all mass on one level word at the last position; records its inputs."""

    def __init__(self, vocab: int, favourite: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.vocab, self.favourite, self.seen = vocab, favourite, {}

    def forward(self, input_ids, images):
        self.seen = {"input_ids": input_ids, "images": images}
        logits = torch.zeros(input_ids.shape[0], input_ids.shape[1], self.vocab)
        logits[:, -1, self.favourite] = 40.0
        return logits


def test_deqa_wrapper_with_fake_model():
    from transformers import CLIPImageProcessor

    tokenizer = tiny_tokenizer(bos=True)
    ids = level_token_ids(tokenizer)
    assert ids == tokenizer.convert_tokens_to_ids(["excellent", "good", "fair", "poor", "bad"])  # after the BOS
    prompt = image_prompt_ids("USER: the <|image|> quality", tokenizer).tolist()
    assert prompt == [tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(["USER:", "the"]), -200,
                      tokenizer.convert_tokens_to_ids("quality")]  # fmt: skip
    processor = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    scorer = DeQAScore(FakeOwl(len(tokenizer), ids[1]), tokenizer, processor)
    scores = scorer(images())
    assert torch.allclose(scores, torch.tensor([4.0, 4.0]))  # "good"
    assert scorer.model.seen["images"].shape == (2, 3, 28, 28)
    assert (scorer.model.seen["input_ids"] == -200).sum() == 2


def test_deqa_end_to_end_on_tiny_random_mplug_owl2(tmp_path):
    """The real loading path (``DeQAScore.from_pretrained``) on a saved tiny random mPLUG-Owl2 (pyiqa's vendored
    architecture, 2 LLaMA layers): one finite score in [1, 5] per image, and a batch scores each image as alone."""
    from pyiqa.archs.q_align.configuration_mplug_owl2 import MPLUGOwl2Config
    from transformers import CLIPImageProcessor

    from asym.metrics.vlm import _mplug_owl2_class

    tokenizer = tiny_tokenizer(bos=True)
    visual = {"visual_model": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                               "num_attention_heads": 2, "image_size": 56, "patch_size": 14},
              "visual_abstractor": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                    "intermediate_size": 64, "encoder_hidden_size": 32, "num_learnable_queries": 8,
                                    "grid_size": 4}}  # fmt: skip
    config = MPLUGOwl2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, visual_config=visual)  # fmt: skip
    torch.manual_seed(0)
    _mplug_owl2_class()(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}).save_pretrained(tmp_path)

    scorer = DeQAScore.from_pretrained(str(tmp_path))
    batch = images(3)
    scores = scorer(batch)
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    assert ((scores >= 1) & (scores <= 5)).all()
    alone = torch.cat([scorer(batch[i : i + 1]) for i in range(3)])
    assert torch.allclose(scores, alone, atol=1e-5)  # float32 attention over the same tokens: rounding-level only


def test_deqa_vendored_architecture_missing_folder_is_unavailable(tmp_path):
    with pytest.raises(MetricUnavailable) as info:
        DeQAScore.from_pretrained(str(tmp_path / "none"))
    assert info.value.reason


# --- NRMetric dispatch ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, cls, other, hub_id",
    [("deqa", DeQAScore, VisualQualityR1, "zhiyuanyou/DeQA-Score-Mix3"),
     ("visualquality-r1", VisualQualityR1, DeQAScore, "TianheWu/VisualQuality-R1-7B")],
)  # fmt: skip
def test_nrmetric_dispatch(name, cls, other, hub_id, monkeypatch):
    """Each name creates its own scorer class from its own default Hub id (the authors' releases), on the device
    asked for; the other scorer is never touched."""
    seen = {}

    class Fake:
        def __call__(self, x):
            return torch.full((x.shape[0],), 3.0)

    fake = Fake()
    monkeypatch.setattr(cls, "from_pretrained", classmethod(lambda c, src, dev: seen.update(src=src, dev=dev) or fake))
    monkeypatch.setattr(other, "from_pretrained", classmethod(lambda c, *a: pytest.fail(f"{name} created {other}")))
    metric = NRMetric(name, "cpu")
    assert metric.lower_better is False and metric.name == name and metric.model is fake
    assert seen == {"src": hub_id, "dev": "cpu"}
    assert metric(images()).tolist() == [3.0, 3.0]


def test_visualquality_r1_unavailable(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(MetricUnavailable):
            VisualQualityR1.from_pretrained(str(tmp_path / "none"))


def test_the_vllm_backend_is_optional_and_asks_vllm_what_transformers_is_asked(tiny_qwen, monkeypatch):
    """Without vllm installed, ``backend="vllm"`` is one unavailable-metric reason (evaluate.py sr reports it and goes
    on); with it, each image is one greedy request carrying the very prompt the transformers path templates."""
    import sys
    import types

    import asym

    monkeypatch.setitem(sys.modules, "vllm", None)  # not installed (an import of it raises ImportError)
    with pytest.raises(MetricUnavailable) as caught:
        asym.create_metric("visualquality-r1", "cpu", backend="vllm")
    assert caught.value.reason == "vllm not installed"
    with pytest.raises(UserError, match="takes no backend"):
        asym.create_metric("piqe", "cpu", backend="vllm")

    requests = []

    class LLM:  # vLLM's offline API as asym uses it: LLM(model=...).generate([{prompt, multi_modal_data}], params)
        def __init__(self, model, limit_mm_per_prompt, dtype):
            self.model = model

        def generate(self, batch, params):
            requests.extend(batch)
            reply = types.SimpleNamespace(text="<think>sharp</think><answer>3.75</answer>")
            return [types.SimpleNamespace(outputs=[reply]) for _ in batch]

    def sampling(temperature, max_tokens):
        return types.SimpleNamespace(temperature=temperature, max_tokens=max_tokens)

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=sampling))
    scorer = VisualQualityR1.from_pretrained(tiny_qwen, "cpu", max_new_tokens=7, backend="vllm")
    assert scorer.engine[1].temperature == 0.0 and scorer.engine[1].max_tokens == 7
    reference = VisualQualityR1.from_pretrained(tiny_qwen, "cpu")
    assert scorer.score(images(2)).tolist() == [3.75, 3.75] and scorer.identity == reference.identity
    from asym.sr.score_cache import unit_identity  # one 1..100 map, but never a transformers score reused for vLLM's

    as_metric = [types.SimpleNamespace(model=s) for s in (scorer, reference)]  # as create_metric wraps a scorer
    assert unit_identity(as_metric[0]) == unit_identity(as_metric[1]) + " generated by vLLM"
    assert [r["prompt"] for r in requests] == [reference._prompt()] * 2
    assert [r["multi_modal_data"]["image"].size for r in requests] == [(56, 40)] * 2
