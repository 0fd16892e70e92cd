"""``referring``: where is the largest patch of ``class_a``? (bounding box)

The box of the class's largest 8-connected component, ``[x0, y0, x1, y1]`` in pixels (``x`` the
column, ``(0, 0)`` the top-left pixel, ends exclusive) as ``answer_value``; the text answer is
GeoChat's ``{<x0><y0><x1><y1>}`` with each coordinate scaled to 0-100 of the tile's width or
height and rounded. Asked when that component has at least 20 pixels and is strictly larger
than the class's second-largest component (a tie has no single answer).
"""

from __future__ import annotations

import numpy as np

from cen.stats import THRESHOLD
from cen.vqa.features import TileFeatures
from cen.vqa.sampler import Chunk, Picks, pick

TASK = "referring"
FORMAT = "bbox"

TEMPLATES = {
    "referring": (
        ("referring.0", "Where is the largest patch of {a} in {region}?"),
        ("referring.1", "Give the bounding box of the largest {a} patch in {region}."),
        ("referring.2", "Locate the biggest connected area of {a} in {region}."),
    ),
}


def geochat_box(box, width: int, height: int) -> str:
    """``{<x0><y0><x1><y1>}`` with pixel coordinates scaled to 0-100 (rounded half up)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    s = [(200 * x0 + width) // (2 * width), (200 * y0 + height) // (2 * height),
         (200 * x1 + width) // (2 * width), (200 * y1 + height) // (2 * height)]
    return "{" + "".join(f"<{v}>" for v in s) + "}"


def askable(f: TileFeatures) -> np.ndarray:
    """``(n, 12)`` bool: the class's largest component is >= 20 px and unique."""
    ok = (f.largest >= THRESHOLD) & (f.largest > f.second)
    ok[:, 0] = False
    return ok


def candidates(chunk: Chunk) -> np.ndarray:
    """``(n, 11)`` bool: classes whose largest patch is askable."""
    return askable(chunk.features)[:, 1:] & chunk.labelled[:, None]


def sample(chunk: Chunk, quota: np.ndarray, rng: np.random.Generator) -> Picks:
    f = chunk.features
    valid = candidates(chunk)
    rows, cols = pick(rng, valid, quota)
    cls = cols + 1
    boxes = f.bbox[rows, cls]
    texts = [geochat_box(bx, int(f.width[r]), int(f.height[r])) for bx, r in zip(boxes.tolist(), rows.tolist())]
    return Picks(TASK, FORMAT, rows, np.full(len(rows), "referring", object), boxes.tolist(), texts, class_a=cls,
                 region=np.zeros(len(rows), np.int64))


def answer(f: TileFeatures, i: int, class_a: int, class_b: int, region: int, meta: dict) -> list[int] | None:
    if not askable(f)[i, class_a]:
        return None
    return [int(v) for v in f.bbox[i, class_a]]
