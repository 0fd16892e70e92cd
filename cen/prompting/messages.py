"""Chat messages of the two paradigms from a template and a tile's contexts, and their hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

from cen.prompting.images import data_url
from cen.prompting.templates import DEFAULT_TEMPLATES, PromptError, PromptTemplate, load_template


def messages_hash(messages: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 hex of the canonical JSON (sorted keys, no spaces, UTF-8) of a message list."""
    blob = json.dumps(list(messages), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def gpt35_messages(context: str, template: str | PromptTemplate = DEFAULT_TEMPLATES["gpt35"]) -> list[dict[str, Any]]:
    """``[system, user]`` messages of the GPT-3.5 paradigm for one tile's ``gpt35_context``."""
    tpl = load_template(template) if isinstance(template, str) else template
    if tpl.paradigm != "gpt35":
        raise PromptError(f"template {tpl.name!r} is a {tpl.paradigm} template, not gpt35")
    if not isinstance(context, str) or not context.strip():
        raise PromptError("gpt35 context is empty; compute it with cen.stats.gpt35_context")
    return [
        {"role": "system", "content": tpl.texts["system.txt"]},
        {"role": "user", "content": tpl.texts["user.txt"].replace("{context}", context)},
    ]


def gpt4v_text(blocks: Sequence[tuple[str, str]], template: str | PromptTemplate = DEFAULT_TEMPLATES["gpt4v"],
               *, rgb: bool = False) -> str:
    """The text part of a vision request: intro (+ RGB note), per-tile blocks, instructions (with
    ``fixed_first`` in the manifest: intro, instructions, then the per-tile blocks).

    ``blocks``: per tile ``(class_block, region_block)`` of :func:`cen.stats.gpt4v_context`,
    exactly as many as the template's ``tiles_per_request``.
    """
    tpl = load_template(template) if isinstance(template, str) else template
    if tpl.paradigm != "gpt4v":
        raise PromptError(f"template {tpl.name!r} is a {tpl.paradigm} template, not gpt4v")
    if len(blocks) != tpl.tiles_per_request:
        raise PromptError(f"template {tpl.name!r} takes {tpl.tiles_per_request} tiles per request, got {len(blocks)}")
    ordinals = tpl.manifest.get("ordinals", [""] * tpl.tiles_per_request)
    fixed = tpl.texts["intro.txt"] + (tpl.texts["rgb_note.txt"] if rgb else "")
    blocks_text = "".join(
        tpl.texts["per_image.txt"]
        .replace("{ordinal}", ordinal)
        .replace("{class_block}", class_block)
        .replace("{region_block}", region_block)
        for ordinal, (class_block, region_block) in zip(ordinals, blocks)
    )
    if tpl.manifest.get("fixed_first"):  # all fixed text before the tiles' statistics (provider prompt caching)
        return fixed + tpl.texts["instructions.txt"] + blocks_text
    return fixed + blocks_text + tpl.texts["instructions.txt"]


def gpt4v_messages(
    blocks: Sequence[tuple[str, str]],
    images: Sequence[bytes],
    template: str | PromptTemplate = DEFAULT_TEMPLATES["gpt4v"],
    *,
    compat: bool = False,
    rgb_images: Sequence[bytes] | None = None,
    detail: str | None = None,
) -> list[dict[str, Any]]:
    """One user message: the :func:`gpt4v_text` and the label-map images (PNG bytes, one per tile).

    ``compat=True`` labels the PNGs ``image/jpeg`` as the release did; otherwise ``image/png``.
    ``rgb_images`` (one per tile) are placed right after each label map. ``detail`` adds the
    ``detail`` field (the release sent none).
    """
    tpl = load_template(template) if isinstance(template, str) else template
    if len(images) != len(blocks):
        raise PromptError(f"{len(blocks)} tiles but {len(images)} label-map images")
    if rgb_images is not None and len(rgb_images) != len(images):
        raise PromptError(f"{len(images)} label maps but {len(rgb_images)} RGB pictures")
    image_spec = tpl.manifest.get("image", {})
    mime = image_spec.get("mime_compat", "image/jpeg") if compat else image_spec.get("mime", "image/png")
    content: list[dict[str, Any]] = [{"type": "text", "text": gpt4v_text(blocks, tpl, rgb=rgb_images is not None)}]

    def part(png: bytes, m: str) -> dict[str, Any]:
        url: dict[str, Any] = {"url": data_url(png, m)}
        if detail is not None:
            url["detail"] = detail
        return {"type": "image_url", "image_url": url}

    for k, png in enumerate(images):
        content.append(part(png, mime))
        if rgb_images is not None:
            content.append(part(rgb_images[k], "image/png"))
    return [{"role": "user", "content": content}]

