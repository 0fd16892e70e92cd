"""Figures of a tiles table for the notebooks (returned, not shown): label tiles, image tiles
in the three band groups, footprints, and one 512-px window stitched from its four patches.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cen.tables import resolve_path

from cen.tiling.grid import PATCH_NAMES, merge_patches, patch_parent
from cen.tiling.products import BAND_GROUPS
from cen.tiling.raster_io import read_png
from cen.tiling.table import _n_classes

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _file(frame, value, workdir: str | Path | None) -> Path:
    """A path of the table as a file to open: relative values from ``workdir``, default the
    table's own folder (``frame.attrs["workdir"]``, set by :func:`read_tiles_table`), else ``.``."""
    return resolve_path(value, workdir if workdir is not None else frame.attrs.get("workdir", "."))


def plot_label_tiles(frame, n: int = 8, *, workdir: str | Path | None = None) -> Figure | None:
    """The first ``n`` label tiles as rendered (their ChatEarthNet-colour PNGs), one panel each,
    titled with the tile centre and the number of classes; ``None`` if no tile has a label PNG."""
    import matplotlib.pyplot as plt

    shown = frame[frame["label_png_path"].notna()].head(n)
    if not len(shown):
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 2.8), squeeze=False)
    for ax, (_, row) in zip(axes[0], shown.iterrows()):
        ax.imshow(read_png(_file(frame, row["label_png_path"], workdir)))
        n_classes = _n_classes(row["provenance"])
        ax.set_title(f"{row['lon']:.3f}, {row['lat']:.3f}\n{'?' if n_classes is None else n_classes} classes",
                     fontsize=8)
        ax.axis("off")
    fig.suptitle("WorldCover label tiles (ChatEarthNet colours)")
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
            axes[r][c].set_title(f"{row['tile_id'][-7:]} {group}", fontsize=8)
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
