"""The tiles table (``tiles.parquet``, GeoParquet, one row per 256² tile): its columns, the
split, writing and reading it, and the numbers and tables notebooks show of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from cen.tables import read_table, relative_path_columns, write_parquet
from cen.tiling.grid import Tile
from cen.tiling.quality import EXCLUDE_REASONS

if TYPE_CHECKING:
    import pandas as pd

TILES_COLUMNS: tuple[str, ...] = (
    "tile_id", "source", "split", "geometry", "lon", "lat", "crs", "transform", "width", "height",
    "label_path", "label_png_path", "image_path", "rgb_png_path", "b567_png_path", "b81112_png_path",
    "label_product", "label_tiles", "s2_item_id", "datetime", "processing_baseline", "offset_applied",
    "nodata_fraction", "flags", "provenance", "labelled_fraction", "eligible", "exclude_reason", "tiles_version",
)
"""Columns of ``tiles.parquet`` in order (DEVELOPERS.md). ``transform`` is the affine
``(a, b, c, d, e, f)`` of the tile's own 256 x 256 grid in ``crs``; paths (:data:`PATH_COLUMNS`)
are stored relative to the workdir by :func:`write_tiles_table` (null where a tile has no image
or no label; older tables hold absolute paths, which still read); ``flags`` is a list of strings (:func:`quality_flags`),
``provenance`` a JSON string. ``labelled_fraction`` is the share of the tile's label pixels that
are not nodata (null without a label), ``eligible`` whether later stages use the tile and
``exclude_reason`` why not (null when eligible; :data:`cen.tiling.quality.EXCLUDE_REASONS`)."""

PATH_COLUMNS: tuple[str, ...] = ("label_path", "label_png_path", "image_path", "rgb_png_path", "b567_png_path",
                                 "b81112_png_path")
"""The file columns of the tiles table: stored relative to the table's folder (the workdir)."""

REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in TILES_COLUMNS
                                          if c not in ("labelled_fraction", "eligible", "exclude_reason"))
"""What :func:`read_tiles_table` insists on: tables written before the eligibility columns still read
(:func:`eligible_tiles` then takes every row with a label path)."""

TILES_VERSION = "tiles-2"
"""Version of the tiles table layout written by this code."""

SPLIT_FRACTIONS = (("train", 0.6), ("val", 0.1), ("test", 0.3))
"""Split shares of the release (98,092 / 16,348 / 49,048 captions = 0.6 / 0.1 / 0.3)."""


def assign_split(tile_id: str, fractions: Sequence[tuple[str, float]] = SPLIT_FRACTIONS) -> str:
    """Deterministic split of a tile id from a hash (same id -> same split on every machine)."""
    import hashlib

    u = int.from_bytes(hashlib.sha256(tile_id.encode()).digest()[:8], "big") / 2**64
    acc = 0.0
    for name, share in fractions:
        acc += share
        if u < acc:
            return name
    return fractions[-1][0]


def tile_record(tile: Tile) -> dict[str, object]:
    """Georeferencing columns of a tile as the tiles table stores them (see DEVELOPERS.md)."""
    lon, lat = tile.centre_lonlat
    return {
        "tile_id": tile.tile_id,
        "source": tile.source,
        "geometry": tile.footprint,
        "lon": lon,
        "lat": lat,
        "crs": tile.crs.to_string(),
        "transform": list(tile.transform)[:6],
        "width": tile.width,
        "height": tile.height,
        "datetime": tile.datetime,
    }


def tiles_frame(rows: Sequence[Mapping[str, object]]):
    """A GeoDataFrame (EPSG:4326) with exactly :data:`TILES_COLUMNS` from row dicts (missing -> null)."""
    import geopandas as gpd
    import pandas as pd

    df = pd.DataFrame([{c: r.get(c) for c in TILES_COLUMNS} for r in rows], columns=list(TILES_COLUMNS))
    df["tiles_version"] = TILES_VERSION
    for col in ("nodata_fraction", "lon", "lat"):
        df[col] = df[col].astype(float)
    df["offset_applied"] = df["offset_applied"].astype("boolean")
    df["labelled_fraction"] = df["labelled_fraction"].astype(float)
    # rows that did not decide eligibility: the rule for tables without the column
    undecided = df["eligible"].isna()
    has_label = df["label_path"].notna()
    df.loc[undecided, "exclude_reason"] = df.loc[undecided, "exclude_reason"].where(has_label[undecided], "no_label")
    df["eligible"] = df["eligible"].where(~undecided, has_label).astype(bool)
    df["exclude_reason"] = pd.Series([r if not e and isinstance(r, str) else None
                                      for e, r in zip(df["eligible"], df["exclude_reason"])], index=df.index, dtype=object)
    return gpd.GeoDataFrame(df, geometry="geometry", crs="EPSG:4326")


def write_tiles_table(path: str | Path, frame) -> Path:
    """Write a tiles GeoDataFrame as GeoParquet, atomically, with the :data:`PATH_COLUMNS` stored
    relative to the table's folder (its workdir) so the folder can be moved or zipped; paths
    outside the workdir stay absolute (:func:`cen.tables.relative_path_columns`)."""
    path = Path(path)
    return write_parquet(relative_path_columns(frame, path.parent, PATH_COLUMNS), path)


def read_tiles_table(path: str | Path):
    """Read ``tiles.parquet``; raises ``ValueError`` naming the file and any missing column.

    Paths stay as stored (relative to the table's folder, or absolute in older tables): open
    them with :func:`cen.tables.resolve_path` ``(value, workdir)``, or take the whole table with
    :func:`cen.tables.resolve_path_columns`. ``frame.attrs["workdir"]`` is the table's folder.
    """
    import geopandas as gpd

    frame = read_table(path, REQUIRED_COLUMNS, what="tiles table", made_by="notebook 01 data sourcing",
                       reader=gpd.read_parquet, error=ValueError)
    frame.attrs["workdir"] = str(Path(path).parent)
    return frame


def tiles_summary(frame) -> pd.DataFrame:
    """Per ``source``: tiles, tiles with labels / images, flagged tiles, and tiles per split."""
    import pandas as pd

    g = frame.groupby("source")
    out = pd.DataFrame({
        "tiles": g.size(),
        "with_label": g["label_path"].apply(lambda s: int(s.notna().sum())),
        "with_image": g["image_path"].apply(lambda s: int(s.notna().sum())),
        "flagged": g["flags"].apply(lambda s: int(sum(len(f) > 0 for f in s))),
    })
    splits = pd.crosstab(frame["source"], frame["split"])
    return out.join(splits).fillna(0).astype(int)


def eligible_mask(tiles) -> "pd.Series":
    """Boolean Series: which rows of a tiles table later stages use.

    The ``eligible`` column where the table has one (null entries: whether the row has a label
    path); a table without the column (written before it existed): every row with a label path.
    """
    import pandas as pd

    has_label = tiles["label_path"].notna() if "label_path" in tiles.columns else pd.Series(False, index=tiles.index)
    if "eligible" not in tiles.columns:
        return has_label.astype(bool)
    return tiles["eligible"].astype("boolean").fillna(has_label).astype(bool)


def eligible_tiles(tiles) -> "pd.DataFrame":
    """The eligible rows of a tiles table (same columns, same order; see :func:`eligible_mask`)."""
    return tiles[eligible_mask(tiles)]


def exclusion_counts(tiles) -> dict[str, int]:
    """Excluded tiles per ``exclude_reason`` (reasons in :data:`EXCLUDE_REASONS` order, then
    others alphabetically; only reasons that occur). A table without the column: rows without a
    label path count as ``no_label``; an excluded row without a reason as ``unspecified``."""
    import numpy as np
    import pandas as pd

    excluded = tiles[~eligible_mask(tiles)]
    none = pd.Series(None, index=excluded.index, dtype=object)
    has_label = excluded["label_path"].notna() if "label_path" in excluded.columns else none.notna()
    given = excluded["exclude_reason"].astype(object) if "exclude_reason" in excluded.columns else none
    reasons = given.where(given.notna(), pd.Series(np.where(has_label, "unspecified", "no_label"), index=excluded.index))
    counts = reasons.value_counts().to_dict()
    order = [r for r in EXCLUDE_REASONS if r in counts] + sorted(r for r in counts if r not in EXCLUDE_REASONS)
    return {r: int(counts[r]) for r in order}


def eligibility_table(tiles) -> "pd.DataFrame":
    """The eligibility accounting as a small table: one row ``eligible``, one per exclusion
    reason (:func:`exclusion_counts`), and ``all tiles``; columns ``tiles`` and ``share`` (of all
    tiles) and ``mean_labelled_fraction`` (null where no tile of the row has a label)."""
    import pandas as pd

    mask = eligible_mask(tiles)
    frac = tiles["labelled_fraction"] if "labelled_fraction" in tiles.columns else pd.Series(float("nan"),
                                                                                            index=tiles.index)
    reasons = tiles["exclude_reason"] if "exclude_reason" in tiles.columns else pd.Series(None, index=tiles.index)
    rows = [("eligible", int(mask.sum()), frac[mask].mean())]
    for reason, count in exclusion_counts(tiles).items():
        rows.append((reason, count, frac[~mask & (reasons == reason)].mean()))
    rows.append(("all tiles", len(tiles), frac.mean()))
    out = pd.DataFrame(rows, columns=["row", "tiles", "mean_labelled_fraction"]).set_index("row")
    out.insert(1, "share", (out["tiles"] / max(len(tiles), 1)).round(4))
    out["mean_labelled_fraction"] = out["mean_labelled_fraction"].astype(float).round(4)
    return out


def eligibility_summary(tiles) -> str:
    """One line: ``"N tiles: E eligible, X excluded (mostly_nodata: a, invalid_codes: b)"``.

    E + X = N and the reason counts add up to X; with nothing excluded the parentheses are
    left out (``"N tiles: N eligible, 0 excluded"``).
    """
    n = len(tiles)
    e = int(eligible_mask(tiles).sum())
    counts = exclusion_counts(tiles)
    line = f"{n} tiles: {e} eligible, {n - e} excluded"
    if counts:
        line += " (" + ", ".join(f"{r}: {c}" for r, c in counts.items()) + ")"
    return line


OVERVIEW_COLUMNS: tuple[str, ...] = (
    "tile_id", "source", "split", "lon", "lat", "crs", "label_product", "s2_item_id", "datetime",
    "processing_baseline", "offset_applied", "nodata_fraction", "flags",
)
"""Columns of :func:`tiles_overview`: where a tile is, which products and scene, and its quality."""


def tiles_overview(frame, n: int = 12) -> pd.DataFrame:
    """The first ``n`` rows of a tiles table, :data:`OVERVIEW_COLUMNS` only."""
    return frame[list(OVERVIEW_COLUMNS)].head(n)


def _n_classes(provenance: object) -> int | None:
    if not isinstance(provenance, str):
        return None
    value = json.loads(provenance).get("n_classes")
    return None if value is None else int(value)


def tile_counts(frame) -> dict[str, int]:
    """Key numbers of a tiles table (all 0 for ``None``, e.g. a release-only run).

    ``n_tiles``; ``n_label_tiles`` / ``n_image_tiles`` (non-null ``label_path`` / ``image_path``);
    ``n_flagged`` (tiles with at least one quality flag); ``max_classes_in_a_tile`` (the largest
    ``n_classes`` in the label tiles' provenance, 0 without label tiles).
    """
    if frame is None:
        return dict.fromkeys(("n_tiles", "n_label_tiles", "n_image_tiles", "n_flagged", "max_classes_in_a_tile"), 0)
    labelled = frame["label_path"].notna()
    classes = [c for c in map(_n_classes, frame.loc[labelled, "provenance"]) if c is not None]
    return {
        "n_tiles": int(len(frame)),
        "n_label_tiles": int(labelled.sum()),
        "n_image_tiles": int(frame["image_path"].notna().sum()),
        "n_flagged": int(sum(len(f) > 0 for f in frame["flags"])),
        "max_classes_in_a_tile": int(max(classes, default=0)),
    }


def provenance_examples(frame, max_chars: int = 1200) -> str:
    """The provenance of the first image tile and the first label tile as indented JSON, each
    headed by its kind and id and cut to ``max_chars`` characters."""
    out = []
    for is_label, part in frame.groupby(frame["label_path"].notna()):
        row = part.iloc[0]
        out.append(f"{'label tile' if is_label else 'image tile'} {row['tile_id']}")
        out.append(json.dumps(json.loads(row["provenance"] or "{}"), indent=1)[:max_chars])
    return "\n".join(out)

