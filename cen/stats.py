"""Land-cover statistics of label maps: ChatEarthNet's Algorithm 1, exact and vectorised.

A label map is a 2-D array of ChatEarthNet indices 0-11 (``uint8``; 0 = background). For each
map this module computes class counts for the whole map and five regions (:data:`REGIONS`), and
from those counts the two context blocks the release fed to the language models:

* :func:`gpt35_context` -- the block of the GPT-3.5 prompt (overall class list + one line per
  region with the top-3 classes and a size phrase);
* :func:`gpt4v_context` -- the per-class block and the per-region block of the GPT-4V prompt.

Both have two modes. ``compat=True`` reproduces the release's scripts
(``generate_description_chatgpt3_5_text.py``, ``generate_description_chatgpt4v.py`` of
zhu-xlab/ChatEarthNet) byte for byte, quirks included; the default mode fixes the bugs (each
function's docstring lists what differs). :func:`stats_table` turns a stack of maps into the
tidy ``stats.parquet`` table; :class:`DatasetStats` accumulates dataset-level statistics over any
number of tiles in bounded memory.

Counting is one ``np.bincount`` per map over "region-cell-coded" pixels: the row and column
cuts ``h//4, h//2, 3h//4`` (same for width) split a map into 4x4 cells; every region is a union
of cells, so a pixel's cell (0-15) and class (0-11) form one ``uint8`` code ``cell*12 + class``.

Tie rules (where the release's order depends on numpy's sort; numpy >= 1.25 uses unstable SIMD
sorts on AVX-512 machines, so the release itself is not reproducible there):

* GPT-3.5 overall list: counts descending, ties in order of first appearance in a row-major
  scan (the release's ``Counter`` + stable ``sorted``; exact, not platform-dependent) in compat
  mode, ascending class index in the default mode.
* GPT-3.5 region lines: counts descending; ties in *descending* class index in compat mode
  (classic numpy's insertion sort for short arrays, reversed by ``[::-1]``), ascending class
  index in the default mode.
* GPT-4V region block: proportions descending, ties in ascending class index (both modes).
* GPT-4V class block: classes in order of first appearance in a row-major scan in compat mode
  (the release's ``Counter`` order); by whole-map count descending, ties ascending index, in the
  default mode.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from cen.landcover import CLASSES, N_INDICES, class_names

STATS_VERSION = "1"
"""Version of the statistics and context texts; stored in every ``stats.parquet`` row."""

REGIONS: tuple[str, ...] = ("whole", "top left", "top right", "bottom left", "bottom right", "middle")
"""Region order of :func:`region_counts` (axis 1): the whole map, the four quadrants, the middle
(the central half in both directions, overlapping the quadrants)."""

REGION_SLUGS: tuple[str, ...] = tuple(r.replace(" ", "_") for r in REGIONS)
"""Column-name form of :data:`REGIONS` (``top_left`` ...), also the GPT-4V region names."""

CLASS_SLUGS: tuple[str, ...] = tuple(n.replace(" ", "_") for n in class_names("gpt35"))
"""Column-name form of the class names, by index (``background``, ``water``, ``developed_area`` ...)."""

THRESHOLD = 20
"""Minimum pixel count for a class to be listed in the GPT-3.5 context (the release's ``Threshold``)."""

NOUNS: tuple[str, ...] = ("fraction", "part", "portion", "amount", "quantity")
"""Nouns after the size word in the GPT-3.5 region lines, drawn with ``rng.choice``."""

SIZE_WORDS: tuple[tuple[int, str], ...] = (
    (9, "extra small"), (19, "small"), (49, "medium"), (79, "large"), (100, "extra large"),
)
"""(upper percent bound inclusive, size word) of the GPT-3.5 region lines."""

DEFAULT_SEED = 0
"""Seed of the noun generator when ``rng`` is not given (``random.Random(0)``)."""

_N_CELLS = 16
_GPT35_NAMES = class_names("gpt35")
_GPT4V_NAMES = class_names("gpt4v")
_REGION_LINE = "The {} mainly contains the following land cover types, in descending order of content: "
_PARTS = ("top left part", "top right part", "bottom left part", "bottom right part", "middle part")

# _REGION_OF_CELL[r, cell] = 1 if cell (row band * 4 + column band) belongs to region r.
_REGION_OF_CELL = np.zeros((len(REGIONS), _N_CELLS), dtype=np.int64)
for _rb in range(4):
    for _cb in range(4):
        _cell = _rb * 4 + _cb
        _REGION_OF_CELL[0, _cell] = 1
        _REGION_OF_CELL[1 + (_rb >= 2) * 2 + (_cb >= 2), _cell] = 1
        if 1 <= _rb <= 2 and 1 <= _cb <= 2:
            _REGION_OF_CELL[5, _cell] = 1


class LabelError(ValueError):
    """A label map is not a valid stack of ChatEarthNet indices (names the map and the problem)."""


# ----------------------------------------------------------------------------------------------
# validation and counting


def as_label_stack(labels: np.ndarray, *, what: str = "labels") -> np.ndarray:
    """Check ``labels`` and return it as a C-contiguous ``uint8`` stack of shape ``(N, H, W)``.

    Accepts ``(H, W)`` (one map) or ``(N, H, W)``; integer dtype; values 0-11; ``H, W >= 2``
    (so that every region has pixels). Raises :class:`TypeError` / :class:`LabelError` naming
    ``what``, the map index and the first bad pixel.
    """
    arr = np.asarray(labels)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what}: label maps must hold integer ChatEarthNet indices, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise LabelError(f"{what}: expected a 2-D (H, W) label map or a 3-D (N, H, W) stack, got shape {arr.shape}")
    if arr.shape[1] < 2 or arr.shape[2] < 2:
        raise LabelError(f"{what}: label maps must be at least 2x2 pixels, got {arr.shape[1]}x{arr.shape[2]}")
    if arr.size:
        too_big = int(arr.max()) >= N_INDICES
        if too_big or (arr.dtype.kind == "i" and int(arr.min()) < 0):
            bad = (arr < 0) | (arr >= N_INDICES)
            n, i, j = (int(v) for v in np.argwhere(bad)[0])
            raise LabelError(
                f"{what}: map {n} has value {int(arr[n, i, j])} at pixel (row {i}, col {j}); "
                f"ChatEarthNet indices are 0-11 (convert WorldCover codes with cen.landcover.codes_to_indices)"
            )
    return np.ascontiguousarray(arr, dtype=np.uint8)


@lru_cache(maxsize=32)
def _cell_codes(h: int, w: int) -> np.ndarray:
    """``(H, W)`` uint8 map of ``cell * 12`` where cell = row band * 4 + column band."""
    rows = np.zeros(h, dtype=np.uint8)
    for cut in (h // 4, h // 2, 3 * h // 4):
        rows[cut:] += 1
    cols = np.zeros(w, dtype=np.uint8)
    for cut in (w // 4, w // 2, 3 * w // 4):
        cols[cut:] += 1
    codes = ((rows[:, None] * 4 + cols[None, :]) * N_INDICES).astype(np.uint8)
    codes.flags.writeable = False
    return codes


def _cell_counts(stack: np.ndarray) -> np.ndarray:
    """``(N, 16, 12)`` int64 pixel counts per cell and class of a validated uint8 stack."""
    n, h, w = stack.shape
    codes = _cell_codes(h, w)
    out = np.empty((n, _N_CELLS, N_INDICES), dtype=np.int64)
    key = np.empty((h, w), dtype=np.uint8)
    flat = out.reshape(n, -1)
    for i in range(n):
        np.add(stack[i], codes, out=key)
        flat[i] = np.bincount(key.ravel(), minlength=_N_CELLS * N_INDICES)
    return out


def region_counts(labels: np.ndarray) -> np.ndarray:
    """Pixel counts per region and class.

    ``labels``: ``(H, W)`` or ``(N, H, W)`` integer ChatEarthNet indices 0-11.
    Returns int64 counts of shape ``(6, 12)`` (one map) or ``(N, 6, 12)``: axis -2 in
    :data:`REGIONS` order (whole, top left, top right, bottom left, bottom right, middle),
    axis -1 by class index (0 = background). Regions are the release's slices
    ``[:h//2, :w//2]`` ... and the middle ``[h//4:3*h//4, w//4:3*w//4]``.
    """
    single = np.ndim(labels) == 2
    stack = as_label_stack(labels)
    counts = np.matmul(_REGION_OF_CELL, _cell_counts(stack))
    return counts[0] if single else counts


def region_sizes(h: int, w: int) -> np.ndarray:
    """Pixels per region (:data:`REGIONS` order) of an ``h`` x ``w`` map, int64 ``(6,)``."""
    rows = [h, h // 2, h // 2, h - h // 2, h - h // 2, 3 * h // 4 - h // 4]
    cols = [w, w // 2, w - w // 2, w // 2, w - w // 2, 3 * w // 4 - w // 4]
    return np.array(rows, dtype=np.int64) * np.array(cols, dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# helpers shared by the context builders


def _first_appearance(flat: np.ndarray, classes: Sequence[int]) -> dict[int, int]:
    """Row-major position of the first pixel of each class in ``classes`` (all present)."""
    pos: dict[int, int] = {}
    head = flat[:4096]
    for c in classes:
        hit = head == c
        if hit.any():
            pos[c] = int(hit.argmax())
        else:
            pos[c] = int((flat == c).argmax())
    return pos


def _size_word(percent: int) -> str:
    for upper, word in SIZE_WORDS:
        if percent <= upper:
            return word
    raise ValueError(f"percent {percent} outside 0-100")


@lru_cache(maxsize=16)
def _fixed_table(size: int) -> tuple[str, ...]:
    """``f"{c / size:.2f}"`` for c = 0 ... size (float64 division, as numpy's ``counts / sum``)."""
    return tuple(f"{c / size:.2f}" for c in range(size + 1))


@lru_cache(maxsize=16)
def _percent_table(size: float) -> tuple[str, ...]:
    """``f"{c / size:.2%}"`` for c = 0 ... size."""
    return tuple(f"{c / size:.2%}" for c in range(int(size) + 1))


def _check_rng(rng: random.Random | None) -> random.Random:
    if rng is None:
        return random.Random(DEFAULT_SEED)
    if not hasattr(rng, "choice"):
        raise TypeError(f"rng must be a random.Random (or have .choice), got {type(rng).__name__}")
    return rng


# ----------------------------------------------------------------------------------------------
# GPT-3.5 context


def _gpt35_lines(
    counts: np.ndarray, flat: np.ndarray | None, compat: bool, rng: random.Random
) -> tuple[str, list[str]]:
    """GPT-3.5 context of one map from its ``(6, 12)`` counts; returns (text, empty regions).

    ``flat`` (the row-major map) is needed only in compat mode, for count ties in the overall list.
    """
    whole = counts[0]
    listed = [c for c in range(1, N_INDICES) if whole[c] >= THRESHOLD]
    if compat and flat is not None and len({int(whole[c]) for c in listed}) < len(listed):
        first = _first_appearance(flat, listed)
        listed.sort(key=lambda c: (-int(whole[c]), first[c]))
    else:
        listed.sort(key=lambda c: -int(whole[c]))  # stable: ties keep ascending index
    if listed or compat:
        text = "".join(f"{_GPT35_NAMES[c]}; " for c in listed) + "\n"
    else:
        text = "no land cover type covers 20 pixels or more; \n"

    empty: list[str] = []
    for r in range(1, len(REGIONS)):
        region = REGIONS[r]
        labelled = counts[r, 1:]
        total = int(labelled.sum())
        cls = [c for c in range(1, N_INDICES) if labelled[c - 1] >= THRESHOLD]
        if compat:
            cls.sort(key=lambda c: (-int(labelled[c - 1]), -c))
        else:
            cls.sort(key=lambda c: -int(labelled[c - 1]))
        top = cls[:3]
        if not top:
            empty.append(region)
            if compat:  # the release emits the header alone, without a newline
                text += _REGION_LINE.format(region)
            elif total == 0:
                text += f"The {region} contains no labelled land cover.\n"
            else:
                text += f"The {region} contains only scattered land cover, no type covers {THRESHOLD} pixels.\n"
            continue
        phrases = []
        for c in top:
            n = int(labelled[c - 1])
            if compat:
                # the release: int(round(np.float64(n / float(total)), 2) * 100)
                percent = int(np.round(np.float64(n) / np.float64(total), 2) * 100)
            else:
                percent = (200 * n + total) // (2 * total)  # round half up, exact
            phrases.append(f"{_GPT35_NAMES[c]} ({_size_word(percent)} {rng.choice(NOUNS)})")
        text += _REGION_LINE.format(region)
        if len(phrases) == 3:
            text += f"{phrases[0]}, {phrases[1]}, and {phrases[2]}.\n"
        elif len(phrases) == 2:
            text += f"{phrases[0]} and {phrases[1]}.\n"
        else:
            text += f"{phrases[0]}.\n"
    return text, empty


def gpt35_context(labels: np.ndarray, *, compat: bool = False, rng: random.Random | None = None) -> str:
    """The context block the GPT-3.5 prompt embeds, for one ``(H, W)`` label map.

    Layout: the overall list ``"tree; water; \\n"`` (classes != background with >= 20 pixels,
    by count), then one line per region (top left, top right, bottom left, bottom right,
    middle): ``"The top left mainly contains the following land cover types, in descending order
    of content: tree (large part), water (small amount), and crop (extra small portion).\\n"``
    with the top 3 classes of >= 20 pixels and a size word for their share of the region's
    non-background pixels (0-9 % extra small, 10-19 small, 20-49 medium, 50-79 large, 80-100
    extra large) followed by a noun drawn with ``rng.choice(NOUNS)``, one draw per listed class
    in output order. ``rng`` defaults to ``random.Random(DEFAULT_SEED)``.

    ``compat=True``: exactly the release's ``analyze_segmentation_map`` (GPT-3.5 script) for
    the same map and the same random stream: percent = ``int(round(share, 2) * 100)`` (numpy
    rounding, then truncation); a region without a class of >= 20 pixels gets the bare header
    with no newline, so the next region's line runs on; ties as in the module docstring.

    Default mode differs in: percent is rounded half up exactly (``round(100 * n / total)``); a
    region without a listable class gets a sentence of its own ("The top left contains no
    labelled land cover." when all background, "... only scattered land cover ..." otherwise;
    :func:`stats_table` flags it in ``empty_regions``); an empty overall list says so instead of
    leaving a blank; ties in ascending class index.
    """
    if np.ndim(labels) != 2:
        raise LabelError(f"gpt35_context takes one (H, W) label map, got shape {np.shape(labels)}")
    stack = as_label_stack(labels)
    counts = np.matmul(_REGION_OF_CELL, _cell_counts(stack))[0]
    text, _ = _gpt35_lines(counts, stack[0].ravel(), compat, _check_rng(rng))
    return text


# ----------------------------------------------------------------------------------------------
# GPT-4V context


def _gpt4v_blocks(counts: np.ndarray, flat: np.ndarray | None, shape: tuple[int, int], compat: bool) -> tuple[str, str]:
    """(per-class block, per-region block) of one map from its ``(6, 12)`` counts."""
    sizes = region_sizes(*shape)
    whole = counts[0]
    present = [c for c in range(1, N_INDICES) if whole[c] > 0]
    if compat:
        if flat is None:
            raise ValueError("compat GPT-4V class order needs the label map")
        first = _first_appearance(flat, present)
        present.sort(key=first.__getitem__)
        tables = [_percent_table(128.0 * 128.0)] * 5
        denominators = [16384] * 5
    else:
        present.sort(key=lambda c: -int(whole[c]))
        tables = [_percent_table(float(s)) for s in sizes[1:]]
        denominators = [int(s) for s in sizes[1:]]
    class_lines = []
    for c in present:
        parts = []
        for p in range(5):
            n = int(counts[1 + p, c])
            pct = tables[p][n] if n <= denominators[p] else f"{n / denominators[p]:.2%}"
            parts.append(f" {_PARTS[p]}: {pct} ")
        class_lines.append(f"{_GPT4V_NAMES[c]}: " + "".join(parts) + "\n")

    region_lines = []
    for r in range(1, len(REGIONS)):
        row = counts[r]
        table = _fixed_table(int(sizes[r]))
        cls = [c for c in range(1, N_INDICES) if row[c] > 0]
        cls.sort(key=lambda c: -int(row[c]))  # stable: ties ascending index
        body = "".join(f" {_GPT4V_NAMES[c]}: {table[int(row[c])]};" for c in cls)
        if not cls and not compat:
            body = " no labelled land cover;"
        region_lines.append(f"{REGION_SLUGS[r]} distribution:{body}\n")
    return "".join(class_lines), "".join(region_lines)


def gpt4v_context(labels: np.ndarray, *, compat: bool = False) -> tuple[str, str]:
    """The per-class block and the per-region block of the GPT-4V prompt for one ``(H, W)`` map.

    Per-class block: one line per class present (background skipped),
    ``"tree:  top left part: 61.04%  top right part: 0.00%  ... middle part: 12.50% \\n"``.
    Per-region block: one line per region, ``"top_left distribution: tree: 0.61; water: 0.20;\\n"``
    with each present class's share of all the region's pixels (background included in the
    denominator, not listed), by share descending, ties ascending class index.

    ``compat=True``: exactly the release's ``analyze_image`` and ``analyze_segmentation_map``
    (GPT-4V script): classes of the per-class block in order of first appearance in a row-major
    scan, every share divided by 128*128 whatever the map size.

    Default mode differs in: each share is divided by its region's real pixel count (identical
    for 256x256 maps); per-class lines by whole-map count descending (ties ascending index); a
    region without labelled pixels says ``" no labelled land cover;"`` instead of nothing.
    """
    if np.ndim(labels) != 2:
        raise LabelError(f"gpt4v_context takes one (H, W) label map, got shape {np.shape(labels)}")
    stack = as_label_stack(labels)
    counts = np.matmul(_REGION_OF_CELL, _cell_counts(stack))[0]
    return _gpt4v_blocks(counts, stack[0].ravel(), stack.shape[1:], compat)


# ----------------------------------------------------------------------------------------------
# the tidy table


def tile_rng(seed: int, tile_id: str) -> random.Random:
    """The noun generator of one tile: ``random.Random(f"{seed}:{tile_id}")``.

    Seeding per tile keeps a tile's text independent of batch order and worker count.
    """
    return random.Random(f"{seed}:{tile_id}")


COUNT_COLUMNS: tuple[str, ...] = tuple(f"count_{r}_{c}" for r in REGION_SLUGS for c in CLASS_SLUGS)
"""The 72 count columns of the stats table, region-major (``count_whole_background`` ...)."""

SHARE_COLUMNS: tuple[str, ...] = tuple(f"share_{c}" for c in CLASS_SLUGS)
"""Whole-map pixel share per class (background included), float64."""

CONTEXT_COLUMNS = ("gpt35_context", "gpt4v_class_block", "gpt4v_region_block")


def stats_table(
    labels_stack: np.ndarray,
    tile_ids: Sequence[str],
    *,
    compat: bool = False,
    seed: int = DEFAULT_SEED,
    batch_size: int = 512,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per tile: counts, shares, top classes and both contexts.

    ``labels_stack``: ``(N, H, W)`` (or one ``(H, W)``) ChatEarthNet indices; ``tile_ids``: N
    unique ids. Columns: ``tile_id``, ``height``, ``width``, :data:`COUNT_COLUMNS` (int32),
    :data:`SHARE_COLUMNS`, ``n_classes`` (labelled classes present), ``dominant_class`` (gpt35
    name of the largest labelled class, ``"background"`` if none), ``top1_class`` ...
    ``top3_class`` (labelled classes by count, missing (NaN) when fewer; text columns use
    pandas' ``str`` dtype), ``gpt35_context``,
    ``gpt4v_class_block``, ``gpt4v_region_block``, ``empty_regions`` (comma-separated regions
    whose GPT-3.5 line lists no class), ``stats_version``, ``compat``, ``seed``.
    Nouns come from :func:`tile_rng` ``(seed, tile_id)``.
    """
    stack = as_label_stack(labels_stack)
    ids = [str(t) for t in tile_ids]
    if len(ids) != stack.shape[0]:
        raise ValueError(f"stats_table: {stack.shape[0]} label maps but {len(ids)} tile ids")
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise ValueError(f"stats_table: tile id {dup!r} occurs more than once")
    frames = []
    starts = range(0, len(ids), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="statistics", unit="batch")
    for s in starts:
        frames.append(_table_batch(stack[s : s + batch_size], ids[s : s + batch_size], compat, seed))
    if not frames:
        return _table_batch(stack[:0], [], compat, seed)
    return pd.concat(frames, ignore_index=True)


def _table_batch(stack: np.ndarray, ids: list[str], compat: bool, seed: int) -> pd.DataFrame:
    n, h, w = stack.shape
    counts = np.matmul(_REGION_OF_CELL, _cell_counts(stack)) if n else np.zeros((0, 6, N_INDICES), np.int64)
    g35, cls_block, reg_block, empty = [], [], [], []
    flat = stack.reshape(n, -1)
    for i in range(n):
        text, empties = _gpt35_lines(counts[i], flat[i], compat, tile_rng(seed, ids[i]))
        g35.append(text)
        empty.append(",".join(empties))
        a, b = _gpt4v_blocks(counts[i], flat[i], (h, w), compat)
        cls_block.append(a)
        reg_block.append(b)
    data: dict[str, object] = {"tile_id": ids, "height": np.full(n, h, np.int32), "width": np.full(n, w, np.int32)}
    flat_counts = counts.reshape(n, -1).astype(np.int32)
    for k, col in enumerate(COUNT_COLUMNS):
        data[col] = flat_counts[:, k]
    whole = counts[:, 0, :]
    shares = whole / float(h * w)
    for k, col in enumerate(SHARE_COLUMNS):
        data[col] = shares[:, k]
    labelled = whole[:, 1:]
    data["n_classes"] = (labelled > 0).sum(axis=1).astype(np.int32)
    order = np.argsort(-labelled, axis=1, kind="stable")  # ties: ascending index
    names = np.array(_GPT35_NAMES[1:], dtype=object)
    for k in range(3):
        col = names[order[:, k]] if n else np.array([], dtype=object)
        has = labelled[np.arange(n), order[:, k]] > 0 if n else np.array([], dtype=bool)
        data[f"top{k + 1}_class"] = np.where(has, col, None)
    data["dominant_class"] = [t if t is not None else "background" for t in data["top1_class"]]
    data["gpt35_context"] = g35
    data["gpt4v_class_block"] = cls_block
    data["gpt4v_region_block"] = reg_block
    data["empty_regions"] = empty
    data["stats_version"] = STATS_VERSION
    data["compat"] = compat
    data["seed"] = np.int64(seed)
    frame = pd.DataFrame(data)
    for col in _TEXT_COLUMNS:
        frame[col] = frame[col].astype("str")
    return frame


_TEXT_COLUMNS = ("tile_id", "top1_class", "top2_class", "top3_class", "dominant_class", "gpt35_context",
                 "gpt4v_class_block", "gpt4v_region_block", "empty_regions", "stats_version")


def counts_from_table(table: pd.DataFrame, *, source: str = "stats table") -> np.ndarray:
    """``(N, 6, 12)`` int64 counts back from a stats table's :data:`COUNT_COLUMNS`."""
    missing = [c for c in COUNT_COLUMNS if c not in table.columns]
    if missing:
        raise KeyError(f"{source}: missing count column {missing[0]!r} ({len(missing)} count columns missing)")
    return table[list(COUNT_COLUMNS)].to_numpy(dtype=np.int64).reshape(len(table), len(REGIONS), N_INDICES)


# ----------------------------------------------------------------------------------------------
# tiles.parquet -> stats.parquet


def read_label_map(path: str | Path) -> np.ndarray:
    """Read band 1 of a label GeoTIFF of WorldCover codes as ``(H, W)`` ChatEarthNet indices."""
    import rasterio

    from cen.landcover import codes_to_indices

    try:
        with rasterio.open(path) as src:
            codes = src.read(1)
    except rasterio.errors.RasterioIOError as exc:
        raise FileNotFoundError(f"{path}: cannot read the label GeoTIFF ({exc})") from exc
    try:
        return codes_to_indices(codes)
    except (ValueError, TypeError) as exc:
        raise LabelError(f"{path}: {exc}") from exc


def _load_tiles(tiles: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, Path | None, str]:
    if isinstance(tiles, pd.DataFrame):
        return tiles, None, "tiles table"
    path = Path(tiles)
    if not path.exists():
        raise FileNotFoundError(f"{path}: tiles table not found (run notebook 01 / cen.sources first)")
    return pd.read_parquet(path), path.parent, str(path)


def stats_table_from_tiles(
    tiles: pd.DataFrame | str | Path,
    *,
    compat: bool = False,
    seed: int = DEFAULT_SEED,
    base_dir: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Statistics of every tile of a tiles table (``tiles.parquet`` or its DataFrame).

    Reads each row's ``label_path`` GeoTIFF (WorldCover codes; relative paths resolve against
    ``base_dir``, default the parquet's folder, then the working directory), converts to
    ChatEarthNet indices and returns :func:`stats_table` rows in the tiles table's order.
    Rows without a ``label_path`` (image-only tiles) have no statistics and are left out.
    Tiles of different sizes are processed in groups of equal shape.
    """
    table, parent, source = _load_tiles(tiles)
    for col in ("tile_id", "label_path"):
        if col not in table.columns:
            raise KeyError(f"{source}: missing column {col!r} (columns: {', '.join(map(str, table.columns))})")
    root = Path(base_dir) if base_dir is not None else parent
    table = table[table["label_path"].notna()].reset_index(drop=True)
    maps: list[np.ndarray] = []
    rows = table[["tile_id", "label_path"]].itertuples(index=False)
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, total=len(table), desc="read labels", unit="tile")
    for tile_id, label_path in rows:
        p = Path(label_path)
        if not p.is_absolute() and root is not None and (root / p).exists():
            p = root / p
        maps.append(read_label_map(p))
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, m in enumerate(maps):
        by_shape.setdefault(m.shape, []).append(i)
    ids = table["tile_id"].astype(str).tolist()
    parts = []
    for shape, idx in by_shape.items():
        part = stats_table(np.stack([maps[i] for i in idx]), [ids[i] for i in idx], compat=compat, seed=seed)
        part.index = idx
        parts.append(part)
    if not parts:
        return stats_table(np.zeros((0, 256, 256), np.uint8), [], compat=compat, seed=seed)
    return pd.concat(parts).sort_index().reset_index(drop=True)


def write_stats(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a stats table to Parquet atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


STATS_REQUIRED = ("tile_id", *COUNT_COLUMNS, *CONTEXT_COLUMNS, "stats_version", "compat")


def read_stats(path: str | Path) -> pd.DataFrame:
    """Read ``stats.parquet``, checking the columns later stages rely on and the version."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: stats table not found (run notebook 02 / cen.stats first)")
    table = pd.read_parquet(path)
    missing = [c for c in STATS_REQUIRED if c not in table.columns]
    if missing:
        raise KeyError(f"{path}: missing column {missing[0]!r} ({len(missing)} required columns missing)")
    versions = set(table["stats_version"].astype(str))
    if versions - {STATS_VERSION}:
        raise ValueError(f"{path}: column 'stats_version' holds {sorted(versions)}, this code reads {STATS_VERSION!r}")
    return table


def compute_stats(
    tiles: str | Path,
    out: str | Path,
    *,
    compat: bool = False,
    seed: int = DEFAULT_SEED,
    force: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """``tiles.parquet`` -> ``stats.parquet``; reuses an existing output made from the same tiles
    with the same version, mode and seed unless ``force``."""
    out = Path(out)
    if out.exists() and not force:
        try:
            old = read_stats(out)
            listed = pd.read_parquet(tiles, columns=["tile_id", "label_path"])
            ids = listed.loc[listed["label_path"].notna(), "tile_id"].astype(str).tolist()
            if (
                old["tile_id"].astype(str).tolist() == ids
                and bool((old["compat"] == compat).all())
                and ("seed" not in old or bool((old["seed"] == seed).all()))
            ):
                return old
        except (KeyError, ValueError):
            pass
    table = stats_table_from_tiles(tiles, compat=compat, seed=seed, progress=progress)
    write_stats(table, out)
    return table


# ----------------------------------------------------------------------------------------------
# dataset-level statistics


@dataclass
class DatasetStats:
    """Dataset-level statistics accumulated over batches of tiles, in constant memory.

    ``update`` takes ``(N, 6, 12)`` region counts (:func:`region_counts`); ``update_labels``
    takes label maps. Accumulators (int64, class index on the last axis):
    ``class_pixels`` (12,), pixels per class over all tiles; ``class_presence`` (12,), tiles
    with at least one pixel of the class; ``dominant`` (12,), tiles by their largest labelled
    class (index 0 = no labelled pixel); ``region_dominant`` (6, 12), the same per region.
    Ties for "largest" go to the lower class index. Merge partial results with ``merge``.
    """

    n_tiles: int = 0
    class_pixels: np.ndarray = field(default_factory=lambda: np.zeros(N_INDICES, np.int64))
    class_presence: np.ndarray = field(default_factory=lambda: np.zeros(N_INDICES, np.int64))
    dominant: np.ndarray = field(default_factory=lambda: np.zeros(N_INDICES, np.int64))
    region_dominant: np.ndarray = field(default_factory=lambda: np.zeros((len(REGIONS), N_INDICES), np.int64))

    def update(self, counts: np.ndarray) -> "DatasetStats":
        """Add tiles given their ``(N, 6, 12)`` (or one ``(6, 12)``) region counts."""
        counts = np.asarray(counts)
        if counts.ndim == 2:
            counts = counts[None]
        if counts.ndim != 3 or counts.shape[1:] != (len(REGIONS), N_INDICES):
            raise ValueError(f"DatasetStats.update: expected counts of shape (N, 6, 12), got {counts.shape}")
        if (counts < 0).any():
            raise ValueError("DatasetStats.update: negative pixel counts")
        counts = counts.astype(np.int64, copy=False)
        self.n_tiles += counts.shape[0]
        whole = counts[:, 0, :]
        self.class_pixels += whole.sum(axis=0)
        self.class_presence += (whole > 0).sum(axis=0)
        labelled = counts[:, :, 1:]
        dom = labelled.argmax(axis=2) + 1
        dom[labelled.max(axis=2) == 0] = 0
        for r in range(len(REGIONS)):
            self.region_dominant[r] += np.bincount(dom[:, r], minlength=N_INDICES)
        self.dominant[:] = self.region_dominant[0]
        return self

    def update_labels(self, labels: np.ndarray) -> "DatasetStats":
        """Add tiles given their label maps ``(N, H, W)``."""
        return self.update(region_counts(as_label_stack(labels)))

    def merge(self, other: "DatasetStats") -> "DatasetStats":
        """Add another accumulator's tiles to this one (for parallel runs)."""
        self.n_tiles += other.n_tiles
        self.class_pixels += other.class_pixels
        self.class_presence += other.class_presence
        self.region_dominant += other.region_dominant
        self.dominant[:] = self.region_dominant[0]
        return self

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> "DatasetStats":
        """Accumulate a stats table's count columns."""
        return cls().update(counts_from_table(table))

    def class_frame(self) -> pd.DataFrame:
        """One row per class (background included): pixels, pixel share, tiles present, share
        of tiles present, tiles dominated, share of tiles dominated."""
        total = max(int(self.class_pixels.sum()), 1)
        n = max(self.n_tiles, 1)
        return pd.DataFrame(
            {
                "class_index": np.arange(N_INDICES),
                "class": list(_GPT35_NAMES),
                "pixels": self.class_pixels,
                "pixel_share": self.class_pixels / total,
                "tiles_present": self.class_presence,
                "presence_share": self.class_presence / n,
                "tiles_dominant": self.dominant,
                "dominant_share": self.dominant / n,
                "colour": ["#%02x%02x%02x" % c.colour for c in CLASSES],
            }
        )

    def region_frame(self) -> pd.DataFrame:
        """Long table: region, class, tiles whose region is dominated by the class, share."""
        n = max(self.n_tiles, 1)
        rows = [
            (REGIONS[r], _GPT35_NAMES[c], int(self.region_dominant[r, c]), self.region_dominant[r, c] / n)
            for r in range(len(REGIONS))
            for c in range(N_INDICES)
        ]
        return pd.DataFrame(rows, columns=["region", "class", "tiles_dominant", "dominant_share"])


def stream_stats(batches: Iterable[np.ndarray], *, contexts: bool = True, compat: bool = False) -> DatasetStats:
    """Accumulate :class:`DatasetStats` over an iterable of ``(N, H, W)`` label batches; with
    ``contexts`` also build every tile's three context strings (and discard them), as a
    whole-pipeline throughput run does. Memory is bounded by one batch."""
    acc = DatasetStats()
    for batch in batches:
        stack = as_label_stack(batch)
        counts = np.matmul(_REGION_OF_CELL, _cell_counts(stack))
        acc.update(counts)
        if contexts:
            rng = random.Random(DEFAULT_SEED)
            flat = stack.reshape(stack.shape[0], -1)
            for i in range(stack.shape[0]):
                _gpt35_lines(counts[i], flat[i], compat, rng)
                _gpt4v_blocks(counts[i], flat[i], stack.shape[1:], compat)
    return acc
