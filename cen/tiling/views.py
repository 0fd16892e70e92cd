"""Figures of a tiles table for the notebooks (returned, not shown): label tiles, image tiles
in the three band groups, footprints, and one 512-px window stitched from its four patches.

:func:`plot_label_map` is the project's one label-map plot (ChatEarthNet palette, legend of the
classes present) and :func:`tile_title` the one way a figure says where a tile is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cen import landcover
from cen.tables import resolve_path

from cen.tiling.grid import PATCH_NAMES, merge_patches, patch_parent
from cen.tiling.products import BAND_GROUPS
from cen.tiling.raster_io import read_label_png, read_png
from cen.tiling.table import _n_classes, eligible_mask, exclusion_counts

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _file(frame, value, workdir: str | Path | None) -> Path:
    """A path of the table as a file to open: relative values from ``workdir``, default the
    table's own folder (``frame.attrs["workdir"]``, set by :func:`read_tiles_table`), else ``.``."""
    return resolve_path(value, workdir if workdir is not None else frame.attrs.get("workdir", "."))


def tile_title(row, *, with_id: bool = True) -> str:
    """Where a tile is, for a figure title: its id and its centre in degrees, e.g.
    ``"worldcover_2020_N00E006_r00000_c02304\n0.3870°N, 6.6862°E"`` (``row`` has ``tile_id``,
    ``lon``, ``lat``; a mapping or a table row)."""
    lon, lat = float(row["lon"]), float(row["lat"])
    where = f"{abs(lat):.4f}°{'N' if lat >= 0 else 'S'}, {abs(lon):.4f}°{'E' if lon >= 0 else 'W'}"
    return f"{row['tile_id']}\n{where}" if with_id else where


def _as_indices(labels) -> np.ndarray:
    """ChatEarthNet indices ``(H, W)`` of indices or of an RGB rendering (ChatEarthNet palette,
    else WorldCover's); WorldCover codes go through :func:`cen.landcover.codes_to_indices` first."""
    a = np.asarray(labels)
    if a.ndim == 3:
        try:
            return landcover.colour_to_indices(a[..., :3].astype(np.uint8))
        except ValueError:
            return landcover.colour_to_indices(a[..., :3].astype(np.uint8), palette="worldcover")
    return landcover.validate_indices(a)


def class_legend(indices, ax=None, *, fig=None, **kwargs):
    """A legend of the classes present in ``indices`` (one array or a list of them), coloured as
    drawn, in class order; on ``ax`` (beside it) or, with ``fig``, below the figure."""
    from matplotlib.patches import Patch

    arrays = indices if isinstance(indices, (list, tuple)) else [indices]
    present = set()
    for a in arrays:
        present |= set(np.unique(np.asarray(a)).tolist())
    handles = [Patch(facecolor=np.array(c.colour) / 255, edgecolor="k", label=c.name_gpt35)
               for i, c in enumerate(landcover.CLASSES) if i in present and i != landcover.BACKGROUND]
    if not present <= {landcover.BACKGROUND} and landcover.BACKGROUND in present:
        handles.append(Patch(facecolor=np.array(landcover.CLASSES[0].colour) / 255, edgecolor="k",
                             label="no data"))
    if fig is not None:
        return fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6) or 1, fontsize=8,
                          frameon=False, **kwargs)
    return ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False,
                     **kwargs)


def plot_label_map(labels, ax=None, title: str = "", *, legend: bool = True) -> Figure:
    """One label map in the ChatEarthNet palette with a legend of the classes present.

    ``labels``: ChatEarthNet indices ``(H, W)`` or an RGB rendering ``(H, W, 3)`` (e.g.
    :func:`cen.verify.label_map_rgb`); for WorldCover codes pass
    ``landcover.codes_to_indices(codes)``. Draws on ``ax`` if given, else on a
    new figure; returns the figure. The project's one label-map plot.
    """
    import matplotlib.pyplot as plt

    indices = _as_indices(labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3))
    ax.imshow(landcover.indices_to_colour(indices), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)
    if legend:
        class_legend(indices, ax)
    return ax.figure


def plot_label_tiles(frame, n: int = 8, *, workdir: str | Path | None = None) -> Figure | None:
    """The first ``n`` label tiles (ChatEarthNet colours), one panel each, titled with the tile id
    and centre (:func:`tile_title`) and the number of classes, one legend of the classes shown
    below; ``None`` if no tile has a label PNG."""
    import matplotlib.pyplot as plt

    shown = frame[frame["label_png_path"].notna()].head(n)
    if not len(shown):
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(2.9 * len(shown), 3.6), squeeze=False)
    maps = []
    for ax, (_, row) in zip(axes[0], shown.iterrows()):
        indices = read_label_png(_file(frame, row["label_png_path"], workdir))
        maps.append(indices)
        n_classes = _n_classes(row["provenance"])
        plot_label_map(indices, ax=ax, legend=False,
                       title=f"{tile_title(row)}\n{'?' if n_classes is None else n_classes} classes")
    class_legend(maps, fig=fig)
    fig.suptitle("WorldCover label tiles (ChatEarthNet colours)")
    fig.subplots_adjust(bottom=0.2)
    return fig


def plot_image_tiles(frame, n: int = 4, *, workdir: str | Path | None = None) -> Figure | None:
    """The first ``n`` image tiles (rows) in the three band groups (columns, :data:`BAND_GROUPS`),
    from their 8-bit PNGs; ``None`` if no tile has an RGB PNG."""
    import matplotlib.pyplot as plt

    shown = frame[frame["rgb_png_path"].notna()].head(n)
    if not len(shown):
        return None
    fig, axes = plt.subplots(len(shown), len(BAND_GROUPS), figsize=(7.5, 2.6 * len(shown)), squeeze=False)
    for r, (_, row) in enumerate(shown.iterrows()):
        for c, group in enumerate(BAND_GROUPS):
            path = row[f"{group}_png_path"]
            if isinstance(path, str):
                axes[r][c].imshow(read_png(_file(frame, path, workdir)))
            axes[r][c].set_title(f"{tile_title(row)}\n{group}" if c == 0 else group, fontsize=7)
            axes[r][c].axis("off")
    fig.suptitle("Sentinel-2 band groups")
    return fig


def plot_footprints(frame, annotate_max: int = 8) -> Figure:
    """EPSG:4326 footprints of the label tiles of a tiles GeoDataFrame, annotated with the end of
    their ids when there are at most ``annotate_max``."""
    import matplotlib.pyplot as plt

    labelled = frame[frame["label_path"].notna()]
    fig, ax = plt.subplots(figsize=(5, 4))
    if len(labelled):
        labelled.boundary.plot(ax=ax, color="tab:blue", linewidth=1)
    if len(labelled) <= annotate_max:
        for _, row in labelled.iterrows():
            ax.annotate(row["tile_id"][-12:], (row["lon"], row["lat"]), fontsize=6, ha="center")
    ax.set_title(f"{len(labelled)} label tiles (EPSG:4326 footprints)")
    ax.set_xlabel("lon")
    ax.set_ylabel("lat")
    return fig


def plot_band_groups(frame, parent: str | None = None, *, workdir: str | Path | None = None) -> Figure | None:
    """One 512-px Sentinel-2 window in the three band groups, its four patches stitched back
    (:func:`merge_patches`; white lines mark the patch edges).

    ``parent`` is the window id (:func:`patch_parent` of its patches), default the first image
    tile's; a window with fewer than four patches shows its first patch. ``None`` if the table
    has no image tile; ``ValueError`` if no image tile belongs to ``parent``.
    """
    import matplotlib.pyplot as plt

    imaged = frame[frame["image_path"].notna()]
    if not len(imaged):
        return None
    parents = imaged["tile_id"].map(patch_parent)
    parent = parents.iloc[0] if parent is None else parent
    window = imaged[parents == parent]
    if not len(window):
        raise ValueError(f"tiles table: no image tile of window {parent!r}")
    by_patch = {str(row["tile_id"])[len(parent) + 1:]: row for _, row in window.iterrows()}  # "patch00" ...
    fig, axes = plt.subplots(1, len(BAND_GROUPS), figsize=(3.3 * len(BAND_GROUPS), 3.4), squeeze=False)
    for ax, group in zip(axes[0], BAND_GROUPS):
        found = {p: read_png(_file(frame, row[f"{group}_png_path"], workdir)) for p, row in by_patch.items()
                 if isinstance(row[f"{group}_png_path"], str)}
        if all(p in found for p in PATCH_NAMES):
            ax.imshow(merge_patches({p: found[p].transpose(2, 0, 1) for p in PATCH_NAMES}).transpose(1, 2, 0))
            ax.axhline(found["patch00"].shape[0] - 0.5, color="w", lw=1)
            ax.axvline(found["patch00"].shape[1] - 0.5, color="w", lw=1)
        elif found:
            ax.imshow(next(iter(found.values())))
        ax.set_title(f"{group}: {', '.join(BAND_GROUPS[group])}", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{parent}: 512 px window -> patch00 | patch01 / patch10 | patch11")
    return fig


ELIGIBILITY_COLOURS = {"eligible": "tab:green", "mostly_nodata": "tab:grey", "no_label": "tab:blue",
                       "invalid_codes": "tab:red", "placeholder_black": "black", "placeholder_white": "gold"}
"""Face colours of :func:`plot_eligibility` (other reasons: ``tab:purple``)."""


def plot_eligibility(frame, max_panels: int = 3) -> Figure | None:
    """A map of the tiles' EPSG:4326 footprints coloured eligible / by exclusion reason, one panel
    per ``source`` (at most ``max_panels``; sources far apart stay readable), each titled with its
    eligibility line; ``None`` for an empty table."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from cen.tiling.table import eligibility_summary

    if frame is None or not len(frame):
        return None
    status = eligible_mask(frame).map({True: "eligible", False: None})
    if "exclude_reason" in frame.columns:
        status = status.fillna(frame["exclude_reason"])
    status = status.fillna("no_label")
    sources = list(dict.fromkeys(frame["source"].astype(str)))[:max_panels]
    fig, axes = plt.subplots(1, len(sources), figsize=(4.8 * len(sources), 4.4), squeeze=False)
    for ax, source in zip(axes[0], sources):
        part = frame[frame["source"].astype(str) == source]
        colours = [ELIGIBILITY_COLOURS.get(s, "tab:purple") for s in status[part.index]]
        part.plot(ax=ax, color=colours, edgecolor="white", linewidth=0.3)
        ax.set_title(f"{source}\n{eligibility_summary(part)}", fontsize=8)
        ax.set_xlabel("lon (°)")
        ax.set_ylabel("lat (°)")
        ax.set_aspect("equal")
    shown = ["eligible", *exclusion_counts(frame)]
    fig.legend(handles=[Patch(facecolor=ELIGIBILITY_COLOURS.get(s, "tab:purple"), label=s) for s in shown],
               loc="lower center", ncol=len(shown), fontsize=8, frameon=False)
    fig.suptitle("Eligible and excluded tiles")
    fig.subplots_adjust(bottom=0.2)
    return fig
