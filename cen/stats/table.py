"""The tidy statistics table (``stats.parquet``): one row per tile, counts, shares, contexts.

:func:`stats_table` turns a stack of label maps into rows; :func:`counts_from_table` gives the
``(N, 6, 12)`` counts back. Reading tiles and writing the file is :mod:`cen.stats.io`.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np
import pandas as pd

from cen.landcover import N_INDICES, class_names
from cen.stats.contexts import DEFAULT_SEED, gpt4v_texts, gpt35_texts
from cen.stats.counting import REGION_SLUGS, REGIONS, as_label_stack, counts_of_stack

STATS_VERSION = "2"
"""Version of the statistics and context texts; stored in every ``stats.parquet`` row (2: default-mode
shares are of the whole region, with its unlabelled part stated)."""

CLASS_SLUGS: tuple[str, ...] = tuple(n.replace(" ", "_") for n in class_names("gpt35"))
"""Column-name form of the class names, by index (``background``, ``water``, ``developed_area`` ...)."""

COUNT_COLUMNS: tuple[str, ...] = tuple(f"count_{r}_{c}" for r in REGION_SLUGS for c in CLASS_SLUGS)
"""The 72 count columns of the stats table, region-major (``count_whole_background`` ...)."""

SHARE_COLUMNS: tuple[str, ...] = tuple(f"share_{c}" for c in CLASS_SLUGS)
"""Whole-map pixel share per class (background included), float64."""

CONTEXT_COLUMNS = ("gpt35_context", "gpt4v_class_block", "gpt4v_region_block")
"""The three context strings of a row, as the prompts embed them."""

STATS_REQUIRED = ("tile_id", *COUNT_COLUMNS, *CONTEXT_COLUMNS, "stats_version", "compat")
"""Columns a later stage may rely on (checked by :func:`cen.stats.read_stats`)."""

_GPT35_NAMES = class_names("gpt35")
_TEXT_COLUMNS = ("tile_id", "top1_class", "top2_class", "top3_class", "dominant_class", "gpt35_context",
                 "gpt4v_class_block", "gpt4v_region_block", "empty_regions", "stats_version")


def tile_rng(seed: int, tile_id: str) -> random.Random:
    """The noun generator of one tile: ``random.Random(f"{seed}:{tile_id}")``.

    Seeding per tile keeps a tile's text independent of batch order and worker count.
    """
    return random.Random(f"{seed}:{tile_id}")


def stats_table(
    labels_stack: np.ndarray,
    tile_ids: Sequence[str],
    *,
    compat: bool = False,
    seed: int = DEFAULT_SEED,
    batch_size: int = 512,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per tile: counts, shares, top classes and both contexts.

    ``labels_stack``: ``(N, H, W)`` (or one ``(H, W)``) ChatEarthNet indices; ``tile_ids``: N
    unique ids. Columns: ``tile_id``, ``height``, ``width``, :data:`COUNT_COLUMNS` (int32),
    :data:`SHARE_COLUMNS`, ``n_classes`` (labelled classes present), ``dominant_class`` (gpt35
    name of the largest labelled class, ``"background"`` if none), ``top1_class`` ...
    ``top3_class`` (labelled classes by count, missing (NaN) when fewer; text columns use
    pandas' ``str`` dtype), ``gpt35_context``,
    ``gpt4v_class_block``, ``gpt4v_region_block``, ``empty_regions`` (comma-separated regions
    whose GPT-3.5 line lists no class), ``stats_version``, ``compat``, ``seed``.
    Nouns come from :func:`tile_rng` ``(seed, tile_id)``.
    """
    stack = as_label_stack(labels_stack)
    ids = [str(t) for t in tile_ids]
    if len(ids) != stack.shape[0]:
        raise ValueError(f"stats_table: {stack.shape[0]} label maps but {len(ids)} tile ids")
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise ValueError(f"stats_table: tile id {dup!r} occurs more than once")
    frames = []
    starts = range(0, len(ids), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="statistics", unit="batch")
    for s in starts:
        frames.append(_table_batch(stack[s : s + batch_size], ids[s : s + batch_size], compat, seed))
    if not frames:
        return _table_batch(stack[:0], [], compat, seed)
    return pd.concat(frames, ignore_index=True)


def _table_batch(stack: np.ndarray, ids: list[str], compat: bool, seed: int) -> pd.DataFrame:
    n, h, w = stack.shape
    counts = counts_of_stack(stack)
    g35, empty = gpt35_texts(stack, counts, compat, [tile_rng(seed, t) for t in ids])
    cls_block, reg_block = gpt4v_texts(stack, counts, compat)
    data: dict[str, object] = {"tile_id": ids, "height": np.full(n, h, np.int32), "width": np.full(n, w, np.int32)}
    flat_counts = counts.reshape(n, len(COUNT_COLUMNS)).astype(np.int32)
    for k, col in enumerate(COUNT_COLUMNS):
        data[col] = flat_counts[:, k]
    whole = counts[:, 0, :]
    shares = whole / float(h * w)
    for k, col in enumerate(SHARE_COLUMNS):
        data[col] = shares[:, k]
    labelled = whole[:, 1:]
    data["n_classes"] = (labelled > 0).sum(axis=1).astype(np.int32)
    order = np.argsort(-labelled, axis=1, kind="stable")  # ties: ascending index
    names = np.array(_GPT35_NAMES[1:], dtype=object)
    for k in range(3):
        col = names[order[:, k]] if n else np.array([], dtype=object)
        has = labelled[np.arange(n), order[:, k]] > 0 if n else np.array([], dtype=bool)
        data[f"top{k + 1}_class"] = np.where(has, col, None)
    data["dominant_class"] = [t if t is not None else "background" for t in data["top1_class"]]
    data["gpt35_context"] = g35
    data["gpt4v_class_block"] = cls_block
    data["gpt4v_region_block"] = reg_block
    data["empty_regions"] = empty
    data["stats_version"] = STATS_VERSION
    data["compat"] = compat
    data["seed"] = np.int64(seed)
    frame = pd.DataFrame(data)
    for col in _TEXT_COLUMNS:
        frame[col] = frame[col].astype("str")
    return frame


def counts_from_table(table: pd.DataFrame, *, source: str = "stats table") -> np.ndarray:
    """``(N, 6, 12)`` int64 counts back from a stats table's :data:`COUNT_COLUMNS`."""
    missing = [c for c in COUNT_COLUMNS if c not in table.columns]
    if missing:
        raise KeyError(f"{source}: missing column {missing[0]!r} ({len(missing)} count columns missing)")
    return table[list(COUNT_COLUMNS)].to_numpy(dtype=np.int64).reshape(len(table), len(REGIONS), N_INDICES)
