"""The context blocks the release fed to the language models, written from region counts.

* :func:`gpt35_context` / :func:`gpt35_texts` -- the block of the GPT-3.5 prompt (overall class
  list + one line per region with the top-3 classes and a size phrase);
* :func:`gpt4v_context` / :func:`gpt4v_texts` -- the per-class block and the per-region block
  of the GPT-4V prompt.

What a share means (default mode): every share word or number is a share of the *whole* region
(or image) it names, unlabelled (background) pixels included in the denominator, so "a large
part of the top left" is true of the top left whatever its unlabelled part; where a region (or
the image) has unlabelled pixels the context says how much ("12% of the top left is
unlabelled.", GPT-4V: ``" unlabelled: 0.12;"``), so a caption can say it too. The release
(compat mode) took the GPT-3.5 size words over the region's labelled pixels only, which calls a
single water pixel on an otherwise unlabelled tile "extra large"; :mod:`cen.verify.checks`
judges captions by the same whole-region shares (or by labelled shares where the caption says
"of the labelled area"), so it flags that overclaim.

The ``*_texts`` functions work on a whole batch: numpy picks classes, orders and size words for
all maps at once, a short Python loop assembles the strings. Both have two modes.
``compat=True`` reproduces the release's scripts (``generate_description_chatgpt3_5_text.py``,
``generate_description_chatgpt4v.py`` of zhu-xlab/ChatEarthNet) byte for byte, quirks included;
the default mode fixes the bugs (each function's docstring lists what differs).

Tie rules (where the release's order depends on numpy's sort: numpy 2.x with AVX-512 sorts
short int64/float64 arrays unstably, so the release's own output for equal counts is
platform-dependent):

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

import random
from functools import lru_cache
from typing import Sequence

import numpy as np

from cen.landcover import N_INDICES, PARTS, class_names
from cen.stats.counting import REGION_SLUGS, REGIONS, LabelError, as_label_stack, counts_of_stack, region_sizes

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

_GPT35_NAMES = class_names("gpt35")
_GPT4V_NAMES = class_names("gpt4v")
_REGION_LINE = "The {} mainly contains the following land cover types, in descending order of content: "
_PARTS = tuple(f"{r} part" for r in PARTS)
_BYTE = tuple(bytes((c,)) for c in range(N_INDICES))
_SEMI = tuple(f"{n}; " for n in _GPT35_NAMES)
_HEADERS = tuple(_REGION_LINE.format(r) for r in REGIONS)
_WORD_BOUNDS = np.array([upper for upper, _ in SIZE_WORDS])
# _PHRASE[class][size word] = "tree (large " (the noun and ")" follow)
_PHRASE = tuple(tuple(f"{name} ({word} " for _, word in SIZE_WORDS) for name in _GPT35_NAMES)
_CLASS_AXIS = np.arange(1, N_INDICES)


def unlabelled_sentence(part: str, background: int, size: int) -> str:
    """``"12% of the top left is unlabelled.\\n"``: the share of ``part`` (a region name or
    ``"image"``) without a label, for ``0 < background < size`` pixels (rounded half up, but never
    to 0 % or 100 %: "Under 1%", "99%")."""
    pct = min(99, (200 * background + size) // (2 * size))
    amount = "Under 1%" if pct == 0 else f"{pct}%"
    return f"{amount} of the {part} is unlabelled.\n"


def draw_noun(rng: random.Random) -> str:
    """One noun of :data:`NOUNS`, drawn as the release does (``random.choice``; one draw per
    listed class, in output order), so a seeded generator gives the release's exact nouns."""
    return rng.choice(NOUNS)


def check_rng(rng: random.Random | None) -> random.Random:
    """``rng``, or ``random.Random(DEFAULT_SEED)`` when None; anything without ``.choice`` is refused."""
    if rng is None:
        return random.Random(DEFAULT_SEED)
    if not hasattr(rng, "choice"):
        raise TypeError(f"rng must be a random.Random (or have .choice), got {type(rng).__name__}")
    return rng


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


def _order_desc(values: np.ndarray, ties_descending: bool = False) -> np.ndarray:
    """Indices sorting the last axis (11 labelled classes) by value descending; ties in ascending
    (or descending) class index. Exact integer keys, so the sort kind does not matter."""
    tie = _CLASS_AXIS[::-1] if ties_descending else _CLASS_AXIS
    return np.argsort(-(values * 16) + tie, axis=-1)


def _by_first_appearance(tile: np.ndarray, classes: list[int], counts: list[int] | None = None) -> list[int]:
    """``classes`` in the release's ``Counter`` order: by ``counts`` descending (if given), then by
    first appearance in a row-major scan of ``tile``."""
    first = _first_positions(tile, classes)
    if counts is None:
        return sorted(classes, key=first.__getitem__)
    return sorted(classes, key=lambda c: (-counts[c], first[c]))


def gpt35_texts(stack: np.ndarray, counts: np.ndarray, compat: bool,
                rngs: Sequence[random.Random]) -> tuple[list[str], list[str]]:
    """GPT-3.5 contexts and empty-region flags (comma-separated region names) of every map of a
    validated ``(N, H, W)`` stack with its ``(N, 6, 12)`` counts; ``rngs[i]`` draws map i's nouns."""
    whole = counts[:, 0, 1:]
    labelled = counts[:, 1:, 1:]
    # overall list: by count, ties ascending index (compat: first appearance, below)
    order_whole = _order_desc(whole)
    sorted_whole = np.take_along_axis(whole, order_whole, axis=1)
    n_listed = (whole >= THRESHOLD).sum(axis=1)
    tied = ((sorted_whole[:, 1:] == sorted_whole[:, :-1]) & (sorted_whole[:, 1:] >= THRESHOLD)).any(axis=1)
    # region lines: top 3 with >= 20 px and their size words
    order = _order_desc(labelled, ties_descending=compat)[..., :3]
    top_counts = np.take_along_axis(labelled, order, axis=2)
    n_top = (top_counts >= THRESHOLD).sum(axis=2)
    totals = labelled.sum(axis=2, keepdims=True)
    sizes = region_sizes(*stack.shape[1:])
    if compat:  # the release: int(round(count / float(total), 2) * 100), total = the region's labelled pixels
        safe = np.maximum(totals, 1)
        percent = np.trunc(np.round(top_counts / safe.astype(np.float64), 2) * 100)
    else:  # share of the whole region (unlabelled pixels included), rounded half up in integers
        size = sizes[None, 1:, None]
        percent = (200 * top_counts + size) // (2 * size)
    word = np.searchsorted(_WORD_BOUNDS, percent, side="left")

    L_order_whole, L_n_listed, L_tied = (order_whole + 1).tolist(), n_listed.tolist(), tied.tolist()
    L_whole = counts[:, 0, :].tolist()
    L_order, L_ntop, L_word = (order + 1).tolist(), n_top.tolist(), word.tolist()
    L_totals = totals[..., 0].tolist()
    L_background = counts[:, :, 0].tolist()
    L_sizes = sizes.tolist()
    texts: list[str] = []
    empties: list[str] = []
    for i in range(len(stack)):
        rng = rngs[i]
        listed = L_order_whole[i][: L_n_listed[i]]
        if compat and L_tied[i]:
            listed = _by_first_appearance(stack[i], listed, L_whole[i])
        if listed or compat:
            text = "".join([_SEMI[c] for c in listed]) + "\n"
        else:
            text = f"no land cover type covers {THRESHOLD} pixels or more; \n"
        if not compat and 0 < L_background[i][0] < L_sizes[0]:
            text += unlabelled_sentence("image", L_background[i][0], L_sizes[0])
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
                    if L_background[i][r + 1]:
                        text += unlabelled_sentence(REGIONS[r + 1], L_background[i][r + 1], L_sizes[r + 1])
                continue
            classes, words = L_order[i][r], L_word[i][r]
            phrases = [_PHRASE[classes[j]][words[j]] + draw_noun(rng) + ")" for j in range(k)]
            if k == 3:
                text += f"{_HEADERS[r + 1]}{phrases[0]}, {phrases[1]}, and {phrases[2]}.\n"
            elif k == 2:
                text += f"{_HEADERS[r + 1]}{phrases[0]} and {phrases[1]}.\n"
            else:
                text += f"{_HEADERS[r + 1]}{phrases[0]}.\n"
            if not compat and L_background[i][r + 1]:
                text += unlabelled_sentence(REGIONS[r + 1], L_background[i][r + 1], L_sizes[r + 1])
        texts.append(text)
        empties.append(",".join(empty))
    return texts, empties


def gpt4v_texts(stack: np.ndarray, counts: np.ndarray, compat: bool) -> tuple[list[str], list[str]]:
    """GPT-4V per-class blocks and per-region blocks of every map of a validated ``(N, H, W)``
    stack with its ``(N, 6, 12)`` counts."""
    _, h, w = stack.shape
    sizes = region_sizes(h, w)
    whole = counts[:, 0, 1:]
    labelled = counts[:, 1:, 1:]
    order_whole = _order_desc(whole)
    order_region = _order_desc(labelled)  # every labelled class present, share descending, ties ascending
    n_present_region = (labelled > 0).sum(axis=2)
    n_present = (whole > 0).sum(axis=1)
    fixed = [_fixed_table(int(s)) for s in sizes[1:]]
    if compat:
        pct = [_percent_table(128.0 * 128.0)] * 5
    else:  # a region's count never exceeds its size: the tables always suffice
        pct = [_percent_table(float(s)) for s in sizes[1:]]

    L_order_whole, L_npres = (order_whole + 1).tolist(), n_present.tolist()
    L_order_region, L_npr = (order_region + 1).tolist(), n_present_region.tolist()
    L_lab = counts[:, 1:, :].tolist()
    class_blocks: list[str] = []
    region_blocks: list[str] = []
    for i in range(len(stack)):
        lab = L_lab[i]
        present = L_order_whole[i][: L_npres[i]]
        if compat and len(present) > 1:
            present = _by_first_appearance(stack[i], present)
        lines = []
        for c in present:
            parts = [lab[p][c] for p in range(5)]
            if not compat or max(parts) <= 16384:
                lines.append(f"{_GPT4V_NAMES[c]}:  top left part: {pct[0][parts[0]]}  top right part: "
                             f"{pct[1][parts[1]]}  bottom left part: {pct[2][parts[2]]}  bottom right part: "
                             f"{pct[3][parts[3]]}  middle part: {pct[4][parts[4]]} \n")
            else:  # compat mode on maps larger than 256 x 256
                lines.append(f"{_GPT4V_NAMES[c]}: " + "".join(
                    f" {_PARTS[p]}: {parts[p] / 16384.0:.2%} " for p in range(5)) + "\n")
        class_blocks.append("".join(lines))

        lines = []
        for r in range(5):
            m = L_npr[i][r]
            row = lab[r]
            table = fixed[r]
            if m:
                body = "".join([f" {_GPT4V_NAMES[c]}: {table[row[c]]};" for c in L_order_region[i][r][:m]])
                if not compat and row[0]:
                    body += f" unlabelled: {table[row[0]]};"
            else:
                body = "" if compat else " no labelled land cover;"
            lines.append(f"{REGION_SLUGS[r + 1]} distribution:{body}\n")
        region_blocks.append("".join(lines))
    return class_blocks, region_blocks


def gpt35_context(labels: np.ndarray, *, compat: bool = False, rng: random.Random | None = None) -> str:
    """The context block the GPT-3.5 prompt embeds, for one ``(H, W)`` label map.

    Layout: the overall list ``"tree; water; \\n"`` (classes != background with >= 20 pixels,
    by count), then one line per region (top left, top right, bottom left, bottom right,
    middle): ``"The top left mainly contains the following land cover types, in descending order
    of content: tree (large part), water (small amount), and crop (extra small portion).\\n"``
    with the top 3 classes of >= 20 pixels and a size word for their share of the region
    (default mode: of all its pixels; compat: of its labelled pixels) (0-9 % extra small, 10-19 small, 20-49 medium, 50-79 large, 80-100
    extra large) followed by a noun drawn with ``rng.choice(NOUNS)``, one draw per listed class
    in output order. ``rng`` defaults to ``random.Random(DEFAULT_SEED)``.

    ``compat=True``: exactly the release's ``analyze_segmentation_map`` (GPT-3.5 script) for
    the same map and the same random stream: percent = ``int(round(share, 2) * 100)`` (numpy
    rounding, then truncation); a region without a class of >= 20 pixels gets the bare header
    with no newline, so the next region's line runs on; ties as in the module docstring.

    Default mode differs in: the size word is for the class's share of the *whole* region
    (unlabelled pixels included; identical for fully labelled regions), rounded half up exactly
    (``round(100 * n / region pixels)``); a region (or the image) with unlabelled pixels gets a
    sentence saying how much ("12% of the top left is unlabelled.", see
    :func:`unlabelled_sentence`; the image's right after the overall list); a region without a
    listable class gets a sentence of its own ("The top left contains no labelled land cover."
    when all background, "... only scattered land cover ..." otherwise; :func:`stats_table`
    flags it in ``empty_regions``); an empty overall list says so instead of leaving a blank;
    ties in ascending class index.
    """
    if np.ndim(labels) != 2:
        raise LabelError(f"gpt35_context takes one (H, W) label map, got shape {np.shape(labels)}")
    stack = as_label_stack(labels)
    return gpt35_texts(stack, counts_of_stack(stack), compat, [check_rng(rng)])[0][0]


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
    region line ends with its unlabelled share (``" unlabelled: 0.12;"``) when it has background
    pixels, so the shares of a line add up to 1; a region without labelled pixels says
    ``" no labelled land cover;"`` instead of nothing.
    """
    if np.ndim(labels) != 2:
        raise LabelError(f"gpt4v_context takes one (H, W) label map, got shape {np.shape(labels)}")
    stack = as_label_stack(labels)
    class_blocks, region_blocks = gpt4v_texts(stack, counts_of_stack(stack), compat)
    return class_blocks[0], region_blocks[0]
