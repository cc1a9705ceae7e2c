"""A study's preflight, part one: every dataset and weight source it needs, resolved before anything trains, all that
is missing reported at once (``check_requirements``): folders of images, IQA releases read as their loaders read
them, Hub models with every file their loaders open (``missing_hub_files``: weights and every shard, tokenizer,
processor, chat template), nothing decoded or loaded.

``scripts/reproduce_paper.py --preflight`` drives it; part two, what each stage costs, is ``asym.study.costs``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import UserError, summarize

OK, MISSING = "ok", "missing"
PREFLIGHT_FILE = "preflight.json"


@dataclass
class Requirement:
    """One source a study needs: ``check()`` raises ``UserError`` (or ``OSError``) when it cannot be had."""

    name: str
    kind: str  # "dataset", "backbone weights", "scorer"
    where: str  # where it was looked for: a folder, a Hub id, a cache
    expected: str  # what should be there, for the person who will put it there
    check: Callable[[], None]
    blocking: bool = True  # False: the chain goes on without it (reported, not refused)


class MissingFiles(FileNotFoundError):
    """Some files of a source are not there: its status names them (``missing: a, b``)."""

    def __init__(self, files: list[str]):
        super().__init__(", ".join(files))
        self.files = files


def check_requirements(requirements: list[Requirement]) -> list[dict]:
    """Every requirement checked (none stops the others): a row each with its status, ``ok`` or why not."""
    rows = []
    for req in requirements:
        try:
            req.check()
            status = OK
        except (UserError, OSError, RuntimeError, ValueError) as err:
            if isinstance(err, MissingFiles):
                status = f"{MISSING}: {err}"
            else:
                status = MISSING if isinstance(err, FileNotFoundError) else f"unusable: {summarize(err)}"
        rows.append({"name": req.name, "kind": req.kind, "where": req.where, "expected": req.expected,
                     "status": status, "blocking": req.blocking})  # fmt: skip
    return rows


def missing_table(rows: list[dict]) -> str:
    """The rows that are not ok, as a Markdown table (what, where it was looked for, what is expected there)."""
    lines = ["| what | kind | looked for in | expected | status |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['name']} | {r['kind']} | {r['where']} | {r['expected']} | {r['status']} |"
              for r in rows if r["status"] != OK]  # fmt: skip
    return "\n".join(lines)


def folder_of_images(path: str) -> Callable[[], None]:
    """A check that ``path`` is a folder holding image files (listed, not decoded: a preflight reads no pixels)."""
    from ..core.images import IMAGE_EXTENSIONS, image_files

    def check() -> None:
        if not os.path.isdir(path):
            raise FileNotFoundError(path)
        if not image_files(path):
            raise UserError(f"{path} holds no {'/'.join(IMAGE_EXTENSIONS)} file")

    return check


def iqa_dataset(path: str, mode: str) -> Callable[[], None]:
    """A check that ``path`` is an IQA release the FR (``mode="fr"``) or NR loader reads (score files and image paths;
    no pixels decoded)."""

    def check() -> None:
        if not os.path.isdir(path):
            raise FileNotFoundError(path)
        if mode == "fr":
            from ..iqa.data import load_fr_dataset

            load_fr_dataset(path)
        else:
            from ..iqa.data import load_nr_dataset

            load_nr_dataset(path)

    return check


# Files of a Hub model repo that from_pretrained of its model, tokenizer and processors reads
HUB_WEIGHTS = (("model.safetensors.index.json", "model.safetensors"),
               ("pytorch_model.bin.index.json", "pytorch_model.bin"))  # fmt: skip
HUB_VOCABULARIES = ("tokenizer.json", "tokenizer.model", "vocab.json")  # a tokenizer's vocabulary: one of them
HUB_PROCESSORS = ("preprocessor_config.json", "processor_config.json")  # the image processor's settings: one of them
HUB_CHAT_TEMPLATES = ("chat_template.jinja", "chat_template.json")  # or a "chat_template" in tokenizer_config.json
HUB_LOADED = ("config.json", "generation_config.json", "tokenizer_config.json", "special_tokens_map.json",
              "added_tokens.json", "merges.txt", "video_preprocessor_config.json", *HUB_VOCABULARIES, *HUB_PROCESSORS,
              *HUB_CHAT_TEMPLATES)  # fmt: skip
HUB_DOWNLOAD = ["*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken"]  # with the weights' files: what --download gets


def missing_hub_files(repo: str, listing: list[str] | None = None, chat_template: bool = False) -> list[str]:
    """The files a model of Hub ``repo`` needs (config, weights: every shard its index names, tokenizer, processor,
    with ``chat_template`` a chat template) that do not resolve in the local Hub cache, none of them loaded: named,
    or described where their names are not known. ``listing``: the repo's file list (from the Hub, when online);
    offline the names are those of the cached snapshot, which a partial download leaves short."""
    from huggingface_hub import try_to_load_from_cache

    def local(name: str) -> str | None:
        path = try_to_load_from_cache(repo, name)
        return path if isinstance(path, str) else None

    config = local("config.json")
    names = set(listing or ())
    if config:  # the snapshot refs/main names: what an offline from_pretrained reads
        snapshot = os.path.dirname(config)
        names |= {os.path.relpath(os.path.join(root, f), snapshot) for root, _, files in os.walk(snapshot)
                  for f in files}  # fmt: skip
    needed, unnamed = ["config.json", *sorted(names & set(HUB_LOADED))], []
    for index, single in HUB_WEIGHTS:  # transformers' order: safetensors first, an index before a single file
        if index in names:
            needed.append(index)
            if path := local(index):
                with open(path) as file:
                    needed += sorted(set(json.load(file).get("weight_map", {}).values()))
            else:
                unnamed.append(f"the shards {index} names")
            break
        if single in names:
            needed.append(single)
            break
    else:
        unnamed.append("the weights (model.safetensors, or model.safetensors.index.json and every shard it names)")
    if not names & set(HUB_VOCABULARIES):
        unnamed.append("a tokenizer (tokenizer.json or tokenizer.model, with tokenizer_config.json)")
    if not names & set(HUB_PROCESSORS):
        unnamed.append("the image processor (preprocessor_config.json)")
    if chat_template and not names & set(HUB_CHAT_TEMPLATES) and not _has_chat_template(local("tokenizer_config.json")):
        unnamed.append("a chat template (chat_template.jinja or chat_template.json)")
    return [name for name in dict.fromkeys(needed) if not local(name)] + unnamed


def _has_chat_template(tokenizer_config: str | None) -> bool:
    """Whether a tokenizer_config.json (its path, None: not there) holds a chat template."""
    if tokenizer_config is None:
        return False
    with open(tokenizer_config) as file:
        return bool(json.load(file).get("chat_template"))


def hub_model(repo: str, chat_template: bool = False, download: bool = False) -> Callable[[], None]:
    """A check that every file a model of Hub ``repo`` loads resolves locally (``missing_hub_files``; none loaded:
    a 7B model is not built to check it). Where the Hub answers, its file list says what the repo holds, and with
    ``download`` the files the model needs are fetched first (all but the weights of the other format)."""

    def check() -> None:
        from ..core.offline import hub_reachable

        listing = None
        if hub_reachable():
            from huggingface_hub import list_repo_files, snapshot_download

            try:
                listing = list_repo_files(repo)
                if download:
                    weights = "*.safetensors" if any(n.endswith(".safetensors") for n in listing) else "*.bin"
                    snapshot_download(repo, allow_patterns=[weights, *HUB_DOWNLOAD])
            except Exception as err:  # noqa: BLE001 - gated, no such repo, an HTTP error: one line either way
                raise UserError(f"Hub {repo}: {summarize(err)}") from err
        missing = missing_hub_files(repo, listing, chat_template)
        if missing:
            raise MissingFiles(missing)

    return check
