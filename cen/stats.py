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
number of tiles in bounded memory. The last section holds the views notebook 02 shows
(:func:`plot_regions`, :func:`region_class_counts`, :func:`context_differences`,
:func:`plot_dataset_stats`, :func:`plot_region_dominance`, ...): figures are returned, not shown.

Counting is one histogram per map over "region-cell-coded" pixels: the row and column cuts
``h//4, h//2, 3h//4`` (same for width) split a map into 4x4 cells; every region is a union of
cells, so a pixel's cell (0-15) and class (0-11) form one code ``cell*12 + class``, and one
matrix product turns the (16, 12) cell counts into the (6, 12) region counts. The histogram is
a small numba kernel when numba is installed, else ``np.bincount`` over pixel pairs; the
contexts are then written from the counts in batches (numpy picks classes, orders and size
words for all maps at once; a short Python loop assembles the strings).

Tie rules (where the release's order depends on numpy's sort: numpy 2.x with AVX-512, as on
our machines, sorts short int64/float64 arrays unstably, so the release's own output for
equal counts is platform-dependent):

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
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd

from cen.landcover import CLASSES, N_INDICES, PARTS, REGION_SLUGS, REGIONS, class_names, region_boxes
from cen.tables import read_table, write_parquet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATS_VERSION = "1"
"""Version of the statistics and context texts; stored in every ``stats.parquet`` row."""

# REGIONS (region order of region_counts, axis 1) and REGION_SLUGS come from cen.landcover.

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
_PARTS = tuple(f"{r} part" for r in PARTS)

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
    """``(N, 16, 12)`` int64 pixel counts per cell and class of a validated uint8 stack.

    Uses the compiled kernel when numba is installed (and ``CEN_STATS_NUMBA`` is not ``0``),
    otherwise numpy's ``bincount``; both give identical counts.
    """
    if os.environ.get("CEN_STATS_NUMBA", "1") != "0" and _numba_kernel() is not None:
        return _cell_counts_numba(stack)
    return _cell_counts_numpy(stack)


def _cell_counts_numpy(stack: np.ndarray) -> np.ndarray:
    """:func:`_cell_counts` with ``np.bincount`` (pixel pairs where the grid allows)."""
    n, h, w = stack.shape
    if w % 2 == 0 and all(cut % 2 == 0 for cut in (w // 4, w // 2, 3 * w // 4)):
        return _cell_counts_pairs(stack)
    codes = _cell_codes(h, w)
    out = np.empty((n, _N_CELLS, N_INDICES), dtype=np.int64)
    key = np.empty((h, w), dtype=np.uint8)
    flat = out.reshape(n, -1)
    for i in range(n):
        np.add(stack[i], codes, out=key)
        flat[i] = np.bincount(key.ravel(), minlength=_N_CELLS * N_INDICES)
    return out


def _cell_counts_numba(stack: np.ndarray) -> np.ndarray:
    """:func:`_cell_counts` with the numba kernel (one pass, four interleaved histograms)."""
    kernel = _numba_kernel()
    if kernel is None:
        raise RuntimeError("numba is not installed")
    n, h, w = stack.shape
    row_base, col_code = _band_codes(h, w)
    out = np.empty((n, _N_CELLS * N_INDICES), dtype=np.int64)
    kernel(stack, row_base, col_code, out)
    return out.reshape(n, _N_CELLS, N_INDICES)


@lru_cache(maxsize=32)
def _band_codes(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 ``(H,)`` row-band part and ``(W,)`` column-band part of :func:`_cell_codes`."""
    codes = _cell_codes(h, w).astype(np.int64)
    return np.ascontiguousarray(codes[:, 0]), np.ascontiguousarray(codes[0] - codes[0, 0])


def _count_pixels(stack, row_base, col_code, out):  # pragma: no cover - compiled by numba
    """out[t, row_base[i] + col_code[j] + stack[t, i, j]] += 1 over all pixels (numba source).

    Four histograms break the store-to-load dependency between neighbouring pixels of a class.
    """
    n, h, w = stack.shape
    nbins = out.shape[1]
    acc = np.zeros((4, nbins), np.int64)
    for t in range(n):
        acc[:] = 0
        for i in range(h):
            base = row_base[i]
            row = stack[t, i]
            j = 0
            while j + 4 <= w:
                acc[0, base + col_code[j] + row[j]] += 1
                acc[1, base + col_code[j + 1] + row[j + 1]] += 1
                acc[2, base + col_code[j + 2] + row[j + 2]] += 1
                acc[3, base + col_code[j + 3] + row[j + 3]] += 1
                j += 4
            while j < w:
                acc[0, base + col_code[j] + row[j]] += 1
                j += 1
        for k in range(nbins):
            out[t, k] = acc[0, k] + acc[1, k] + acc[2, k] + acc[3, k]


_KERNEL: list = []


def _numba_kernel():
    """The compiled :func:`_count_pixels`, or None without numba. numba is imported on first
    use only (it costs ~150 MB per process), and compiled code is cached on disk."""
    if not _KERNEL:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency, but keep working without it
            _KERNEL.append(None)
        else:
            _KERNEL.append(numba.njit(nogil=True, cache=True)(_count_pixels))
    return _KERNEL[0]


@lru_cache(maxsize=32)
def _pair_cell_codes(h: int, w: int) -> np.ndarray:
    """``(H, W/2)`` uint16 map of ``cell * 144`` for pixel pairs (columns 2k, 2k+1)."""
    codes = (_cell_codes(h, w)[:, ::2] // N_INDICES).astype(np.uint16) * np.uint16(N_INDICES * N_INDICES)
    codes.flags.writeable = False
    return codes


def _cell_counts_pairs(stack: np.ndarray) -> np.ndarray:
    """:func:`_cell_counts` counting two horizontally adjacent pixels per bincount element.

    Reads each pair (a, b) as one uint16 ``v = a + 256 b`` (little-endian), codes it
    ``cell*144 + v - 244 b`` (= ``cell*144 + a + 12 b``) and counts the codes; class k's count
    is the pairs with a == k plus the pairs with b == k. Needs an even width and even column
    cuts, so that no pair straddles two cells.
    """
    n, h, w = stack.shape
    codes = _pair_cell_codes(h, w)
    n_pairs = N_INDICES * N_INDICES
    pair_counts = np.empty((n, _N_CELLS * n_pairs), dtype=np.int64)
    pairs = stack.view(np.uint16)
    key = np.empty((h, w // 2), dtype=np.uint16)
    hi = np.empty((h, w // 2), dtype=np.uint16)
    for i in range(n):
        np.right_shift(pairs[i], 8, out=hi)
        hi *= 244
        np.subtract(pairs[i], hi, out=key)
        key += codes
        pair_counts[i] = np.bincount(key.ravel(), minlength=_N_CELLS * n_pairs)
    by_pair = pair_counts.reshape(n * _N_CELLS, N_INDICES, N_INDICES)  # [cell, b, a]
    per_class = np.add.reduce(by_pair, axis=2) + np.add.reduce(by_pair, axis=1)
    return per_class.reshape(n, _N_CELLS, N_INDICES)


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
# context builders (batched: numpy picks classes and sizes, a short Python loop writes the text)

_BYTE = tuple(bytes((c,)) for c in range(N_INDICES))
_SEMI = tuple(f"{n}; " for n in _GPT35_NAMES)
_HEADERS = tuple(_REGION_LINE.format(r) for r in REGIONS)
_WORD_BOUNDS = np.array([upper for upper, _ in SIZE_WORDS])
# _PHRASE[class][size word] = "tree (large " (the noun and ")" follow)
_PHRASE = tuple(tuple(f"{name} ({word} " for _, word in SIZE_WORDS) for name in _GPT35_NAMES)
_CLASS_AXIS = np.arange(1, N_INDICES)


def _first_positions(tile: np.ndarray, classes: Sequence[int]) -> dict[int, int]:
    """Row-major position of the first pixel of each class in ``classes`` (all present) of
    one ``(H, W)`` uint8 map (``bytes.find``, i.e. memchr, on the first rows, then the rest)."""
    head = tile[: max(1, 4096 // tile.shape[1])].tobytes()
    pos: dict[int, int] = {}
    full = None
    for c in classes:
        k = head.find(_BYTE[c])
        if k < 0:
            full = tile.tobytes() if full is None else full
            k = full.find(_BYTE[c])
        pos[c] = k
    return pos


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


def _order_desc(values: np.ndarray, ties_descending: bool = False) -> np.ndarray:
    """Indices sorting the last axis (11 labelled classes) by value descending; ties in ascending
    (or descending) class index. Exact integer keys, so the sort kind does not matter."""
    tie = _CLASS_AXIS[::-1] if ties_descending else _CLASS_AXIS
    return np.argsort(-(values * 16) + tie, axis=-1)


def _contexts(
    stack: np.ndarray, counts: np.ndarray, compat: bool, rngs: Sequence[random.Random], *,
    gpt35: bool = True, gpt4v: bool = True,
) -> tuple[list[str], list[str], list[str], list[str]]:
    """GPT-3.5 context, GPT-4V class block, GPT-4V region block and empty-region flags
    (comma-separated) of every map of a validated ``(N, H, W)`` stack with ``(N, 6, 12)`` counts.
    ``gpt35`` / ``gpt4v`` False leave those lists empty."""
    n, h, w = stack.shape
    sizes = region_sizes(h, w)
    whole = counts[:, 0, 1:]
    labelled = counts[:, 1:, 1:]

    # GPT-3.5 overall list: by count, ties ascending index (compat: first appearance, below)
    order_whole = _order_desc(whole)
    sorted_whole = np.take_along_axis(whole, order_whole, axis=1)
    n_listed = (whole >= THRESHOLD).sum(axis=1)
    tied = ((sorted_whole[:, 1:] == sorted_whole[:, :-1]) & (sorted_whole[:, 1:] >= THRESHOLD)).any(axis=1)

    # GPT-3.5 region lines: top 3 with >= 20 px and their size words
    order_35 = _order_desc(labelled, ties_descending=compat)[..., :3]
    top_counts = np.take_along_axis(labelled, order_35, axis=2)
    n_top = (top_counts >= THRESHOLD).sum(axis=2)
    totals = labelled.sum(axis=2, keepdims=True)
    safe = np.maximum(totals, 1)
    if compat:  # the release: int(round(count / float(total), 2) * 100)
        percent = np.trunc(np.round(top_counts / safe.astype(np.float64), 2) * 100)
    else:  # round half up, in integers
        percent = (200 * top_counts + safe) // (2 * safe)
    word = np.searchsorted(_WORD_BOUNDS, percent, side="left")

    # GPT-4V: region lines list every labelled class present, share descending, ties ascending
    order_4v = _order_desc(labelled)
    n_present_region = (labelled > 0).sum(axis=2)
    n_present = (whole > 0).sum(axis=1)
    fixed = [_fixed_table(int(s)) for s in sizes[1:]]
    if compat:
        pct_tables = [_percent_table(128.0 * 128.0)] * 5
    else:  # a region's count never exceeds its size: the tables always suffice
        pct_tables = [_percent_table(float(s)) for s in sizes[1:]]

    g35: list[str] = []
    cls_blocks: list[str] = []
    reg_blocks: list[str] = []
    empties: list[str] = []
    L_order_whole, L_n_listed, L_tied = (order_whole + 1).tolist(), n_listed.tolist(), tied.tolist()
    L_whole, L_lab = counts[:, 0, :].tolist(), counts[:, 1:, :].tolist()
    L_order35, L_ntop, L_word = (order_35 + 1).tolist(), n_top.tolist(), word.tolist()
    L_order4v, L_npr, L_npres = (order_4v + 1).tolist(), n_present_region.tolist(), n_present.tolist()
    L_totals = totals[..., 0].tolist()
    def _gpt35_text(i: int) -> tuple[str, list[str]]:
        rng = rngs[i]
        fast = type(rng) is random.Random
        getbits = rng.getrandbits
        wc = L_whole[i]
        listed = L_order_whole[i][: L_n_listed[i]]
        if compat and L_tied[i]:
            first = _first_positions(stack[i], listed)
            listed = sorted(listed, key=lambda c: (-wc[c], first[c]))
        if listed or compat:
            text = "".join([_SEMI[c] for c in listed]) + "\n"
        else:
            text = f"no land cover type covers {THRESHOLD} pixels or more; \n"
        empty = []
        for r in range(5):
            k = L_ntop[i][r]
            if k == 0:
                empty.append(REGIONS[r + 1])
                if compat:  # the release emits the header alone, without a newline
                    text += _HEADERS[r + 1]
                elif L_totals[i][r] == 0:
                    text += f"The {REGIONS[r + 1]} contains no labelled land cover.\n"
                else:
                    text += (f"The {REGIONS[r + 1]} contains only scattered land cover, "
                             f"no type covers {THRESHOLD} pixels.\n")
                continue
            classes, words = L_order35[i][r], L_word[i][r]
            phrases = []
            for j in range(k):
                if fast:  # random.choice(NOUNS) of CPython, inlined: same draws, same result
                    b = getbits(3)
                    while b >= 5:
                        b = getbits(3)
                    noun = NOUNS[b]
                else:
                    noun = rng.choice(NOUNS)
                phrases.append(_PHRASE[classes[j]][words[j]] + noun + ")")
            if k == 3:
                text += f"{_HEADERS[r + 1]}{phrases[0]}, {phrases[1]}, and {phrases[2]}.\n"
            elif k == 2:
                text += f"{_HEADERS[r + 1]}{phrases[0]} and {phrases[1]}.\n"
            else:
                text += f"{_HEADERS[r + 1]}{phrases[0]}.\n"
        return text, empty

    def _gpt4v_text(i: int) -> tuple[str, str]:
        lab = L_lab[i]
        present = L_order_whole[i][: L_npres[i]]
        if compat and len(present) > 1:
            first = _first_positions(stack[i], present)
            present = sorted(present, key=first.__getitem__)
        lines = []
        for c in present:
            parts = [lab[p][c] for p in range(5)]
            if not compat or max(parts) <= 16384:
                t = pct_tables
                lines.append(f"{_GPT4V_NAMES[c]}:  top left part: {t[0][parts[0]]}  top right part: "
                             f"{t[1][parts[1]]}  bottom left part: {t[2][parts[2]]}  bottom right part: "
                             f"{t[3][parts[3]]}  middle part: {t[4][parts[4]]} \n")
            else:  # compat mode on maps larger than 256 x 256
                lines.append(f"{_GPT4V_NAMES[c]}: " + "".join(
                    f" {_PARTS[p]}: {parts[p] / 16384.0:.2%} " for p in range(5)) + "\n")
        cls_block = "".join(lines)

        lines = []
        for r in range(5):
            m = L_npr[i][r]
            row = lab[r]
            table = fixed[r]
            if m:
                body = "".join([f" {_GPT4V_NAMES[c]}: {table[row[c]]};" for c in L_order4v[i][r][:m]])
            else:
                body = "" if compat else " no labelled land cover;"
            lines.append(f"{REGION_SLUGS[r + 1]} distribution:{body}\n")
        return cls_block, "".join(lines)

    for i in range(n):
        if gpt35:
            text, empty = _gpt35_text(i)
            g35.append(text)
            empties.append(",".join(empty))
        if gpt4v:
            a, b = _gpt4v_text(i)
            cls_blocks.append(a)
            reg_blocks.append(b)
    return g35, cls_blocks, reg_blocks, empties


def _counts_of(stack: np.ndarray) -> np.ndarray:
    return np.matmul(_REGION_OF_CELL, _cell_counts(stack))


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

    Default mode differs in: percent is rounded half up exactly (``round(100 * n / total)``; for
    regions of up to 128 x 128 pixels this never changes the size word); a region without a
    listable class gets a sentence of its own ("The top left contains no labelled land cover."
    when all background, "... only scattered land cover ..." otherwise; :func:`stats_table`
    flags it in ``empty_regions``); an empty overall list says so instead of leaving a blank;
    ties in ascending class index.
    """
    if np.ndim(labels) != 2:
        raise LabelError(f"gpt35_context takes one (H, W) label map, got shape {np.shape(labels)}")
    stack = as_label_stack(labels)
    return _contexts(stack, _counts_of(stack), compat, [_check_rng(rng)], gpt4v=False)[0][0]


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
    counts = _counts_of(stack)
    _, cls_block, reg_block, _ = _contexts(stack, counts, compat, [random.Random(DEFAULT_SEED)], gpt35=False)
    return cls_block[0], reg_block[0]


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
    g35, cls_block, reg_block, empty = _contexts(stack, counts, compat, [tile_rng(seed, t) for t in ids])
    data: dict[str, object] = {"tile_id": ids, "height": np.full(n, h, np.int32), "width": np.full(n, w, np.int32)}
    flat_counts = counts.reshape(n, len(COUNT_COLUMNS)).astype(np.int32)
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
    """Read a label file as ``(H, W)`` ChatEarthNet indices: band 1 of a GeoTIFF of WorldCover
    codes, or (``.png``) a label map rendered in the ChatEarthNet colours, as the release ships."""
    import rasterio

    from cen.landcover import codes_to_indices

    if Path(path).suffix.lower() == ".png":
        from cen import tiling

        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: label PNG not found")
        try:
            return tiling.read_label_png(path)
        except ValueError as exc:
            raise LabelError(str(exc)) from exc

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
    return read_table(path, ("tile_id", "label_path"), what="tiles table", made_by="notebook 01 / cen.sources"), path.parent, str(path)


def stats_table_from_tiles(
    tiles: pd.DataFrame | str | Path,
    *,
    compat: bool = False,
    seed: int = DEFAULT_SEED,
    base_dir: str | Path | None = None,
    progress: bool = True,
    chunk_size: int = 2048,
) -> pd.DataFrame:
    """Statistics of every tile of a tiles table (``tiles.parquet`` or its DataFrame).

    Reads each row's ``label_path`` (GeoTIFF of WorldCover codes or ChatEarthNet-colour PNG, see
    :func:`read_label_map`; relative paths resolve against
    ``base_dir``, default the parquet's folder, then the working directory), converts to
    ChatEarthNet indices and returns :func:`stats_table` rows in the tiles table's order.
    Rows without a ``label_path`` (image-only tiles) have no statistics and are left out.
    Maps are read ``chunk_size`` at a time (tiles of different sizes in groups of equal shape),
    so memory holds one chunk of maps plus the growing table.
    """
    table, parent, source = _load_tiles(tiles)
    for col in ("tile_id", "label_path"):
        if col not in table.columns:
            raise KeyError(f"{source}: missing column {col!r} (columns: {', '.join(map(str, table.columns))})")
    root = Path(base_dir) if base_dir is not None else parent
    table = table[table["label_path"].notna()].reset_index(drop=True)
    ids = table["tile_id"].astype(str).tolist()
    paths = table["label_path"].tolist()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(table), desc="tile statistics", unit="tile")
    parts = []
    for start in range(0, len(table), chunk_size):  # bounded memory: one chunk of maps at a time
        maps: list[np.ndarray] = []
        for label_path in paths[start : start + chunk_size]:
            p = Path(label_path)
            if not p.is_absolute() and root is not None and (root / p).exists():
                p = root / p
            maps.append(read_label_map(p))
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, m in enumerate(maps):
            by_shape.setdefault(m.shape, []).append(i)
        for idx in by_shape.values():
            part = stats_table(np.stack([maps[i] for i in idx]), [ids[start + i] for i in idx], compat=compat,
                               seed=seed)
            part.index = [start + i for i in idx]
            parts.append(part)
        if bar is not None:
            bar.update(len(maps))
    if bar is not None:
        bar.close()
    if not parts:
        return stats_table(np.zeros((0, 256, 256), np.uint8), [], compat=compat, seed=seed)
    return pd.concat(parts).sort_index().reset_index(drop=True)


def write_stats(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a stats table to Parquet atomically (temporary name, then rename)."""
    return write_parquet(table, path)


STATS_REQUIRED = ("tile_id", *COUNT_COLUMNS, *CONTEXT_COLUMNS, "stats_version", "compat")


def read_stats(path: str | Path) -> pd.DataFrame:
    """Read ``stats.parquet``, checking the columns later stages rely on and the version."""
    table = read_table(path, STATS_REQUIRED, what="stats table", made_by="notebook 02 / cen.stats")
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

    @property
    def n_classes_present(self) -> int:
        """Labelled classes (background excluded) with at least one pixel."""
        return int((self.class_pixels[1:] > 0).sum())

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
            _contexts(stack, counts, compat, [rng] * stack.shape[0])
    return acc


# ----------------------------------------------------------------------------------------------
# views for notebooks: tables, texts and figures (figures are returned, not shown)

OVERVIEW_COLUMNS: tuple[str, ...] = (
    "tile_id", "n_classes", "dominant_class", "top1_class", "top2_class", "top3_class",
    "share_background", "share_water", "share_tree", "share_developed_area", "empty_regions",
)
"""Columns of :func:`stats_overview`: classes per tile, the largest ones, a few shares."""

REGION_COLOURS: dict[str, str] = dict(zip(REGIONS[1:], ("tab:orange", "tab:purple", "tab:cyan", "tab:olive", "white")))
"""Outline colour of each of the five regions in :func:`plot_regions`."""


def stats_overview(table: pd.DataFrame) -> pd.DataFrame:
    """A stats table's :data:`OVERVIEW_COLUMNS`."""
    return table[list(OVERVIEW_COLUMNS)]


def region_class_counts(table: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """Pixels per region (columns, :data:`REGIONS` order) of each labelled class present in a
    tile (rows: ``tile_id``, ``class``), for the first ``n`` tiles of a stats table (all if ``None``)."""
    shown = table if n is None else table.head(n)
    counts = counts_from_table(shown)
    rows, index = [], []
    for tile_id, tile in zip(shown["tile_id"], counts):
        for c in range(1, N_INDICES):
            if tile[0, c] > 0:
                index.append((str(tile_id), _GPT35_NAMES[c]))
                rows.append(tile[:, c])
    out = pd.DataFrame(np.array(rows, dtype=np.int64).reshape(len(rows), len(REGIONS)), columns=list(REGIONS),
                       index=pd.MultiIndex.from_tuples(index, names=["tile_id", "class"]))
    out.columns.name = "region"
    return out


def _label_paths(tiles: pd.DataFrame, tile_ids: Iterable[str], source: str = "tiles table") -> list[str]:
    labelled = tiles[tiles["label_path"].notna()]
    paths = dict(zip(labelled["tile_id"].astype(str), labelled["label_path"]))
    out = []
    for tile_id in map(str, tile_ids):
        if tile_id not in paths:
            raise ValueError(f"{source}: no label_path for tile {tile_id!r}")
        out.append(paths[tile_id])
    return out


def class_legend_handles():
    """Legend patches (ChatEarthNet colour, GPT-3.5 name) of the ten labelled classes."""
    from matplotlib.patches import Patch

    return [Patch(color=tuple(v / 255 for v in cls.colour), label=cls.name_gpt35) for cls in CLASSES[1:]]


def plot_regions(table: pd.DataFrame, tiles: pd.DataFrame, n: int = 4) -> Figure:
    """The label maps of the first ``n`` tiles of a stats table with the five regions drawn on
    them (:func:`region_boxes`; the middle dashed), titled with classes and dominant class, and a
    legend of the classes. ``tiles`` gives each tile's ``label_path`` (the tiles table)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from cen.landcover import indices_to_colour

    shown = table.head(n)
    if not len(shown):
        raise ValueError("plot_regions: the stats table has no rows")
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.9), squeeze=False)
    for ax, (_, row), path in zip(axes[0], shown.iterrows(), _label_paths(tiles, shown["tile_id"])):
        labels = read_label_map(path)
        ax.imshow(indices_to_colour(labels))
        for name, (r0, r1, c0, c1) in region_boxes(*labels.shape).items():
            ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, lw=1.5,
                                   ls="--" if name == "middle" else "-", ec=REGION_COLOURS[name], label=name))
        ax.set_title(f"{row['tile_id'][-12:]}\n{row['n_classes']} classes, mostly {row['dominant_class']}", fontsize=8)
        ax.axis("off")
    fig.legend(handles=class_legend_handles(), loc="lower center", ncol=6, fontsize=7, frameon=False)
    fig.subplots_adjust(bottom=0.2)
    return fig


def format_contexts(table: pd.DataFrame, n: int = 2) -> str:
    """The GPT-3.5 context and the two GPT-4V blocks of the first ``n`` tiles, as they go into
    the prompts, each under a header naming the tile and the block."""
    return "\n".join(
        f"=== {row['tile_id']} ===\n--- GPT-3.5 context ---\n{row['gpt35_context']}\n"
        f"--- GPT-4V per-class block ---\n{row['gpt4v_class_block']}--- GPT-4V per-region block ---\n"
        f"{row['gpt4v_region_block']}"
        for _, row in table.head(n).iterrows()
    )


def _mode(table: pd.DataFrame) -> str:
    return "compat" if bool(table["compat"].iloc[0]) else "default"


def context_differences(table: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Which context strings differ between two stats tables of the same tiles (typically compat
    and default mode): ``tile_id``, one bool column per :data:`CONTEXT_COLUMNS` (True = differs),
    and ``table``'s ``empty_regions``. Rows in ``table``'s order, matched by ``tile_id``."""
    ids = table["tile_id"].astype(str)
    theirs = other.assign(tile_id=other["tile_id"].astype(str)).set_index("tile_id")
    missing = ids[~ids.isin(theirs.index)]
    if len(missing):
        raise ValueError(f"context_differences: tile {missing.iloc[0]!r} is not in the other table "
                         f"({len(missing)} tiles missing)")
    theirs = theirs.loc[ids]
    return pd.DataFrame({
        "tile_id": ids.to_numpy(),
        **{col: table[col].to_numpy() != theirs[col].to_numpy() for col in CONTEXT_COLUMNS},
        "empty_regions": table["empty_regions"].to_numpy(),
    }, index=table.index)


def context_difference_examples(table: pd.DataFrame, other: pd.DataFrame) -> str:
    """For each context column, the first tile whose text differs between the two tables, with
    both texts headed by their mode (the tables' ``compat`` column); ``""`` if none differs."""
    diff = context_differences(table, other)
    theirs = other.assign(tile_id=other["tile_id"].astype(str)).set_index("tile_id")
    out = []
    for col in CONTEXT_COLUMNS:
        differing = diff.index[diff[col]]
        if len(differing):
            k = differing[0]
            tile_id = diff.loc[k, "tile_id"]
            out.append(f"{col} of {tile_id}:\n--- {_mode(table)} mode ---\n{table.loc[k, col]}"
                       f"--- {_mode(other)} mode ---\n{theirs.loc[tile_id, col]}")
    return "\n\n".join(out)


def plot_dataset_stats(acc: DatasetStats) -> Figure:
    """Three bar charts of a :class:`DatasetStats` in the class colours: pixel share and share of
    tiles containing each labelled class, and tiles per dominant class (background included)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    classes = acc.class_frame()
    labelled = classes[classes["class_index"] > 0]
    palette = dict(zip(classes["class"], classes["colour"]))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = ((labelled, "pixel_share", "pixel share (all pixels)"),
              (labelled, "presence_share", "share of tiles containing the class"),
              (classes, "tiles_dominant", "dominant class (tiles)"))
    for ax, (data, y, title) in zip(axes, panels):
        sns.barplot(data=data, x="class", y=y, hue="class", palette=palette, legend=False, ax=ax, edgecolor="k")
        ax.set_title(title)
        plt.setp(ax.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor")
        ax.set_xlabel("")
    fig.tight_layout()
    return fig


def region_dominance(acc: DatasetStats) -> pd.DataFrame:
    """Tiles whose region (columns, :data:`REGIONS` order) is dominated by each class (rows, class
    order; classes that dominate no region left out), from a :class:`DatasetStats`."""
    table = acc.region_frame().pivot(index="class", columns="region", values="tiles_dominant")
    order = [c for c in _GPT35_NAMES if table.loc[c].sum() > 0]
    return table.loc[order, list(REGIONS)]


def plot_region_dominance(acc: DatasetStats) -> Figure:
    """Heat map of :func:`region_dominance`: tiles whose region is dominated by each class."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    dominance = region_dominance(acc)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(dominance) + 1.2))
    sns.heatmap(dominance, annot=True, fmt="d", cmap="Greens", cbar=False, ax=ax)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    ax.set_title("tiles whose region is dominated by each class")
    return fig
