"""Prompt requests for the tiles of a stats table: which tiles, the exact messages, provenance."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from cen.prompting.images import _require, image_hash, label_map_png, rgb_png
from cen.prompting.messages import gpt4v_messages, gpt35_messages, messages_hash
from cen.prompting.templates import DEFAULT_TEMPLATES, SINGLE_TILE_VISION_TEMPLATE, PromptError, PromptTemplate, load_template


@dataclass
class PromptRequest:
    """One chat-completion request: which tiles it covers, the exact messages and their provenance."""

    request_id: str
    """``{paradigm}:{tile_id}`` or ``{paradigm}:{id1}+{id2}+...`` (unique within a run)."""
    paradigm: str
    tile_ids: tuple[str, ...]
    template: str
    template_version: str
    model: str
    max_tokens: int
    messages: list[dict[str, Any]]
    messages_hash: str
    image_hashes: tuple[str, ...] = ()
    region_counts: np.ndarray | None = field(default=None, repr=False)
    """``(n_tiles, 6, 12)`` counts for the offline template backend (None if not available)."""


def _make_request(paradigm: str, tile_ids: Sequence[str], tpl: PromptTemplate, model: str | None,
                  max_tokens: int | None, messages: list[dict[str, Any]], image_hashes: Sequence[str] = (),
                  counts: np.ndarray | None = None) -> PromptRequest:
    return PromptRequest(
        request_id=f"{paradigm}:{'+'.join(tile_ids)}", paradigm=paradigm, tile_ids=tuple(tile_ids),
        template=tpl.name, template_version=tpl.tag, model=model or tpl.model,
        max_tokens=int(max_tokens or tpl.max_tokens), messages=messages,
        messages_hash=messages_hash(messages), image_hashes=tuple(image_hashes), region_counts=counts,
    )


_PATCH_RE = re.compile(r"^(?P<parent>.+)_patch(?P<ij>[01][01])$")


def group_tiles(tile_ids: Sequence[str], size: int = 4) -> list[tuple[str, ...]]:
    """Group tiles for multi-tile requests.

    The four patches of one 512-px tile (``..._patch00`` ... ``_patch11``) form one group in
    patch order, as in the release; the remaining tiles are grouped in table order, ``size`` at
    a time; a last incomplete group is returned as it is (callers send it one tile per request).
    """
    ids = [str(t) for t in tile_ids]
    by_parent: dict[str, dict[str, str]] = {}
    for t in ids:
        m = _PATCH_RE.match(t)
        if m:
            by_parent.setdefault(m["parent"], {})[m["ij"]] = t
    groups: list[tuple[str, ...]] = []
    used: set[str] = set()
    if size == 4:
        for t in ids:
            m = _PATCH_RE.match(t)
            if m and t not in used and len(by_parent[m["parent"]]) == 4:
                g = tuple(by_parent[m["parent"]][ij] for ij in ("00", "01", "10", "11"))
                groups.append(g)
                used.update(g)
    rest = [t for t in ids if t not in used]
    groups.extend(tuple(rest[i:i + size]) for i in range(0, len(rest), size))
    return groups


def _counts_of(stats: pd.DataFrame) -> np.ndarray | None:
    try:
        from cen.stats import counts_from_table

        return counts_from_table(stats)
    except (ImportError, KeyError):
        return None


def build_requests(
    stats: pd.DataFrame,
    paradigm: str = "gpt35",
    *,
    template: str | None = None,
    model: str | None = None,
    max_tokens: int | None = None,
    compat: bool | None = None,
    label_maps: Mapping[str, np.ndarray] | None = None,
    rgb: Mapping[str, np.ndarray] | None = None,
    source: str = "stats table",
) -> list[PromptRequest]:
    """Requests for every tile of a ``stats.parquet`` table.

    ``gpt35``: one request per tile from column ``gpt35_context``. ``gpt4v``: needs
    ``label_maps`` (tile id -> ``(H, W)`` indices) and the columns ``gpt4v_class_block`` /
    ``gpt4v_region_block``; four tiles per request with the release template (see
    :func:`group_tiles`; a leftover group of fewer than four goes one tile per request with the
    single-tile template :data:`SINGLE_TILE_VISION_TEMPLATE`), one per request with ``template="cen-gpt4v-single-v2"``. ``rgb``
    (tile id -> ``(H, W, 3)`` uint8) adds the true-colour pictures. ``compat`` defaults to the
    table's ``compat`` column (release MIME label) or False.
    """
    if paradigm not in DEFAULT_TEMPLATES:
        raise PromptError(f"unknown paradigm {paradigm!r}; expected 'gpt35' or 'gpt4v'")
    tpl = load_template(template or DEFAULT_TEMPLATES[paradigm])
    if tpl.paradigm != paradigm:
        raise PromptError(f"template {tpl.name!r} is a {tpl.paradigm} template, not {paradigm}")
    _require(stats, ["tile_id"], source)
    ids = stats["tile_id"].astype(str).tolist()
    counts = _counts_of(stats)
    row_of = {t: i for i, t in enumerate(ids)}
    if compat is None:
        compat = bool(stats["compat"].all()) if "compat" in stats.columns and len(stats) else False
    out: list[PromptRequest] = []
    if paradigm == "gpt35":
        _require(stats, ["gpt35_context"], source)
        for i, (t, ctx) in enumerate(zip(ids, stats["gpt35_context"])):
            if not isinstance(ctx, str) or not ctx.strip():
                raise PromptError(f"{source}: tile {t!r} has an empty 'gpt35_context'")
            c = counts[i : i + 1] if counts is not None else None
            out.append(_make_request("gpt35", [t], tpl, model, max_tokens, gpt35_messages(ctx, tpl), counts=c))
        return out

    _require(stats, ["gpt4v_class_block", "gpt4v_region_block"], source)
    if label_maps is None:
        raise PromptError("gpt4v prompts need the label maps (label_maps={tile_id: (H, W) indices})")
    single = load_template(SINGLE_TILE_VISION_TEMPLATE) if tpl.tiles_per_request != 1 else tpl
    step = int(tpl.manifest.get("image", {}).get("step", 2))
    for group in group_tiles(ids, tpl.tiles_per_request):
        use = tpl if len(group) == tpl.tiles_per_request else single
        subgroups = [group] if use is tpl else [(t,) for t in group]
        for sub in subgroups:
            blocks, images, rgbs, hashes = [], [], [], []
            for t in sub:
                r = row_of[t]
                blocks.append((stats["gpt4v_class_block"].iat[r], stats["gpt4v_region_block"].iat[r]))
                if t not in label_maps:
                    raise PromptError(f"{source}: no label map for tile {t!r}")
                png = label_map_png(label_maps[t], step=step)
                images.append(png)
                hashes.append(image_hash(png))
                if rgb is not None:
                    if t not in rgb or rgb[t] is None:
                        raise PromptError(f"{source}: rgb=True but tile {t!r} has no Sentinel-2 picture")
                    pic = rgb_png(rgb[t], step=step)
                    rgbs.append(pic)
                    hashes.append(image_hash(pic))
            msgs = gpt4v_messages(blocks, images, use, compat=compat, rgb_images=rgbs if rgb is not None else None)
            c = counts[[row_of[t] for t in sub]] if counts is not None else None
            out.append(_make_request("gpt4v", sub, use, model, max_tokens, msgs, hashes, counts=c))
    return out

