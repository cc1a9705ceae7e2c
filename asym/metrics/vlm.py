"""No-reference quality scorers built on vision-language models that pyiqa lacks (the paper's Table 1).

* ``VisualQualityR1``: Qwen2.5-VL (``TianheWu/VisualQuality-R1-7B``) asked for a 1..5 rating, decoded greedily; the
  score is the first number of the **last** ``<answer>...</answer>`` block (``parse_answer``).
* ``DeQAScore``: mPLUG-Owl2 (``zhiyuanyou/DeQA-Score-Mix3``), read out as Q-Align: softmax over the logits of
  ``excellent, good, fair, poor, bad`` at the last prompt position, dotted with ``[5, 4, 3, 2, 1]`` (``level_score``).

Both take (B, 3, H, W) images in [0, 1] and return (B,) float scores, higher is better; they run in bf16 on CUDA and
fp32 on CPU, and ``from_pretrained`` raises ``asym.core.errors.MetricUnavailable`` (with the reason) when the weights or
the code they need cannot be obtained; nothing falls back silently.

Unparsable answers: a VisualQuality-R1 reply without a usable ``<answer>`` number scores **NaN**, never a default.
Each call sets ``last_status`` (``"ok"`` or ``"unparsable: <reply>"`` per image) and warns an
``UnparsableAnswerWarning``; ``asym.metrics.correlations`` then refuses the NaN scores with a ``UserError`` naming
their indices, so they cannot enter a correlation unnoticed, and ``evaluate.py sr`` records that status for the
image and its model (no number in the table, the reason beside it).

Each scorer's ``identity`` (``model_identity``: Hub id and revision) is what a 1..100 map of its scores belongs to.
"""

from __future__ import annotations

import math
import re
import warnings

import torch

from ..core.errors import MetricUnavailable, UserError, summarize

# The authors' "Non-Thinking Inference" (their advice for VisualQuality-R1 as an evaluation model): PROMPT and
# QUESTION_TEMPLATE verbatim from README.md of github.com/TianheWu/VisualQuality-R1 at commit
# a16dcdb64eea03a27afdb411d43cc1c9d723a1b2 (2025-10-16), the text sent being QUESTION_TEMPLATE.format(Question=PROMPT)
# after the image, through apply_chat_template(..., add_generation_prompt=True, add_vision_id=True) (Qwen2.5-VL's
# template then writes "Picture 1: " before the image). Not theirs: greedy decoding (they sample, top_k 50) and NaN for
# a reply without a number (they draw a random 1..5 integer), so that a score is reproducible and never made up.
_VISUALQUALITY_R1_QUESTION = (
    "You are doing the image quality assessment task. Here is the question: "
    "What is your overall rating on the quality of this picture? The rating should be a float between 1 and 5, "
    "rounded to two decimal places, with 1 representing very poor quality and 5 representing excellent quality."
)
_VISUALQUALITY_R1_TEMPLATE = (
    "{Question} Please only output the final answer with only one score in <answer> </answer> tags."
)
PROMPT_VISUALQUALITY_R1 = _VISUALQUALITY_R1_TEMPLATE.format(Question=_VISUALQUALITY_R1_QUESTION)
PROMPT_DEQA = "USER: How would you rate the quality of this image?\n<|image|>\nASSISTANT: The quality of the image is"
LEVELS = ("excellent", "good", "fair", "poor", "bad")
LEVEL_WEIGHTS = (5.0, 4.0, 3.0, 2.0, 1.0)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_TOKEN_INDEX = -200  # mPLUG-Owl2's placeholder id where the image features are spliced in
DEFAULT_VISUALQUALITY_R1 = "TianheWu/VisualQuality-R1-7B"
DEFAULT_DEQA = "zhiyuanyou/DeQA-Score-Mix3"

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")


class UnparsableAnswer(ValueError):
    """A model reply holds no ``<answer>`` block with a number in it."""


class UnparsableAnswerWarning(UserWarning):
    """Some images of a batch got no parsable answer: their scores are NaN (see the scorer's ``last_status``)."""


def parse_answer(text: str) -> float:
    """The first number (optional sign, int or float) of the last ``<answer>...</answer>`` block of ``text``.

    Raises:
        UnparsableAnswer: no answer block, or the last one holds no number.
    """
    blocks = _ANSWER.findall(text)
    if not blocks:
        raise UnparsableAnswer(f"no <answer>...</answer> block in {text[:200]!r}")
    number = _NUMBER.search(blocks[-1])
    if number is None:
        raise UnparsableAnswer(f"no number in the last answer block {blocks[-1][:200]!r}")
    return float(number.group())


def _dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA, fp32 elsewhere."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _to_pil(images: torch.Tensor) -> list:
    """(B, 3, H, W) floats in [0, 1] -> B RGB PIL images (rounded to 8 bits)."""
    from PIL import Image

    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) RGB images, got shape {tuple(images.shape)}")
    arrays = (images.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a, "RGB") for a in arrays]


def model_identity(what: str, model) -> str:
    """``"<what> <Hub id or folder> revision <commit>"``: the weights a transformers ``model`` was loaded from, what a
    1..100 map of its scores is fitted for (``calibration.scorer_identity``). The revision is the Hub commit
    transformers recorded; a local folder outside the Hub cache has none, and its weight files' names, sizes and
    modification times stand in (hashing 15 GB of weights would take longer than scoring a test set)."""
    import hashlib
    import os

    config = getattr(model, "config", None)
    source = str(getattr(config, "_name_or_path", "") or "")
    revision = getattr(config, "_commit_hash", None)
    if not revision and source and not os.path.isdir(source):  # a Hub id whose config kept no commit (Qwen2.5-VL's)
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, "config.json")  # the snapshot refs/main names: what was loaded
        revision = os.path.basename(os.path.dirname(cached)) if isinstance(cached, str) else None
    if not revision and source and os.path.isdir(source):
        source = os.path.abspath(source)
        digest = hashlib.sha256()
        for name in sorted(os.listdir(source)):
            if name.endswith((".safetensors", ".bin", ".pt", ".pth")):
                stat = os.stat(os.path.join(source, name))
                digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        revision = f"local files {digest.hexdigest()[:16]}"
    return f"{what} {source or type(model).__name__} revision {revision or 'unknown'}"


def _unavailable(what: str, source: str, err: BaseException):
    """The ``MetricUnavailable`` for a model that could not be loaded from ``source``."""

    reason = summarize(err)
    return MetricUnavailable(f"{what} could not be loaded from {source!r} ({reason})", reason)


# --- VisualQuality-R1 ------------------------------------------------------------------------------------------


class VisualQualityR1:
    """VisualQuality-R1 (Qwen2.5-VL): greedy decoding of a 1..5 rating, read by ``parse_answer``.

    Args:
        model: a ``Qwen2_5_VLForConditionalGeneration`` (or anything with its ``generate``).
        processor: its ``AutoProcessor`` (chat template, tokenizer with left padding, image processor).
        max_new_tokens: bound on the generated reply (the reasoning plus the answer).
    """

    lower_better = False

    def __init__(self, model, processor, max_new_tokens: int = 256, engine=None):
        self.model, self.processor, self.max_new_tokens, self.engine = model, processor, max_new_tokens, engine
        self.processor.tokenizer.padding_side = "left"
        self.identity = model_identity("VisualQuality-R1", model)
        self.last_status: list[str] = []
        self.last_text: list[str] = []

    @classmethod
    def from_pretrained(
        cls,
        source: str = DEFAULT_VISUALQUALITY_R1,
        device: str | torch.device = "cpu",
        max_new_tokens: int = 256,
        backend: str = "transformers",
    ) -> VisualQualityR1:
        """Model and processor from a Hub id or folder; ``MetricUnavailable`` if they cannot be obtained.

        ``backend="vllm"``: replies generated by vLLM instead (an optional fast path on GPUs, where the user installed
        vllm; greedy, the same chat-templated prompt; the transformers model is then not loaded, only its config for
        the identity). The default, ``"transformers"``, is the tested one."""
        if backend not in ("transformers", "vllm"):
            raise UserError(f"VisualQuality-R1 backend {backend!r}: choose transformers or vllm")
        device = torch.device(device)
        engine = _vllm_engine(source, max_new_tokens) if backend == "vllm" else None
        try:
            from transformers import AutoConfig, AutoProcessor, Qwen2_5_VLForConditionalGeneration

            processor = AutoProcessor.from_pretrained(source, padding_side="left")
            if engine is not None:
                import types

                model = types.SimpleNamespace(config=AutoConfig.from_pretrained(source))  # what the identity reads
                return cls(model, processor, max_new_tokens, engine)
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(source, dtype=_dtype(device))
        except Exception as err:  # noqa: BLE001 - missing weights, no network, foreign folder
            raise _unavailable("VisualQuality-R1", source, err) from err
        return cls(model.to(device).eval(), processor, max_new_tokens)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _prompt(self) -> str:
        """The authors' question with one image, through the processor's chat template."""
        message = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT_VISUALQUALITY_R1}]}]
        return self.processor.apply_chat_template(message, tokenize=False, add_generation_prompt=True,
                                                  add_vision_id=True)  # fmt: skip

    def _inputs(self, images: torch.Tensor):
        """Chat-templated prompts with one image each, batched with left padding."""
        pils = _to_pil(images)
        return self.processor(text=[self._prompt()] * len(pils), images=pils, padding=True, return_tensors="pt")

    def generate_text(self, images: torch.Tensor) -> list[str]:
        """The greedy replies (without the prompt, special tokens skipped) for (B, 3, H, W) images in [0, 1]."""
        if self.engine is not None:  # vLLM: one request per image, the same chat-templated prompt
            llm, params = self.engine
            requests = [{"prompt": self._prompt(), "multi_modal_data": {"image": pil}} for pil in _to_pil(images)]
            return [request.outputs[0].text for request in llm.generate(requests, params)]
        inputs = self._inputs(images).to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(_dtype(self.device))
        with torch.no_grad():
            out = self.model.generate(
                **inputs, do_sample=False, max_new_tokens=self.max_new_tokens, temperature=None, top_p=None, top_k=None
            )
        new = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new, skip_special_tokens=True)

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """(B,) ratings; NaN where the reply is unparsable (``last_status`` says why, with an
        ``UnparsableAnswerWarning``)."""
        self.last_text = self.generate_text(images)
        scores, status = [], []
        for text in self.last_text:
            try:
                scores.append(parse_answer(text))
                status.append("ok")
            except UnparsableAnswer as err:
                scores.append(math.nan)
                status.append(f"unparsable: {err}")
        self.last_status = status
        bad = [i for i, s in enumerate(status) if s != "ok"]
        if bad:
            warnings.warn(
                UnparsableAnswerWarning(
                    f"VisualQuality-R1: {len(bad)} of {len(status)} replies unparsable (batch index "
                    f"{', '.join(map(str, bad))}); scored NaN: {status[bad[0]]}"
                ),
                stacklevel=2,
            )
        return torch.tensor(scores, dtype=torch.float32)

    __call__ = score


# --- DeQA-Score ------------------------------------------------------------------------------------------------


def _vllm_engine(source: str, max_new_tokens: int):
    """(vLLM's ``LLM`` of ``source``, greedy ``SamplingParams``); ``MetricUnavailable`` where vllm is not installed."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError as err:
        raise MetricUnavailable("VisualQuality-R1 with the vllm backend: vLLM is not installed (pip install vllm, on a "
                                "CUDA machine; the default transformers backend needs nothing more)",
                                "vllm not installed") from err  # fmt: skip
    llm = LLM(model=source, limit_mm_per_prompt={"image": 1}, dtype="bfloat16")
    return llm, SamplingParams(temperature=0.0, max_tokens=max_new_tokens)


def level_score(logits: torch.Tensor, level_ids: list[int] | torch.Tensor) -> torch.Tensor:
    """Q-Align read-out: ``softmax(logits[:, level_ids]) @ [5, 4, 3, 2, 1]`` in float32.

    Args:
        logits: (B, V) next-token logits at the last prompt position.
        level_ids: token ids of ``excellent, good, fair, poor, bad``, in that order.
    """
    ids = torch.as_tensor(level_ids, device=logits.device, dtype=torch.long)
    if ids.numel() != len(LEVEL_WEIGHTS):
        raise ValueError(f"need {len(LEVEL_WEIGHTS)} level ids ({', '.join(LEVELS)}), got {ids.numel()}")
    probs = torch.softmax(logits.float()[:, ids], dim=-1)
    return probs @ torch.tensor(LEVEL_WEIGHTS, device=logits.device)


def level_token_ids(tokenizer) -> list[int]:
    """Ids of the five level words, as pyiqa's Q-Align: the last id of tokenizing each word (the id after the BOS
    for LLaMA tokenizers that prepend one, the only id for those that do not)."""
    return [ids[-1] for ids in tokenizer(list(LEVELS))["input_ids"]]


def pad_to_square(image, fill: tuple[float, float, float] = CLIP_MEAN):
    """A PIL image centred on a square canvas of its longer side, filled with ``fill`` (0..1, as 8-bit
    ``int(255 * c)``), as mPLUG-Owl2's ``expand2square``."""
    from PIL import Image

    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), tuple(int(c * 255) for c in fill))
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def image_prompt_ids(prompt: str, tokenizer) -> torch.Tensor:
    """Token ids of ``prompt`` with ``<|image|>`` replaced by ``IMAGE_TOKEN_INDEX`` (mPLUG-Owl2's
    ``tokenizer_image_token``: one BOS at the start, none after the image)."""
    chunks = [tokenizer(chunk).input_ids if chunk else [] for chunk in prompt.split("<|image|>")]
    ids, offset = [], 0
    if chunks and chunks[0] and chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    for i, chunk in enumerate(chunks):
        if i:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(chunk[offset:])
    return torch.tensor(ids, dtype=torch.long)


class DeQAScore:
    """DeQA-Score (mPLUG-Owl2): Q-Align's level read-out at the end of ``PROMPT_DEQA``.

    Args:
        model: called as ``model(input_ids=..., images=...)``, returning logits (B, T, V) or an object with ``.logits``.
        tokenizer: the LLaMA tokenizer of the model.
        image_processor: its ``CLIPImageProcessor``.
    """

    lower_better = False

    def __init__(self, model, tokenizer, image_processor):
        self.model, self.tokenizer, self.image_processor = model, tokenizer, image_processor
        self.level_ids = level_token_ids(tokenizer)
        self.input_ids = image_prompt_ids(PROMPT_DEQA, tokenizer)
        self.identity = model_identity("DeQA-Score", model)

    @classmethod
    def from_pretrained(cls, source: str = DEFAULT_DEQA, device: str | torch.device = "cpu") -> DeQAScore:
        """Weights, tokenizer and image processor from a Hub id or folder, on pyiqa's vendored mPLUG-Owl2
        architecture (no ``trust_remote_code``); ``MetricUnavailable`` if any of them cannot be obtained."""
        device = torch.device(device)
        try:
            from transformers import AutoTokenizer, CLIPImageProcessor

            model_class = _mplug_owl2_class()
            model = model_class.from_pretrained(source, dtype=_dtype(device))
            tokenizer = AutoTokenizer.from_pretrained(source)
            image_processor = CLIPImageProcessor.from_pretrained(source)
        except Exception as err:  # noqa: BLE001 - missing weights, no network, vendored code incompatible
            raise _unavailable("DeQA-Score", source, err) from err
        return cls(model.to(device).eval(), tokenizer, image_processor)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def pixel_values(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) CLIP-processed, square-padded images."""
        pils = [pad_to_square(p, tuple(self.image_processor.image_mean)) for p in _to_pil(images)]
        return self.image_processor(pils, return_tensors="pt")["pixel_values"]

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """(B,) scores in [1, 5] for (B, 3, H, W) images in [0, 1]."""
        device = self.device
        pixels = self.pixel_values(images).to(device, _dtype(device))
        ids = self.input_ids.to(device)[None].repeat(len(pixels), 1)
        with torch.no_grad():
            out = self.model(input_ids=ids, images=pixels)
        logits = out if isinstance(out, torch.Tensor) else out["logits"] if isinstance(out, dict) else out.logits
        return level_score(logits[:, -1], self.level_ids).cpu()

    __call__ = score


def _invert_attention_mask(self, mask: torch.Tensor) -> torch.Tensor:
    """transformers 4's ``ModuleUtilsMixin.invert_attention_mask``, which the vendored visual abstractor calls: a
    (B, T) or (B, S, T) keep-mask as an additive mask, 0 where kept and the dtype's minimum where masked."""
    extended = mask[:, None, :, :] if mask.dim() == 3 else mask[:, None, None, :]
    extended = extended.to(self.dtype)
    return (1.0 - extended) * torch.finfo(self.dtype).min


def _mplug_owl2_class():
    """pyiqa's vendored ``MPLUGOwl2LlamaForCausalLM``, without the Hub tokenizer load of its ``__init__``.

    Importing it replaces transformers' LLaMA attention and forward globally (pyiqa's ``replace_llama_modality_
    adaptive``), so it is imported only when a DeQA model is actually loaded. On transformers 5 the visual abstractor
    gets back the ``invert_attention_mask`` method it calls (``_invert_attention_mask``).
    """
    from pyiqa.archs.q_align import modeling_mplug_owl2 as owl
    from pyiqa.archs.q_align import visual_encoder

    abstractor = visual_encoder.MplugOwlVisualAbstractorModel
    if not hasattr(abstractor, "invert_attention_mask"):  # transformers 5 removed it from ModuleUtilsMixin
        abstractor.invert_attention_mask = _invert_attention_mask

    class MPLUGOwl2ForScoring(owl.MPLUGOwl2LlamaForCausalLM):
        def __init__(self, config):
            super(owl.LlamaForCausalLM, self).__init__(config)  # skip LlamaForCausalLM's init, as upstream
            self.model = owl.MPLUGOwl2LlamaModel(config)
            self.lm_head = torch.nn.Linear(config.hidden_size, config.vocab_size, bias=False)
            self.post_init()

    return MPLUGOwl2ForScoring


__all__ = [
    "CLIP_MEAN",
    "DeQAScore",
    "LEVELS",
    "UnparsableAnswer",
    "UnparsableAnswerWarning",
    "VisualQualityR1",
    "image_prompt_ids",
    "level_score",
    "level_token_ids",
    "model_identity",
    "pad_to_square",
    "parse_answer",
]
