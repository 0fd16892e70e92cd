"""Cut georeferenced rasters into ChatEarthNet-size tiles, write the release's image products,
and build the tiles table (``tiles.parquet``) every later stage reads.

One file per concept; this module only names the public API (``from cen.tiling import X`` and
``tiling.X`` work for every name below):

* :mod:`~cen.tiling.grid`: :class:`Tile`, :class:`Grid`, :func:`tile_grid`, UTM grids, the
  512 -> 4 ChatEarthNet patches (``patch{row half}{column half}``);
* :mod:`~cen.tiling.raster_io`: windowed and by-coordinate reads (local, HTTP(S), S3 COGs),
  atomic PNG / GeoTIFF writers;
* :mod:`~cen.tiling.products`: the nine Sentinel-2 bands, the three band groups and their 8-bit
  stretches (TCI for ``rgb``, DN / 32 for the others);
* :mod:`~cen.tiling.quality`: nodata share, all-black / all-white placeholders, quality flags,
  and the eligibility rule (:func:`tile_eligibility`, ``labelled_fraction >= 0.9`` by default);
* :mod:`~cen.tiling.tile_files`: one tile's label / image files, :func:`cut_raster`;
* :mod:`~cen.tiling.table`: :data:`TILES_COLUMNS`, the hash split, writing / reading the table,
  :func:`eligible_tiles` and :func:`eligibility_summary` (used by every stage after tiling);
* :mod:`~cen.tiling.views`: figures of a tiles table for the notebooks.
"""

from __future__ import annotations

from rasterio.windows import Window

from cen.tiling.grid import (
    PATCH_NAMES,
    TILE_SIZE,
    Grid,
    Tile,
    TilingError,
    bounds_grid,
    footprint_lonlat,
    merge_patches,
    patch_parent,
    patch_tiles,
    split_patches,
    tile_grid,
    utm_crs,
    utm_grid,
)
from cen.tiling.products import (
    BAND_GROUPS,
    OTHER_DN_PER_LEVEL,
    RGB_DN_PER_LEVEL,
    S2_BANDS,
    band_group_to_uint8,
)
from cen.tiling.quality import (
    BLACK_MAX,
    DEFAULT_MIN_LABELLED,
    EXCLUDE_REASONS,
    NODATA_FLAG_FRACTION,
    WHITE_MIN,
    is_all_black,
    is_all_white,
    labelled_fraction,
    nodata_fraction,
    quality_flags,
    tile_eligibility,
)
from cen.tiling.raster_io import (
    GDAL_HTTP_ENV,
    gdal_path,
    open_on_grid,
    raster_tiles,
    read_band_stack,
    read_label_png,
    read_on_grid,
    png_bytes,
    read_png,
    read_rgb,
    read_tile,
    write_geotiff,
    write_label_png,
    write_png,
)
from cen.tiling.table import (
    OVERVIEW_COLUMNS,
    PATH_COLUMNS,
    REQUIRED_COLUMNS,
    SPLIT_FRACTIONS,
    TILES_COLUMNS,
    TILES_VERSION,
    assign_split,
    eligibility_summary,
    eligibility_table,
    eligible_mask,
    eligible_tiles,
    exclusion_counts,
    provenance_examples,
    read_tiles_table,
    tile_counts,
    tile_record,
    tiles_frame,
    tiles_overview,
    tiles_summary,
    write_tiles_table,
)
from cen.tiling.tile_files import cut_raster, write_image_tile, write_label_tile
from cen.tiling.views import (
    class_legend,
    plot_band_groups,
    plot_eligibility,
    plot_footprints,
    plot_image_tiles,
    plot_label_map,
    plot_label_tiles,
    tile_title,
)

__all__ = [name for name in dir() if not name.startswith("_") and name != "annotations"]
