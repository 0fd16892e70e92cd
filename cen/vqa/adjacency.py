"""``adjacency``: do ``class_a`` and ``class_b`` touch? (yes/no)

Touch means a pixel of one has a 4-neighbour (up, down, left, right) of the other. Asked about
pairs of classes both present (at least 20 pixels) in the tile, in random order; each question
draws its target answer, so yes and no balance wherever a tile has both kinds of pair.
"""

from __future__ import annotations

import numpy as np

from cen.vqa.features import TileFeatures
from cen.vqa.sampler import Chunk, Picks, pick, present

TASK = "adjacency"
FORMAT = "yes_no"

TEMPLATES = {
    "adjacency": (
        ("adjacency.0", "Does {a} touch {b} in {region}?"),
        ("adjacency.1", "Are {a} and {b} next to each other in {region}?"),
        ("adjacency.2", "Is there {a} bordering {b} in {region}?"),
    ),
}

PAIRS = np.array([(a, b) for a in range(1, 12) for b in range(a + 1, 12)])
"""The 55 unordered class pairs (ChatEarthNet indices)."""


def candidates(chunk: Chunk) -> np.ndarray:
    """``(n, 55)`` bool: pairs of classes both present in the tile."""
    pres = present(chunk.features)
    return pres[:, PAIRS[:, 0]] & pres[:, PAIRS[:, 1]] & chunk.labelled[:, None]


def sample(chunk: Chunk, quota: np.ndarray, rng: np.random.Generator) -> Picks:
    f = chunk.features
    valid = candidates(chunk)
    touch = f.adjacent[:, PAIRS[:, 0], PAIRS[:, 1]].astype(np.int64)
    rows, cols = pick(rng, valid, quota, answer=touch, n_answers=2)
    swap = rng.random(len(rows)) < 0.5
    a = np.where(swap, PAIRS[cols, 1], PAIRS[cols, 0])
    b = np.where(swap, PAIRS[cols, 0], PAIRS[cols, 1])
    yes = touch[rows, cols].astype(bool)
    return Picks(TASK, FORMAT, rows, np.full(len(rows), "adjacency", object), yes.tolist(),
                 ["yes" if v else "no" for v in yes], class_a=a, class_b=b, region=np.zeros(len(rows), np.int64))


def answer(f: TileFeatures, i: int, class_a: int, class_b: int, region: int, meta: dict) -> bool:
    return bool(f.adjacent[i, class_a, class_b])
