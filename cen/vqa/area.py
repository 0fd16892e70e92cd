"""``area``: which share of the labelled pixels of ``region`` is ``class_a``? (multiple choice)

``answer_value`` is the share rounded to two decimals (half up, in integers: the rounded percent
``(200 c + t) // (2 t)`` over 100 for ``c`` class pixels of ``t`` labelled ones); the choices are
the five proportion bins of Algorithm 1 (:data:`cen.stats.SIZE_WORDS`: rounded percent 0-9,
10-19, 20-49, 50-79, 80-100), and the correct one is the bin of that rounded percent. Asked for
classes with at least one pixel in the region. Each question draws a target bin, so the correct
bins spread as evenly as the tiles allow.
"""

from __future__ import annotations

import numpy as np

from cen.stats import SIZE_WORDS
from cen.vqa.features import TileFeatures
from cen.vqa.sampler import Chunk, Picks, labelled_totals, pick

TASK = "area"
FORMAT = "multiple_choice"

BIN_UPPER = np.array([upper for upper, _ in SIZE_WORDS])
"""Inclusive upper rounded percent of each bin (from :data:`cen.stats.SIZE_WORDS`)."""

BIN_LABELS: tuple[str, ...] = tuple(
    f"{word} ({lo}-{hi} %)" for (hi, word), lo in zip(SIZE_WORDS, [0] + [u + 1 for u, _ in SIZE_WORDS[:-1]])
)
"""The five choices, in bin order: ``extra small (0-9 %)`` ... ``extra large (80-100 %)``."""

TEMPLATES = {
    "area": (
        ("area.0", "How much of {region} does {a} cover?"),
        ("area.1", "What share of the labelled area of {region} is {a}?"),
        ("area.2", "Which proportion of {region} is covered by {a}?"),
    ),
}


def rounded_percent(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Percent ``100 count / total`` rounded half up, exactly (integers); 0 where ``total`` is 0."""
    count = np.asarray(count, np.int64)
    total = np.asarray(total, np.int64)
    safe = np.maximum(total, 1)
    return np.where(total > 0, (200 * count + safe) // (2 * safe), 0)


def bin_of_percent(percent: np.ndarray) -> np.ndarray:
    """Bin index 0-4 of rounded percents."""
    return np.searchsorted(BIN_UPPER, np.asarray(percent), side="left")


def candidates(chunk: Chunk) -> np.ndarray:
    """``(n, 66)`` bool: region x class with at least one pixel of the class in the region."""
    return ((chunk.features.counts[:, :, 1:] > 0) & chunk.labelled[:, None, None]).reshape(len(chunk), -1)


def sample(chunk: Chunk, quota: np.ndarray, rng: np.random.Generator) -> Picks:
    f = chunk.features
    n = len(chunk)
    counts = f.counts[:, :, 1:]
    totals = labelled_totals(f)[:, :, None]
    percent = rounded_percent(counts, totals)
    bins = bin_of_percent(percent).reshape(n, -1)
    valid = candidates(chunk)
    rows, cols = pick(rng, valid, quota, answer=bins, n_answers=len(BIN_LABELS))
    region, cls = np.divmod(cols, 11)
    pct = percent.reshape(n, -1)[rows, cols]
    correct = bins[rows, cols]
    choices = [[BIN_LABELS[c]] + [BIN_LABELS[k] for k in range(len(BIN_LABELS)) if k != c] for c in correct.tolist()]
    return Picks(TASK, FORMAT, rows, np.full(len(rows), "area", object), [round(p / 100, 2) for p in pct.tolist()],
                 [BIN_LABELS[c] for c in correct.tolist()], class_a=cls + 1, region=region, choices=choices)


def answer(f: TileFeatures, i: int, class_a: int, class_b: int, region: int, meta: dict) -> float:
    total = int(f.counts[i, region, 1:].sum())
    return round(int(rounded_percent(f.counts[i, region, class_a], total)) / 100, 2)
