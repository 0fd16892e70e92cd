"""The images of a vision request: label maps and true-colour pictures as PNG data URLs, and
the loaders that read them through a tiles table."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cen.landcover import indices_to_colour
from cen.tables import resolve_path
from cen.prompting.templates import PromptError


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


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``(mime, bytes)`` of a base64 ``data:`` URL as built by :func:`data_url`."""
    head, sep, payload = url.partition(",")
    if not head.startswith("data:") or not head.endswith(";base64") or not sep:
        raise PromptError(f"not a base64 data URL: {url[:40]!r}")
    return head[5:-7], base64.b64decode(payload)



def _require(table: pd.DataFrame, cols: Sequence[str], source: str) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise KeyError(f"{source}: missing column {missing[0]!r} (needed for prompts)")



def load_label_maps(tiles: pd.DataFrame, tile_ids: Sequence[str] | None = None, *,
                    base_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Label maps ``{tile_id: (H, W) indices}`` of a tiles table (column ``label_path``; relative
    paths are taken from ``base_dir``, the table's workdir, by :func:`cen.tables.resolve_path`)."""
    from cen.stats import read_label_map

    _require(tiles, ["tile_id", "label_path"], "tiles table")
    want = None if tile_ids is None else set(map(str, tile_ids))
    out = {}
    for t, p in zip(tiles["tile_id"].astype(str), tiles["label_path"]):
        if want is not None and t not in want:
            continue
        path = resolve_path(p, base_dir if base_dir is not None else ".")
        if path is None:
            raise PromptError(f"tiles table: tile {t!r} has no label_path (gpt4v prompts need its label map)")
        out[t] = read_label_map(path)
    return out


def load_rgb(tiles: pd.DataFrame, tile_ids: Sequence[str] | None = None, *,
             base_dir: str | Path | None = None) -> dict[str, np.ndarray | None]:
    """True-colour pictures ``{tile_id: (H, W, 3) uint8 or None}`` from ``image_path`` GeoTIFFs
    (relative paths taken from ``base_dir`` like :func:`load_label_maps`)."""
    import rasterio

    from cen.tiling import S2_BANDS, band_group_to_uint8

    _require(tiles, ["tile_id", "image_path"], "tiles table")
    want = None if tile_ids is None else set(map(str, tile_ids))
    out: dict[str, np.ndarray | None] = {}
    for t, p in zip(tiles["tile_id"].astype(str), tiles["image_path"]):
        if want is not None and t not in want:
            continue
        path = resolve_path(p, base_dir if base_dir is not None else ".")
        if path is None:
            out[t] = None
            continue
        with rasterio.open(path) as src:
            stack = src.read()
            names = [d or S2_BANDS[i] for i, d in enumerate(src.descriptions)] if src.count == len(S2_BANDS) else list(src.descriptions)
        out[t] = band_group_to_uint8(stack, "rgb", names)
    return out

