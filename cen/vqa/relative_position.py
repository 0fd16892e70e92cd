"""``relative_position``: where is ``class_a`` relative to ``class_b``? (multiple choice)

From the centroids of all pixels of each class (row down = south, column right = east, north
up): the direction of the larger of the row and column offsets. Asked only when both classes
are present (at least 20 pixels) and that offset is at least 16 pixels; an exact tie of the two
offsets is not asked. All comparisons are exact integers (centroid offsets scaled by both pixel
counts). Choices: the four directions; each question draws a target direction.
"""

from __future__ import annotations

import numpy as np

from cen.vqa.features import TileFeatures
from cen.vqa.sampler import Chunk, Picks, pick, present

TASK = "relative_position"
FORMAT = "multiple_choice"
MIN_OFFSET = 16
"""Minimum centroid offset (pixels) along the deciding axis."""

DIRECTIONS: tuple[str, ...] = ("north", "south", "east", "west")

TEMPLATES = {
    "relative_position": (
        ("relative_position.0", "Where is {a} relative to {b} in {region}?"),
        ("relative_position.1", "In which direction from {b} does {a} lie in {region}?"),
        ("relative_position.2", "Is {a} mostly north, south, east or west of {b} in {region}?"),
    ),
}

ORDERED = np.array([(a, b) for a in range(1, 12) for b in range(1, 12) if a != b])
"""The 110 ordered class pairs."""


def directions(n_a, n_b, rs_a, rs_b, cs_a, cs_b) -> tuple[np.ndarray, np.ndarray]:
    """``(direction index into DIRECTIONS, askable)`` from pixel counts and doubled coordinate sums."""
    n_a, n_b = np.asarray(n_a, np.int64), np.asarray(n_b, np.int64)
    dy = np.asarray(rs_a, np.int64) * n_b - np.asarray(rs_b, np.int64) * n_a  # = 2 n_a n_b (row_a - row_b)
    dx = np.asarray(cs_a, np.int64) * n_b - np.asarray(cs_b, np.int64) * n_a
    vertical = np.abs(dy) > np.abs(dx)
    big = np.maximum(np.abs(dy), np.abs(dx)) >= 2 * MIN_OFFSET * n_a * n_b
    askable = big & (np.abs(dy) != np.abs(dx)) & (n_a > 0) & (n_b > 0)
    d = np.where(vertical, np.where(dy < 0, 0, 1), np.where(dx > 0, 2, 3))
    return d, askable


def _directions(chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    f = chunk.features
    pres = present(f)
    a, b = ORDERED[:, 0], ORDERED[:, 1]
    whole = f.counts[:, 0, :]
    d, askable = directions(whole[:, a], whole[:, b], f.row_sum2[:, a], f.row_sum2[:, b], f.col_sum2[:, a],
                            f.col_sum2[:, b])
    return d, pres[:, a] & pres[:, b] & askable & chunk.labelled[:, None]


def candidates(chunk: Chunk) -> np.ndarray:
    """``(n, 110)`` bool: ordered pairs of present classes with a clear direction."""
    return _directions(chunk)[1]


def sample(chunk: Chunk, quota: np.ndarray, rng: np.random.Generator) -> Picks:
    a, b = ORDERED[:, 0], ORDERED[:, 1]
    d, valid = _directions(chunk)
    rows, cols = pick(rng, valid, quota, answer=d, n_answers=4)
    dirs = d[rows, cols]
    names = [DIRECTIONS[k] for k in dirs.tolist()]
    choices = [[DIRECTIONS[k]] + [x for j, x in enumerate(DIRECTIONS) if j != k] for k in dirs.tolist()]
    return Picks(TASK, FORMAT, rows, np.full(len(rows), "relative_position", object), names, names,
                 class_a=a[cols], class_b=b[cols], region=np.zeros(len(rows), np.int64), choices=choices)


def answer(f: TileFeatures, i: int, class_a: int, class_b: int, region: int, meta: dict) -> str | None:
    w = f.counts[i, 0]
    d, ok = directions(w[class_a], w[class_b], f.row_sum2[i, class_a], f.row_sum2[i, class_b],
                       f.col_sum2[i, class_a], f.col_sum2[i, class_b])
    return DIRECTIONS[int(d)] if bool(ok) else None
