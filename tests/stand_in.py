"""Stand-in weights: random values in the exact files and folders where torchvision and huggingface_hub cache their
downloads, so that the real loaders run offline at real size (``TORCH_HOME`` / ``HF_HOME`` pointing here).

Every number computed with them is a figure of *stand-in weights*: the shapes, memory and speed of the real
networks, never their quality.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

REVISION = "0" * 40  # the snapshot folder of each Hub repo (what refs/main names)

# registry name -> (torchvision builder, its weights enum member): the file torchvision downloads
TORCHVISION = {
    "vgg16": ("vgg16", "VGG16_Weights", "IMAGENET1K_V1"),
    "vgg19": ("vgg19", "VGG19_Weights", "IMAGENET1K_V1"),
    "alexnet": ("alexnet", "AlexNet_Weights", "IMAGENET1K_V1"),
    "resnet50": ("resnet50", "ResNet50_Weights", "IMAGENET1K_V2"),
    "convnext": ("convnext_tiny", "ConvNeXt_Tiny_Weights", "IMAGENET1K_V1"),
    "swin-t": ("swin_t", "Swin_T_Weights", "IMAGENET1K_V1"),
}
# registry name -> Hub id it loads by default
HUB = {"clip-vit": "openai/clip-vit-base-patch16", "dinov2": "facebook/dinov2-base"}


def write_torchvision(torch_home: Path, name: str) -> Path:
    """A randomly initialised ImageNet classifier's state dict, saved as ``$TORCH_HOME/hub/checkpoints/<file>`` (the
    name in torchvision's weights URL)."""
    import torchvision

    builder, enum, member = TORCHVISION[name]
    weights = getattr(getattr(torchvision.models, enum), member)
    path = torch_home / "hub" / "checkpoints" / os.path.basename(weights.url)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        model = getattr(torchvision.models, builder)(weights=None, num_classes=len(weights.meta["categories"]))
        torch.save(model.state_dict(), path)
    return path


def write_hub_model(hf_home: Path, name: str) -> Path:
    """The snapshot a ``from_pretrained(<Hub id>)`` download leaves in ``$HF_HOME/hub``: config.json and
    model.safetensors of the real configuration with random weights (CLIP: the whole model, both towers, as the
    released checkpoint holds)."""
    from transformers import CLIPConfig, CLIPModel, Dinov2Config, Dinov2Model

    repo = HUB[name]
    root = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / REVISION
    if not (snapshot / "model.safetensors").exists():
        if name == "clip-vit":  # openai/clip-vit-base-patch16: ViT-B/16 vision tower, 12-layer text tower
            model = CLIPModel(CLIPConfig(vision_config={"patch_size": 16}, projection_dim=512))
        else:  # facebook/dinov2-base: ViT-B/14
            model = Dinov2Model(Dinov2Config(image_size=518))
        model.save_pretrained(snapshot)
        _point_main_at(root)
    return snapshot


def write_all(home: Path) -> dict[str, str]:
    """Every registered backbone's stand-in under ``home``; the environment that makes the loaders find them."""
    for name in TORCHVISION:
        write_torchvision(home / "torch", name)
    for name in HUB:
        write_hub_model(home / "hf", name)
    return {"TORCH_HOME": str(home / "torch"), "HF_HOME": str(home / "hf"), "HF_HUB_OFFLINE": "1"}


def read_json_lines(text: str) -> dict:
    """The ``{"name": ...}`` records a loader subprocess printed, one JSON object a line, by name."""
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return {record["name"]: record for record in records}


# asym metric name -> (the timm network its pyiqa arch loads pretrained, pyiqa's checkpoint file, the key the
# checkpoint nests its state under, the arch's constructor arguments as pyiqa's default config gives them)
PYIQA = {
    "maniqa": ("vit_base_patch8_224", "ckpt_koniq10k.pt", None, {"train_dataset": "koniq", "scale": 0.8}),
    "topiq_nr": ("resnet50", "cfanet_nr_koniq_res50-9a73138b.pth", "params",
                 {"semantic_model_name": "resnet50", "model_name": "cfanet_nr_koniq_res50", "use_ref": False}),
    "liqe": (None, "liqe_koniq.pt", "params", {"pretrained": False}),
}  # fmt: skip
# OpenAI's CLIP ViT-B/32 (LIQE's network), as its released state dict holds it
CLIP_VIT_B32 = {"embed_dim": 512, "image_resolution": 224, "vision_layers": 12, "vision_width": 768,
                "vision_patch_size": 32, "context_length": 77, "vocab_size": 49408, "transformer_width": 512,
                "transformer_heads": 8, "transformer_layers": 12}  # fmt: skip


def write_openai_clip(torch_home: Path) -> Path:
    """OpenAI's ViT-B-32.pt where pyiqa's CLIP loader downloads it (``$TORCH_HOME/hub/clip``), a TorchScript archive
    of random values. The loader checks the file's SHA-256 against OpenAI's, which no stand-in can pass: a test using it
    bypasses that one check (``pyiqa.archs.clip_model._download`` returns this file) and runs the rest as is."""
    from pyiqa.archs.clip_model import CLIP

    path = torch_home / "hub" / "clip" / "ViT-B-32.pt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        model = CLIP(**CLIP_VIT_B32).eval()  # released as a TorchScript archive, which the loader expects first
        inputs = (torch.rand(1, 3, 224, 224), torch.zeros(1, CLIP_VIT_B32["context_length"], dtype=torch.long))
        torch.jit.save(torch.jit.trace(model, inputs, check_trace=False), path)
    return path


def write_timm(hf_home: Path, model_name: str) -> Path:
    """The snapshot timm's ``pretrained=True`` reads from the Hub cache (``timm/<name>.<tag>``: model.safetensors)."""
    import timm
    from safetensors.torch import save_file

    model = timm.create_model(model_name, pretrained=False)
    repo = model.pretrained_cfg["hf_hub_id"]
    root = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / REVISION
    if not (snapshot / "model.safetensors").exists():
        snapshot.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, snapshot / "model.safetensors")
        _point_main_at(root)
    return snapshot


def write_pyiqa_checkpoint(torch_home: Path, name: str) -> Path:
    """pyiqa's released checkpoint of ``name`` as its downloader leaves it (``$TORCH_HOME/hub/pyiqa/<file>``): the
    arch's own state dict, random, in the checkpoint's nesting. Run where ``HF_HOME`` already points at the timm
    stand-in (the arch loads its timm network pretrained while it is built)."""
    import pyiqa.archs.liqe_arch
    import pyiqa.archs.maniqa_arch
    import pyiqa.archs.topiq_arch

    _, file, key, kwargs = PYIQA[name]
    path = torch_home / "hub" / "pyiqa" / file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        arch = {"maniqa": pyiqa.archs.maniqa_arch.MANIQA, "topiq_nr": pyiqa.archs.topiq_arch.CFANet,
                "liqe": pyiqa.archs.liqe_arch.LIQE}[name]  # fmt: skip
        state = arch(**{"pretrained": False, **kwargs}).state_dict()
        torch.save({key: state} if key else state, path)
    return path


# The VLM scorers' stand-ins: real network shapes, a tiny word-level tokenizer (the real vocabularies cannot be
# built offline; the embedding tables keep their real sizes)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|video_pad|>", "<s>", "<unk>", "<|image|>"]  # fmt: skip
WORDS = ["user", "assistant", "excellent", "good", "fair", "poor", "bad", "<answer>", "</answer>", "3.75", "USER:",
         "ASSISTANT:", "quality", "image", "the", "The", "is"]  # fmt: skip


def tiny_tokenizer(bos: bool = False):
    """A whitespace word-level tokenizer holding the chat and vision special tokens (BOS prepended if ``bos``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(SPECIALS)
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<|endoftext|>",
                                   eos_token="<|im_end|>", bos_token="<s>")  # fmt: skip


# Qwen2-VL's chat template, its image numbering (add_vision_id) included, without the default system message
CHAT = ("{% set image_count = namespace(value=0) %}{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}{% set image_count.value = image_count.value + 1 %}"
        "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
        "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")  # fmt: skip

# Qwen2.5-VL-7B (VisualQuality-R1-7B's network) as its config.json gives it; the preflight-size stand-in keeps every
# width and the vocabulary, and cuts the depth to 2 text and 2 vision blocks (1.6 B parameters instead of 8.3 B)
QWEN25_VL_7B_TEXT = {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                     "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
                     "max_position_embeddings": 128000, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
                     "tie_word_embeddings": False,
                     "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}}  # fmt: skip
QWEN25_VL_7B_VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                       "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                       "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]}  # fmt: skip
VLM_DEPTH = 2
VLM_REPOS = {"visualquality-r1": "TianheWu/VisualQuality-R1-7B", "deqa": "zhiyuanyou/DeQA-Score-Mix3"}


def _bf16_init(build):
    """``build()`` with bf16 as the default dtype (the releases' dtype; half the memory of building in fp32)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        torch.manual_seed(0)
        return build()
    finally:
        torch.set_default_dtype(default)


def write_vlm(hf_home: Path, name: str) -> Path:
    """A VLM scorer's Hub snapshot at its real widths and vocabulary, depth ``VLM_DEPTH``, random bf16 weights, with
    the tiny tokenizer and the real image processor settings: VisualQuality-R1 (Qwen2.5-VL-7B) or DeQA-Score
    (mPLUG-Owl2: LLaMA-2-7B, ViT-L/14 at 448, a 6-layer abstractor, pyiqa's config defaults)."""
    repo = VLM_REPOS[name]
    root = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / REVISION
    if (snapshot / "config.json").exists():
        return snapshot
    if name == "visualquality-r1":
        text = {**QWEN25_VL_7B_TEXT, "num_hidden_layers": VLM_DEPTH, "max_window_layers": VLM_DEPTH}
        vision = {**QWEN25_VL_7B_VISION, "depth": VLM_DEPTH, "fullatt_block_indexes": [VLM_DEPTH - 1]}
        save_qwen25_vl(snapshot, text, vision, dtype=torch.bfloat16)
    else:
        save_mplug_owl2(snapshot)
    _point_main_at(root)
    return snapshot


def _point_main_at(root: Path) -> None:
    """``refs/main`` of a cached Hub repo naming the ``REVISION`` snapshot: what an offline lookup resolves."""
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(REVISION)


def save_mplug_owl2(folder: Path, config: dict | None = None, image_size: int = 448) -> None:
    """A random mPLUG-Owl2 (pyiqa's, DeQA-Score's network), the tiny tokenizer (BOS first) and CLIP's image processor
    at ``image_size``, saved to ``folder``. Default: DeQA-Score's stand-in, pyiqa's config defaults (the real ones)
    ``VLM_DEPTH`` blocks deep in the LLaMA, the ViT and the abstractor, bf16; ``config``: other config arguments
    (a tiny model, fp32)."""
    from pyiqa.archs.q_align.configuration_mplug_owl2 import MPLUGOwl2Config
    from transformers import CLIPImageProcessor

    from asym.metrics.vlm import _mplug_owl2_class

    if config is None:
        depth = {"num_hidden_layers": VLM_DEPTH}
        config = {"num_hidden_layers": VLM_DEPTH, "visual_config": {"visual_model": depth, "visual_abstractor": depth}}
        model = _bf16_init(lambda: _mplug_owl2_class()(MPLUGOwl2Config(**config)))
    else:
        torch.manual_seed(0)
        model = _mplug_owl2_class()(MPLUGOwl2Config(**config))
    model.save_pretrained(folder)
    tiny_tokenizer(bos=True).save_pretrained(folder)
    crop = {"height": image_size, "width": image_size}
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size=crop).save_pretrained(folder)


def save_qwen25_vl(folder, text: dict, vision: dict, dtype=torch.float32, image_size: dict | None = None) -> None:
    """A random Qwen2.5-VL (``text`` / ``vision`` config entries) with the tiny tokenizer's special-token ids, and
    its processor (the chat template, left padding; image and video processors at ``image_size``, else their
    defaults), saved to ``folder``: the tiny test model and VisualQuality-R1's stand-in alike."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = tiny_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    text = {**text, "eos_token_id": ids("<|im_end|>"), "pad_token_id": ids("<|endoftext|>")}
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                              video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                              vision_end_token_id=ids("<|vision_end|>"))  # fmt: skip
    build = lambda: Qwen2_5_VLForConditionalGeneration(config)  # noqa: E731
    if dtype == torch.bfloat16:
        model = _bf16_init(build)
    else:
        torch.manual_seed(0)
        model = build()
    sizes = {"size": image_size} if image_size else {}
    processor = Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(**sizes), tokenizer=tokenizer,
                                    video_processor=Qwen2VLVideoProcessor(**sizes), chat_template=CHAT)  # fmt: skip
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
