"""The machinery every question family shares: a chunk of tiles, candidate picking, wording, rows.

A family module (``presence.py`` ...) looks at a :class:`Chunk` (the tiles' metadata and their
:class:`~cen.vqa.features.TileFeatures`), lays out its *candidates* as an ``(n_tiles, K)``
matrix (every class x region, every class pair ...) with a validity mask and, where the
answers should be balanced, an answer code per candidate, and calls :func:`pick`. It returns
:class:`Picks`: for each chosen question the tile, the structured fields and the answer.
:func:`render` words them (a template drawn from the family's pool, the choices of a multiple
choice question in balanced positions) and returns the rows of ``vqa.parquet``.

Everything is vectorised over the tiles of a chunk; randomness comes from one
``numpy.random.Generator`` per (seed, chunk, task), so a task's questions do not depend on
which other tasks are asked, and the same tiles table, seed and chunk size give the same table.
"""

from __future__ import annotations

import json
import string
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cen.landcover import REGION_SLUGS, class_names
from cen.vqa.features import TileFeatures

CLASS_NAMES: tuple[str, ...] = class_names("gpt35")
"""Class names by ChatEarthNet index, as the GPT-3.5 prompts write them (index 0: background, never asked)."""

REGION_PHRASES: dict[str, str] = {
    "whole": "the image", "top_left": "the top left of the image", "top_right": "the top right of the image",
    "bottom_left": "the bottom left of the image", "bottom_right": "the bottom right of the image",
    "middle": "the middle of the image",
}
"""How a question names each region of :data:`cen.landcover.REGION_SLUGS` (the ``region`` column)."""

FORMATS = ("yes_no", "multiple_choice", "open", "bbox")
"""Values of the ``format`` column."""

LETTERS = string.ascii_uppercase
"""Choice letters, in choice order."""

OPTIONS_PREFIX = "\nOptions: "
"""Separates a multiple-choice question's stem from its options line (``A. tree; B. water; ...``)."""


@dataclass
class Chunk:
    """A batch of tiles as the families see them (``n`` rows in every array)."""

    index: int
    """Chunk number (0, 1, ...): part of every random stream's seed."""
    seed: int
    tile_id: np.ndarray
    split: np.ndarray
    labelled: np.ndarray
    """``(n,)`` bool: the tile's label map was read (label tasks ask only about these)."""
    features: TileFeatures
    meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per-tile metadata the label-free tasks read: ``lat``, ``lon``, ``country``, ``continent``,
    ``s2_date`` (Sentinel-2 acquisition, UTC, or NaT)."""
    failed: np.ndarray | None = None
    """``(n,)`` bool: the tile's label map could not be read (no task asks about it)."""

    def usable(self) -> np.ndarray:
        """``(n,)`` bool: tiles any task may ask about (not :attr:`failed`)."""
        return np.ones(len(self), bool) if self.failed is None else ~self.failed

    def __len__(self) -> int:
        return len(self.tile_id)


@dataclass
class Picks:
    """The questions one family chose in a chunk (all arrays have one entry per question)."""

    task: str
    format: str
    tile: np.ndarray
    pool: np.ndarray
    """Template pool key of each question (``presence``, ``counting.patches`` ...)."""
    answer_value: list[Any]
    answer_text: list[str]
    class_a: np.ndarray | None = None
    """ChatEarthNet index (0 = none)."""
    class_b: np.ndarray | None = None
    region: np.ndarray | None = None
    """Index into :data:`cen.landcover.REGION_SLUGS` (default: whole)."""
    choices: list[list[str]] | None = None
    """Multiple choice: the correct answer first, then the distractors; :func:`render` places them."""

    def __len__(self) -> int:
        return len(self.tile)

    @staticmethod
    def none(task: str, fmt: str) -> "Picks":
        return Picks(task, fmt, np.zeros(0, np.int64), np.zeros(0, object), [], [])


def pick(rng: np.random.Generator, valid: np.ndarray, quota: np.ndarray, *, answer: np.ndarray | None = None,
         n_answers: int = 0, bonus: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Choose up to ``quota[i]`` distinct valid candidates of each row of ``valid`` ``(n, K)``.

    For each slot every row gets a target answer code, dealt from shuffled blocks of
    ``0 .. n_answers - 1`` (so the targets of a chunk are as even as they can be), and prefers
    candidates whose ``answer`` code ``(n, K)`` matches it (others only when none does);
    ``bonus`` ``(n, K)`` (< 4) raises some candidates among equals. Returns ``(rows, columns)``
    of the chosen candidates, row-major.
    """
    n, k = valid.shape
    quota = np.minimum(np.asarray(quota, np.int64), valid.sum(axis=1))
    rows, cols = [], []
    used = ~valid
    for s in range(int(quota.max(initial=0))):
        score = rng.random((n, k))
        if bonus is not None:
            score += bonus
        ok = np.flatnonzero(quota > s)
        if answer is not None and n_answers:
            target = np.zeros(n, np.int64)
            blocks = -(-len(ok) // n_answers)
            target[ok] = np.concatenate([rng.permutation(n_answers) for _ in range(blocks)])[: len(ok)] if blocks else []
            score += 4.0 * (answer == target[:, None])
        score[used] = -np.inf
        best = score.argmax(axis=1)
        rows.append(ok)
        cols.append(best[ok])
        used[ok, best[ok]] = True
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    r, c = np.concatenate(rows), np.concatenate(cols)
    order = np.lexsort((c, r))
    return r[order], c[order]


class PositionDealer:
    """Positions of the correct choice, dealt from shuffled blocks ``0 .. k-1`` (so over any
    number of questions no position holds more than its share plus one block)."""

    def __init__(self) -> None:
        self._left: dict[int, deque[int]] = {}

    def deal(self, ks: Sequence[int], rng: np.random.Generator) -> list[int]:
        out = []
        for k in ks:
            left = self._left.setdefault(k, deque())
            if not left:
                left.extend(int(v) for v in rng.permutation(k))
            out.append(left.popleft())
        return out


def options_line(choices: Sequence[str]) -> str:
    """``A. tree; B. water; C. crop`` (the options line of a multiple-choice question)."""
    return "; ".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def split_question(question: str) -> tuple[str, str]:
    """A question's stem and its options line (``""`` for questions without options)."""
    stem, sep, options = question.partition(OPTIONS_PREFIX)
    return stem, options if sep else ""


def _fill(template: str, a: int, b: int, region: int) -> str:
    return template.format(a=CLASS_NAMES[a], b=CLASS_NAMES[b], region=REGION_PHRASES[REGION_SLUGS[region]])


def render(picks: Picks, chunk: Chunk, templates: dict[str, Sequence[tuple[str, str]]], rng: np.random.Generator,
           dealer: PositionDealer) -> pd.DataFrame:
    """The ``vqa.parquet`` rows of a family's picks (see :data:`cen.vqa.build.COLUMNS`)."""
    n = len(picks)
    a = picks.class_a if picks.class_a is not None else np.zeros(n, np.int64)
    b = picks.class_b if picks.class_b is not None else np.zeros(n, np.int64)
    region = picks.region if picks.region is not None else np.zeros(n, np.int64)
    draws = rng.random(n)
    questions, template_ids = [], []
    for i in range(n):
        pool = templates[picks.pool[i]]
        tid, text = pool[int(draws[i] * len(pool))]
        template_ids.append(tid)
        questions.append(_fill(text, int(a[i]), int(b[i]), int(region[i])))
    choices: list[list[str] | None] = [None] * n
    if picks.choices is not None:
        positions = dealer.deal([len(c) for c in picks.choices], rng)
        for i, (options, pos) in enumerate(zip(picks.choices, positions)):
            rest = list(options[1:])
            arranged = rest[:pos] + [options[0]] + rest[pos:]
            choices[i] = arranged
            questions[i] += OPTIONS_PREFIX + options_line(arranged)
    tiles = picks.tile
    return pd.DataFrame({
        "tile_id": chunk.tile_id[tiles].astype(str) if n else np.zeros(0, str),
        "task": picks.task,
        "format": picks.format,
        "question": questions,
        "answer": picks.answer_text,
        "choices": choices,
        "answer_value": [json.dumps(v) for v in picks.answer_value],
        "class_a": [CLASS_NAMES[v] if v else None for v in a.tolist()],
        "class_b": [CLASS_NAMES[v] if v else None for v in b.tolist()],
        "region": [REGION_SLUGS[r] for r in region.tolist()],
        "template_id": template_ids,
        "split": chunk.split[tiles].astype(str) if n else np.zeros(0, str),
    })


def present(feats: TileFeatures, region: int = 0) -> np.ndarray:
    """``(n, 12)`` bool: class has at least ``THRESHOLD`` pixels in ``region`` (background never)."""
    from cen.stats import THRESHOLD

    out = feats.counts[:, region, :] >= THRESHOLD
    out[:, 0] = False
    return out


def labelled_totals(feats: TileFeatures) -> np.ndarray:
    """``(n, 6)`` labelled (non-background) pixels per region."""
    return feats.counts[:, :, 1:].sum(axis=2)
