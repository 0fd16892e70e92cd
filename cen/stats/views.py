"""Views of the statistics for notebooks: tables, texts and figures (figures are returned, not shown)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cen.landcover import CLASSES, N_INDICES, class_names
from cen.stats.counting import REGIONS, region_boxes
from cen.stats.dataset import DatasetStats
from cen.stats.io import label_paths, read_label_map
from cen.stats.table import CONTEXT_COLUMNS, counts_from_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_GPT35_NAMES = class_names("gpt35")


OVERVIEW_COLUMNS: tuple[str, ...] = (
    "tile_id", "n_classes", "dominant_class", "top1_class", "top2_class", "top3_class",
    "share_background", "share_water", "share_tree", "share_developed_area", "empty_regions",
)
"""Columns of :func:`stats_overview`: classes per tile, the largest ones, a few shares."""

REGION_OUTLINE = "#ff8c00"
"""Colour of the region outlines in :func:`plot_regions`: an orange no class uses (its RGB distance
to every class colour, background black and snow white included, is at least 100), drawn over
a thin black edge so it stays visible on any class."""

REGION_COLOURS: dict[str, str] = {name: REGION_OUTLINE for name in REGIONS[1:]}
"""Outline colour of each of the five regions in :func:`plot_regions` (one colour; the middle is dashed)."""


def stats_overview(table: pd.DataFrame) -> pd.DataFrame:
    """A stats table's :data:`OVERVIEW_COLUMNS`."""
    return table[list(OVERVIEW_COLUMNS)]


def region_class_counts(table: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """Pixels per region (columns, :data:`REGIONS` order) of each labelled class present in a
    tile (rows: ``tile_id``, ``class``), for the first ``n`` tiles of a stats table (all if ``None``)."""
    shown = table if n is None else table.head(n)
    counts = counts_from_table(shown)
    rows, index = [], []
    for tile_id, tile in zip(shown["tile_id"], counts):
        for c in range(1, N_INDICES):
            if tile[0, c] > 0:
                index.append((str(tile_id), _GPT35_NAMES[c]))
                rows.append(tile[:, c])
    out = pd.DataFrame(np.array(rows, dtype=np.int64).reshape(len(rows), len(REGIONS)), columns=list(REGIONS),
                       index=pd.MultiIndex.from_tuples(index, names=["tile_id", "class"]))
    out.columns.name = "region"
    return out


def class_legend_handles():
    """Legend patches (ChatEarthNet colour, GPT-3.5 name) of the ten labelled classes."""
    from matplotlib.patches import Patch

    return [Patch(color=tuple(v / 255 for v in cls.colour), label=cls.name_gpt35) for cls in CLASSES[1:]]


def plot_regions(table: pd.DataFrame, tiles: pd.DataFrame, n: int = 4, *, workdir: str | Path = ".") -> Figure:
    """The label maps of the first ``n`` tiles of a stats table with the five regions drawn on
    them in :data:`REGION_OUTLINE` (:func:`region_boxes`; the middle dashed), titled with classes
    and dominant class, and one legend of the classes shown (:func:`cen.tiling.plot_label_map`,
    :func:`cen.tiling.class_legend`). ``tiles`` gives each tile's ``label_path`` (the tiles table; relative
    paths are taken from ``workdir``, the tiles table's folder)."""
    import matplotlib.patheffects as pe
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from cen.tiling import class_legend, plot_label_map

    shown = table.head(n)
    if not len(shown):
        raise ValueError("plot_regions: the stats table has no rows")
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.9), squeeze=False)
    maps = []
    for ax, (_, row), path in zip(axes[0], shown.iterrows(), label_paths(tiles, shown["tile_id"], workdir)):
        labels = read_label_map(path)
        maps.append(labels)
        plot_label_map(labels, ax=ax, legend=False)
        for name, (r0, r1, c0, c1) in region_boxes(*labels.shape).items():
            ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, lw=1.5,
                                   ls="--" if name == "middle" else "-", ec=REGION_COLOURS[name], label=name,
                                   path_effects=[pe.Stroke(linewidth=2.6, foreground="black"), pe.Normal()]))
        ax.set_title(f"{row['tile_id'][-12:]}\n{row['n_classes']} classes, mostly {row['dominant_class']}", fontsize=8)
        ax.axis("off")
    class_legend(maps, fig=fig)
    fig.subplots_adjust(bottom=0.2)
    return fig


def format_contexts(table: pd.DataFrame, n: int = 2) -> str:
    """The GPT-3.5 context and the two GPT-4V blocks of the first ``n`` tiles, as they go into
    the prompts, each under a header naming the tile and the block."""
    return "\n".join(
        f"=== {row['tile_id']} ===\n--- GPT-3.5 context ---\n{row['gpt35_context']}\n"
        f"--- GPT-4V per-class block ---\n{row['gpt4v_class_block']}--- GPT-4V per-region block ---\n"
        f"{row['gpt4v_region_block']}"
        for _, row in table.head(n).iterrows()
    )


def _mode(table: pd.DataFrame) -> str:
    return "compat" if bool(table["compat"].iloc[0]) else "default"


def context_differences(table: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Which context strings differ between two stats tables of the same tiles (typically compat
    and default mode): ``tile_id``, one bool column per :data:`CONTEXT_COLUMNS` (True = differs),
    and ``table``'s ``empty_regions``. Rows in ``table``'s order, matched by ``tile_id``."""
    ids = table["tile_id"].astype(str)
    theirs = other.assign(tile_id=other["tile_id"].astype(str)).set_index("tile_id")
    missing = ids[~ids.isin(theirs.index)]
    if len(missing):
        raise ValueError(f"context_differences: tile {missing.iloc[0]!r} is not in the other table "
                         f"({len(missing)} tiles missing)")
    theirs = theirs.loc[ids]
    return pd.DataFrame({
        "tile_id": ids.to_numpy(),
        **{col: table[col].to_numpy() != theirs[col].to_numpy() for col in CONTEXT_COLUMNS},
        "empty_regions": table["empty_regions"].to_numpy(),
    }, index=table.index)


def context_difference_examples(table: pd.DataFrame, other: pd.DataFrame) -> str:
    """For each context column, the first tile whose text differs between the two tables, with
    both texts headed by their mode (the tables' ``compat`` column); ``""`` if none differs."""
    diff = context_differences(table, other)
    theirs = other.assign(tile_id=other["tile_id"].astype(str)).set_index("tile_id")
    out = []
    for col in CONTEXT_COLUMNS:
        differing = diff.index[diff[col]]
        if len(differing):
            k = differing[0]
            tile_id = diff.loc[k, "tile_id"]
            out.append(f"{col} of {tile_id}:\n--- {_mode(table)} mode ---\n{table.loc[k, col]}"
                       f"--- {_mode(other)} mode ---\n{theirs.loc[tile_id, col]}")
    return "\n\n".join(out)


def plot_dataset_stats(acc: DatasetStats) -> Figure:
    """Three bar charts of a :class:`DatasetStats` in the class colours: pixel share and share of
    tiles containing each labelled class, and tiles per dominant class (background included)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    classes = acc.class_frame()
    labelled = classes[classes["class_index"] > 0]
    palette = dict(zip(classes["class"], classes["colour"]))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = ((labelled, "pixel_share", "pixel share (all pixels)"),
              (labelled, "presence_share", "share of tiles containing the class"),
              (classes, "tiles_dominant", "dominant class (tiles)"))
    for ax, (data, y, title) in zip(axes, panels):
        sns.barplot(data=data, x="class", y=y, hue="class", palette=palette, legend=False, ax=ax, edgecolor="k")
        ax.set_title(title)
        plt.setp(ax.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor")
        ax.set_xlabel("")
    fig.tight_layout()
    return fig


def region_dominance(acc: DatasetStats) -> pd.DataFrame:
    """Tiles whose region (columns, :data:`REGIONS` order) is dominated by each class (rows, class
    order; classes that dominate no region left out), from a :class:`DatasetStats`."""
    table = acc.region_frame().pivot(index="class", columns="region", values="tiles_dominant")
    order = [c for c in _GPT35_NAMES if table.loc[c].sum() > 0]
    return table.loc[order, list(REGIONS)]


def plot_region_dominance(acc: DatasetStats) -> Figure:
    """Heat map of :func:`region_dominance`: tiles whose region is dominated by each class."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    dominance = region_dominance(acc)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(dominance) + 1.2))
    sns.heatmap(dominance, annot=True, fmt="d", cmap="Greens", cbar=False, ax=ax)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    ax.set_title("tiles whose region is dominated by each class")
    return fig
