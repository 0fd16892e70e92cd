"""Answering the questions from a caption alone: what each caption variant still tells.

The attribute ablation the ChatEarthNet authors leave for future work asks how much the
relative size and position words of a caption are worth. Before training anything, a reader
can measure how much of each question family a caption *states*: :func:`caption_predictions`
answers every question of a tile from that tile's caption, read by the verification parser
(:func:`cen.verify.parse.parse_caption`: class mentions, the regions each clause speaks about,
proportion words), with fixed rules and nothing learnt:

* ``presence``: yes when the class is mentioned (not negated) for that region (for ``whole``:
  anywhere); a caption without region sentences is read for the whole image only;
* ``area``: the bin of the middle of the class's proportion claim for that region (else for the
  whole image); a class the caption does not mention: the smallest bin;
* ``dominant``: the class claimed dominant, else with the largest claim, else mentioned first,
  in that region (else in the whole caption), among the options;
* ``relative_position``: from the mean of the centres of the quadrants each class is mentioned
  in (top-left centre at row 1, column 1 of a 4 x 4 grid ...), the larger offset;
* ``counting`` (classes): the number of distinct classes mentioned;
* ``adjacency``, patch counts, boxes, location and season: no answer (captions do not say).

Scored with :func:`cen.vqa.scoring.evaluate` against the exact answers, one table per variant
(:func:`compare_variants`): a variant that drops proportion words should lose ``area`` and
``dominant``; one that drops region sentences, the regional ``presence`` and
``relative_position``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cen.landcover import REGION_SLUGS, class_names

_NAMES = class_names("gpt35")
_INDEX = {n: i for i, n in enumerate(_NAMES)}
_CENTRES = {1: (1.0, 1.0), 2: (1.0, 3.0), 3: (3.0, 1.0), 4: (3.0, 3.0), 5: (2.0, 2.0)}
"""(row, column) of each region's centre on a 4 x 4 grid of the tile (regions as in cen.landcover.REGIONS)."""


def _cls(value: Any) -> int:
    """ChatEarthNet index of a class-name cell (0 for null / NaN)."""
    return _INDEX.get(value, 0) if isinstance(value, str) else 0


def _in_region(regions: tuple[int, ...], region: int) -> bool:
    return region == 0 or region in regions


def answer_from_caption(parsed, row: dict) -> Any:
    """The answer one parsed caption gives to one question (None: the caption does not say)."""
    from cen.vqa.area import BIN_LABELS, bin_of_percent

    task, region = row["task"], REGION_SLUGS.index(row["region"])
    a, b = _cls(row["class_a"]), _cls(row["class_b"])
    said = [m for m in parsed.mentions if not m.negated]
    if task == "presence":
        return any(m.cls == a and _in_region(m.regions, region) for m in said)
    if task == "area":
        claims = [p for p in parsed.proportions if p.cls == a and p.word != "dominant"]
        here = [p for p in claims if region in p.regions] or [p for p in claims if 0 in p.regions] or claims
        if here:
            mid = 100 * (here[0].low + here[0].high) / 2
            return BIN_LABELS[int(bin_of_percent(int(np.floor(mid + 0.5))))]
        return BIN_LABELS[0] if not any(m.cls == a for m in said) else None
    if task == "dominant":
        options = [_INDEX[c] for c in row["choices"] if c in _INDEX]
        for pool in ([m for m in said if region in m.regions], said):
            claims = [p for p in parsed.proportions if p.cls in options and (region in p.regions or pool is said)]
            dom = [p.cls for p in claims if p.word == "dominant"]
            if dom:
                return _NAMES[dom[0]]
            sized = sorted((p for p in claims if p.word != "dominant"), key=lambda p: -(p.low + p.high))
            if sized:
                return _NAMES[sized[0].cls]
            first = [m.cls for m in pool if m.cls in options]
            if first:
                return _NAMES[first[0]]
        return None
    if task == "relative_position":
        def centre(cls: int) -> tuple[float, float] | None:
            pts = [_CENTRES[r] for m in said if m.cls == cls for r in m.regions if r in _CENTRES]
            return (float(np.mean([p[0] for p in pts])), float(np.mean([p[1] for p in pts]))) if pts else None

        ca, cb = centre(a), centre(b)
        if ca is None or cb is None:
            return None
        dy, dx = ca[0] - cb[0], ca[1] - cb[1]
        if max(abs(dy), abs(dx)) == 0 or abs(dy) == abs(dx):
            return None
        if abs(dy) > abs(dx):
            return "north" if dy < 0 else "south"
        return "east" if dx > 0 else "west"
    if task == "counting" and a == 0:
        return len({m.cls for m in said})
    return None


def caption_predictions(questions: pd.DataFrame, captions: pd.DataFrame, *, paradigm: str | None = "gpt35") -> pd.DataFrame:
    """Predictions (``qid``, ``prediction``) of every question whose tile has a caption in
    ``captions`` (columns ``tile_id``, ``text``; rows of ``paradigm`` when the table has several)."""
    from cen.verify.parse import parse_caption

    if paradigm is not None and "paradigm" in captions and (captions["paradigm"] == paradigm).any():
        captions = captions[captions["paradigm"] == paradigm]
    text = captions.dropna(subset=["text"]).drop_duplicates("tile_id").set_index(captions["tile_id"].name)["text"]
    text.index = text.index.astype(str)
    parsed = {t: parse_caption(str(v)) for t, v in text.items()}
    rows = questions[questions["tile_id"].astype(str).isin(parsed)]
    preds = [answer_from_caption(parsed[str(r["tile_id"])], r) for r in rows.to_dict("records")]
    return pd.DataFrame({"qid": rows["qid"].astype(str).to_numpy(), "prediction": preds})


def compare_variants(questions: pd.DataFrame, workdir: str | Path, *, paradigm: str = "gpt35",
                     resamples: int = 200, seed: int = 0) -> pd.DataFrame:
    """Accuracy per task of the caption reader on each ``captions_<variant>.parquet`` of a
    workdir (and ``captions.parquet`` as ``captions``), on the questions of the tiles every set
    captions: columns ``task``, ``n``, then one per set."""
    from cen.vqa.scoring import evaluate
    from cen.vqa.views import ablation_sets

    workdir = Path(workdir)
    sets = {f"captions_{v}": workdir / f for v, f in zip(ablation_sets(workdir)["variant"], ablation_sets(workdir)["file"])}
    if (workdir / "captions.parquet").exists():
        sets = {"captions": workdir / "captions.parquet"} | sets
    if not sets:
        return pd.DataFrame(columns=["task", "n"])
    tables = {name: pd.read_parquet(path, columns=None) for name, path in sets.items()}
    shared = set.intersection(*(set(t["tile_id"].astype(str)) for t in tables.values()))
    asked = questions[questions["tile_id"].astype(str).isin(shared)].reset_index(drop=True)
    out = None
    for name, table in tables.items():
        ev = evaluate(asked, caption_predictions(asked, table, paradigm=paradigm), resamples=resamples, seed=seed)
        t = ev.table.groupby("task", sort=False).apply(
            lambda g: pd.Series({"n": int(g["n"].sum()), name: float((g["accuracy"] * g["n"]).sum() / g["n"].sum())}),
            include_groups=False)
        out = t if out is None else out.join(t[[name]])
    return out.reset_index()
