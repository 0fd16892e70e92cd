"""The offline ``template`` captioner: fluent, deterministic paragraph captions from statistics.

Input is one tile's ``(6, 12)`` region counts (:func:`cen.stats.region_counts`: regions whole,
top left, top right, bottom left, bottom right, middle; ChatEarthNet indices 0-11) or its
``(H, W)`` label map. The caption follows the release's GPT-3.5 constraints:

1. an opening sentence, then the dominant class of the image with its share and where it leads;
2. one sentence per region (top left, top right, bottom left, bottom right, middle), classes of
   >= 20 pixels in descending order with the Algorithm-1 size word of their share of the region's
   labelled pixels ("a large portion", "an extra small fraction");
3. a closing sentence naming the theme and every class covering >= 5 % of the labelled pixels.

Every claim is true of the counts: classes are named only where they have pixels, size words
are the exact buckets, no banned word, colour word or reference to another image is used. The
wording varies between tiles (connectors and nouns drawn from a generator seeded by ``seed`` and
the counts), and is identical for identical input.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np

from cen.landcover import N_INDICES, PARTS, class_names

TEMPLATE_CAPTIONER_VERSION = "template-1"
"""Version of this captioner's wording; stored as ``template_version`` of its captions."""

MIN_PIXELS = 20
"""A class is named in a region only with at least this many pixels (the release's threshold)."""

MENTION_SHARE = 0.05
"""The closing sentence names every class with at least this share of the labelled pixels."""

_NAMES = class_names("gpt35")
_REGIONS = PARTS
_NOUNS = ("fraction", "part", "portion", "amount", "quantity", "share")
_SIZE = ((0.095, "extra small"), (0.195, "small"), (0.495, "medium"), (0.795, "large"), (1.01, "extra large"))

_OPENINGS = (
    "The image shows a varied distribution of land cover types.",
    "The image presents several land cover types spread over its area.",
    "The image displays a mix of land cover types across its parts.",
)
_OPENINGS_SINGLE = (
    "The image shows a uniform land cover.",
    "The image presents a single land cover type over its area.",
)
_REGION_INTROS = (
    "In the {r}, ",
    "Looking at the {r}, ",
    "Within the {r}, ",
    "Across the {r}, ",
)
_THEMES = {
    1: "a landscape shaped by water",
    2: "a built-up, developed landscape",
    3: "a wooded landscape",
    4: "a shrubland landscape",
    5: "an open grassland landscape",
    6: "an agricultural landscape",
    7: "a barren landscape",
    8: "a snow-covered landscape",
    9: "a wetland landscape",
    10: "a mangrove landscape",
    11: "a landscape of moss and lichen",
}


def size_word(share: float) -> str:
    """The Algorithm-1 size word of a share 0-1 of a region's labelled pixels (buckets on round(share, 2))."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share {share} outside 0-1")
    for upper, word in _SIZE:
        if share < upper:
            return word
    return "extra large"  # pragma: no cover - share <= 1 always hits the last bucket


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _as_counts(labels_or_counts: np.ndarray) -> np.ndarray:
    """``(6, 12)`` int64 counts from counts or from an ``(H, W)`` label map."""
    arr = np.asarray(labels_or_counts)
    if arr.shape == (6, N_INDICES) and not (arr.dtype == np.uint8 and arr.max(initial=0) < N_INDICES):
        if not np.issubdtype(arr.dtype, np.number) or (arr < 0).any():
            raise ValueError("region counts must be non-negative numbers")
        return arr.astype(np.int64)
    if arr.ndim == 2:
        from cen.stats import region_counts

        return region_counts(arr)
    raise ValueError(
        f"template_caption takes (6, 12) region counts or an (H, W) label map, got shape {arr.shape}"
    )


def _listed(row: np.ndarray) -> list[int]:
    """Classes (1-11) of one region with >= MIN_PIXELS pixels, by count descending, ties ascending index."""
    cls = [c for c in range(1, N_INDICES) if row[c] >= MIN_PIXELS]
    cls.sort(key=lambda c: -int(row[c]))
    return cls


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f" and {items[-1]}"


def _region_sentence(region: str, row: np.ndarray, rng: random.Random) -> str:
    labelled = int(row[1:].sum())
    intro = rng.choice(_REGION_INTROS).format(r=region)
    listed = _listed(row)
    if labelled == 0:
        return f"The {region} holds no labelled land cover."
    if not listed:
        return f"The {region} holds only scattered specks of land cover."
    phrases = []
    for k, c in enumerate(listed[:3]):
        size = size_word(int(row[c]) / labelled)
        noun = rng.choice(_NOUNS)
        if k == 0:
            verb = rng.choice(("covers", "occupies", "takes up"))
            phrases.append(f"{_NAMES[c]} {verb} {_article(size)} {size} {noun}")
        else:
            phrases.append(f"{_NAMES[c]} accounts for {_article(size)} {size} {noun}")
    if len(phrases) == 1:
        body = phrases[0]
    elif len(phrases) == 2:
        body = f"{phrases[0]}, followed by {phrases[1].replace(' accounts for ', ' with ')}"
    else:
        body = (
            f"{phrases[0]}, followed by {phrases[1].replace(' accounts for ', ' with ')}"
            f", and {phrases[2].replace(' accounts for ', ' adds ')}"
        )
    return intro + body + "."


def caption_from_counts(counts: np.ndarray, *, seed: int = 0) -> str:
    """Template caption of one tile from its ``(6, 12)`` region counts (see module docstring)."""
    counts = _as_counts(counts)
    if counts.shape != (6, N_INDICES):
        raise ValueError(f"expected (6, 12) region counts, got shape {counts.shape}")
    digest = hashlib.sha256(counts.astype("<i8").tobytes()).hexdigest()[:16]
    rng = random.Random(f"{seed}:{digest}")
    whole = counts[0]
    labelled = int(whole[1:].sum())
    if labelled == 0:
        return "The image holds no labelled land cover in any of its parts."
    order = [c for c in range(1, N_INDICES) if whole[c] > 0]
    order.sort(key=lambda c: -int(whole[c]))
    dom = order[0]
    dom_share = int(whole[dom]) / labelled
    present = [c for c in order if whole[c] >= MIN_PIXELS] or [dom]
    sentences = [rng.choice(_OPENINGS if len(present) > 1 else _OPENINGS_SINGLE)]

    size = size_word(dom_share)
    lead = [r for i, r in enumerate(_REGIONS[:4]) if (lst := _listed(counts[1 + i])) and lst[0] == dom]
    where = ""
    if lead and len(lead) < 4:
        where = f", and it leads in the {_join(lead)}"
    elif len(lead) == 4:
        where = ", and it leads in every quadrant"
    rank = "the dominant" if dom_share >= 0.4 else "the most common"
    sentences.append(
        f"{_NAMES[dom].capitalize()} is {rank} land cover type, covering "
        f"{_article(size)} {size} {rng.choice(_NOUNS)} of the image{where}."
    )
    for i, region in enumerate(_REGIONS):
        s = _region_sentence(region, counts[1 + i], rng)
        sentences.append(s[0].upper() + s[1:])

    others = [c for c in order[1:] if int(whole[c]) / labelled >= MENTION_SHARE and whole[c] >= MIN_PIXELS]
    theme = _THEMES[dom]
    closing = rng.choice(("Overall, the image depicts {t}", "Overall, the scene is {t}"))
    closing = closing.format(t=theme)
    if others:
        closing += f" with {_join([_NAMES[c] for c in others])}"
    sentences.append(closing + ".")
    return " ".join(sentences)


def template_caption(labels_or_region_counts: np.ndarray, *, seed: int = 0) -> str:
    """Deterministic caption of one tile from its ``(H, W)`` label map (ChatEarthNet indices)
    or its ``(6, 12)`` region counts (``cen.stats.region_counts``).

    A ``(6, 12)`` ``uint8`` array with values below 12 is read as a label map; pass counts as
    an integer type wider than ``uint8`` (``region_counts`` returns ``int64``).
    """
    return caption_from_counts(_as_counts(labels_or_region_counts), seed=seed)
