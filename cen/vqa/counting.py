"""``counting``: how many classes are present in the tile; how many patches of ``class_a``. (open, integer)

* ``counting.classes``: the number of classes with at least 20 pixels in the whole tile;
* ``counting.patches``: the number of 8-connected components of ``class_a`` with at least 20
  pixels (asked for classes present in the tile, so 0 is a possible answer: a class of 25
  pixels in two patches of 12 and 13).
"""

from __future__ import annotations

import numpy as np

from cen.stats import THRESHOLD
from cen.vqa.features import TileFeatures
from cen.vqa.sampler import Chunk, Picks, pick, present

TASK = "counting"
FORMAT = "open"

TEMPLATES = {
    "counting.classes": (
        ("counting.classes.0", "How many land cover types are present in {region}?"),
        ("counting.classes.1", "How many different land cover classes does {region} contain?"),
        ("counting.classes.2", "Count the land cover types present in {region}."),
    ),
    "counting.patches": (
        ("counting.patches.0", "How many separate patches of {a} are there in {region}?"),
        ("counting.patches.1", "How many distinct {a} patches does {region} contain?"),
        ("counting.patches.2", "Count the connected patches of {a} in {region}."),
    ),
}


def candidates(chunk: Chunk) -> np.ndarray:
    """``(n, 12)`` bool: column 0 the class count, column c the patches of present class c."""
    return np.concatenate([chunk.labelled[:, None], present(chunk.features)[:, 1:] & chunk.labelled[:, None]], axis=1)


def sample(chunk: Chunk, quota: np.ndarray, rng: np.random.Generator) -> Picks:
    f = chunk.features
    pres = present(f)[:, 1:]
    valid = candidates(chunk)
    rows, cols = pick(rng, valid, quota)
    is_classes = cols == 0
    cls = np.where(is_classes, 0, cols)
    n_classes = pres.sum(axis=1)
    value = np.where(is_classes, n_classes[rows], f.n_patches[rows, cls])
    pool = np.where(is_classes, "counting.classes", "counting.patches").astype(object)
    return Picks(TASK, FORMAT, rows, pool, value.tolist(), [str(v) for v in value.tolist()], class_a=cls,
                 region=np.zeros(len(rows), np.int64))


def answer(f: TileFeatures, i: int, class_a: int, class_b: int, region: int, meta: dict) -> int:
    if class_a == 0:
        return int((f.counts[i, 0, 1:] >= THRESHOLD).sum())
    return int(f.n_patches[i, class_a])
