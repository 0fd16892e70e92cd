"""A plain per-map transcription of the ChatEarthNet release's statistics, as reference.

Written from the lead's reading of ``generate_description_chatgpt3_5_text.py`` and
``generate_description_chatgpt4v.py`` (zhu-xlab/ChatEarthNet) in the release's own style:
``Counter`` over the raster, ``np.unique`` per region, Python loops. Used by tests/test_stats.py
and benchmarks/bench_stats.py to check ``cen.stats`` in compat mode and as the speed baseline.

One deliberate pin: the release sorts with numpy's default (unstable on AVX-512 builds of
numpy >= 1.25) ``argsort``; here ``kind="stable"`` reproduces classic numpy's insertion sort for
short arrays, which is the tie rule ``cen.stats`` documents. ``random.choice`` becomes
``rng.choice`` so that a seeded generator makes the nouns repeatable.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

GPT35_LABELS = ["background", "water", "developed area", "tree", "shrub", "grass", "crop",
                "bare land", "snow", "wetland", "mangroves", "moss"]
GPT4V_LABELS = ["background", "water", "developed", "tree", "shrub", "grass", "crop",
                "bare", "snow", "wetland", "mangroves", "moss"]
THRESHOLD = 20


def _quarters(image, names):
    rows, cols = image.shape
    return dict(zip(names, (
        image[: rows // 2, : cols // 2],
        image[: rows // 2, cols // 2:],
        image[rows // 2:, : cols // 2],
        image[rows // 2:, cols // 2:],
        image[rows // 4: 3 * rows // 4, cols // 4: 3 * cols // 4],
    )))


def _overall(image):
    counter = Counter(list(image.reshape(-1)))
    ordered = dict(sorted(counter.items(), key=lambda kv: kv[1], reverse=True))
    out = ""
    for value, n in ordered.items():
        if value == 0 or n < THRESHOLD:
            continue
        out += f"{GPT35_LABELS[value]}; "
    return out


def _top_types(patch):
    pixels = [v for row in patch for v in row if v != 0]
    values, counts = np.unique(pixels, return_counts=True)
    total = sum(counts)
    shares = {values[i]: counts[i] / float(total) for i in range(len(values))}
    keep_v = [values[i] for i in range(len(counts)) if counts[i] >= THRESHOLD]
    keep_c = [counts[i] for i in range(len(counts)) if counts[i] >= THRESHOLD]
    freq = np.column_stack((keep_v, keep_c))
    freq = freq[freq[:, 1].argsort(kind="stable")[::-1]]
    top = freq[:3, 0] if freq.shape[0] >= 3 else freq[:, 0]
    return top, shares


def _size_phrase(percent, rng):
    nouns = ["fraction", "part", "portion", "amount", "quantity"]
    if 0 <= percent <= 9:
        return f"extra small {rng.choice(nouns)}"
    if 10 <= percent <= 19:
        return f"small {rng.choice(nouns)}"
    if 20 <= percent <= 49:
        return f"medium {rng.choice(nouns)}"
    if 50 <= percent <= 79:
        return f"large {rng.choice(nouns)}"
    if 80 <= percent <= 100:
        return f"extra large {rng.choice(nouns)}"
    raise Exception("Wrong portion")


def gpt35_reference(image: np.ndarray, rng: random.Random) -> str:
    """The GPT-3.5 script's ``analyze_segmentation_map(image)``."""
    context = _overall(image) + "\n"
    for name, patch in _quarters(image, ["top left", "top right", "bottom left", "bottom right", "middle"]).items():
        top, shares = _top_types(patch)
        phrases = [_size_phrase(int(round(shares[v], 2) * 100), rng) for v in top]
        context += f"The {name} mainly contains the following land cover types, in descending order of content: "
        names = [GPT35_LABELS[v] for v in top]
        if len(names) == 3:
            context += f"{names[0]} ({phrases[0]}), {names[1]} ({phrases[1]}), and {names[2]} ({phrases[2]}).\n"
        if len(names) == 2:
            context += f"{names[0]} ({phrases[0]}) and {names[1]} ({phrases[1]}).\n"
        if len(names) == 1:
            context += f"{names[0]} ({phrases[0]}).\n"
    return context


def gpt4v_region_reference(image: np.ndarray) -> str:
    """The GPT-4V script's ``analyze_segmentation_map(image)``."""
    out = ""
    for name, patch in _quarters(image, ["top_left", "top_right", "bottom_left", "bottom_right", "middle"]).items():
        values, counts = np.unique(patch, return_counts=True)
        props = counts / counts.sum()
        line = f"{name} distribution:"
        for i in np.argsort(-props, kind="stable"):
            if values[i] == 0:
                continue
            line += f" {GPT4V_LABELS[values[i]]}: {props[i]:.2f};"
        out += line + "\n"
    return out


def gpt4v_class_reference(image: np.ndarray) -> str:
    """The GPT-4V script's ``analyze_image(image)``."""
    names = ["top left part", "top right part", "bottom left part", "bottom right part", "middle part"]
    parts = _quarters(image, names)
    out = ""
    for value in Counter(list(image.reshape(-1))):
        if value == 0:
            continue
        out += f"{GPT4V_LABELS[value]}: "
        for name, patch in parts.items():
            out += f" {name}: {np.count_nonzero(patch == value) / (128. * 128.):.2%} "
        out += "\n"
    return out


def counts_reference(image: np.ndarray) -> np.ndarray:
    """(6, 12) counts per region (whole first) with ``np.unique`` per region, release style."""
    out = np.zeros((6, 12), dtype=np.int64)
    regions = [image, *_quarters(image, list("abcde")).values()]
    for r, patch in enumerate(regions):
        values, counts = np.unique(patch, return_counts=True)
        out[r, values] = counts
    return out
