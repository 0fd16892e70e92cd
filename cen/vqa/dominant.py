"""``dominant``: which class has the most pixels in ``region``? (multiple choice)

Asked only when the leader beats the second class by at least 5 % of the region's labelled
pixels (``20 (c1 - c2) >= t``, exact), so the answer is clear. Four choices: the leader and
three distractors, preferring other classes of the region (then any class).
"""

from __future__ import annotations

import numpy as np

from cen.vqa.features import TileFeatures
from cen.vqa.sampler import CLASS_NAMES, Chunk, Picks, labelled_totals, pick

TASK = "dominant"
FORMAT = "multiple_choice"
N_CHOICES = 4

TEMPLATES = {
    "dominant": (
        ("dominant.0", "Which land cover type covers the most of {region}?"),
        ("dominant.1", "What is the dominant land cover type in {region}?"),
        ("dominant.2", "Which class occupies the largest area of {region}?"),
    ),
}


def leaders(counts: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(leader index 1-11, clear)`` of labelled counts ``(..., 11)`` with totals ``(...)``."""
    top2 = -np.sort(-counts, axis=-1)[..., :2]
    leader = counts.argmax(axis=-1) + 1
    clear = (totals > 0) & (20 * (top2[..., 0] - top2[..., 1]) >= totals)
    return leader, clear


def candidates(chunk: Chunk) -> np.ndarray:
    """``(n, 6)`` bool: regions with a clear leader."""
    return leaders(chunk.features.counts[:, :, 1:], labelled_totals(chunk.features))[1] & chunk.labelled[:, None]


def sample(chunk: Chunk, quota: np.ndarray, rng: np.random.Generator) -> Picks:
    f = chunk.features
    counts = f.counts[:, :, 1:]
    leader, clear = leaders(counts, labelled_totals(f))
    valid = clear & chunk.labelled[:, None]
    rows, region = pick(rng, valid, quota, answer=leader - 1, n_answers=11)
    lead = leader[rows, region]
    score = rng.random((len(rows), 11)) + 2.0 * (counts[rows, region] > 0)
    score[np.arange(len(rows)), lead - 1] = -np.inf
    distract = np.argsort(-score, axis=1)[:, : N_CHOICES - 1] + 1
    choices = [[CLASS_NAMES[c] for c in [ld, *d]] for ld, d in zip(lead.tolist(), distract.tolist())]
    names = [CLASS_NAMES[c] for c in lead.tolist()]
    return Picks(TASK, FORMAT, rows, np.full(len(rows), "dominant", object), names, names, region=region,
                 choices=choices)


def answer(f: TileFeatures, i: int, class_a: int, class_b: int, region: int, meta: dict) -> str | None:
    counts = f.counts[i, region, 1:]
    leader, clear = leaders(counts, counts.sum())
    return CLASS_NAMES[int(leader)] if bool(clear) else None
