"""``presence``: is ``class_a`` present in ``region``? (yes/no)

Present means at least :data:`cen.stats.THRESHOLD` (20) pixels of the class in the region,
Algorithm 1's threshold. Candidates are every class x region of a labelled tile; each question
draws its target answer (yes or no) at random, so answers are balanced wherever a tile allows
both. A "no" prefers a class that does occur in the tile (somewhere else, or with fewer than
20 pixels here), so that "no" is not simply "a rare class".
"""

from __future__ import annotations

import numpy as np

from cen.stats import THRESHOLD
from cen.vqa.features import TileFeatures
from cen.vqa.sampler import Chunk, Picks, pick

TASK = "presence"
FORMAT = "yes_no"

TEMPLATES = {
    "presence": (
        ("presence.0", "Is there {a} in {region}?"),
        ("presence.1", "Does {region} contain {a}?"),
        ("presence.2", "Is any {a} present in {region}?"),
        ("presence.3", "Can {a} be found in {region}?"),
    ),
}
"""Question wordings (``{a}`` class name, ``{region}`` region phrase)."""


def candidates(chunk: Chunk) -> np.ndarray:
    """``(n, 66)`` bool: every region x class of a labelled tile (region-major)."""
    return np.repeat(chunk.labelled[:, None], 66, axis=1)


def sample(chunk: Chunk, quota: np.ndarray, rng: np.random.Generator) -> Picks:
    f = chunk.features
    n = len(chunk)
    counts = f.counts[:, :, 1:]  # (n, 6 regions, 11 classes)
    answer = (counts >= THRESHOLD).reshape(n, -1).astype(np.int64)
    valid = candidates(chunk)
    in_tile = (f.counts[:, 0, 1:] > 0)[:, None, :].repeat(6, axis=1).reshape(n, -1)
    bonus = 0.5 * (in_tile & (answer == 0))
    rows, cols = pick(rng, valid, quota, answer=answer, n_answers=2, bonus=bonus)
    region, cls = np.divmod(cols, 11)
    yes = answer[rows, cols].astype(bool)
    return Picks(TASK, FORMAT, rows, np.full(len(rows), "presence", object), yes.tolist(),
                 ["yes" if v else "no" for v in yes], class_a=cls + 1, region=region)


def answer(f: TileFeatures, i: int, class_a: int, class_b: int, region: int, meta: dict) -> bool:
    """The answer for tile ``i`` of ``f`` (the label oracle)."""
    return bool(f.counts[i, region, class_a] >= THRESHOLD)
