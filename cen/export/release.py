"""The downloaded ChatEarthNet release as export samples (``cen export --release DIR``).

The release's caption files (``ChatEarthNet_caps_{35,4v}_{split}.json``) become caption
samples: tile id = the image name without ``.png`` (``{col}_{row}_patch{ij}``, a zoom-13
Web-Mercator tile and its quarter), paradigm ``gpt35`` / ``gpt4v``, the release's split, and the
patch footprint decoded from the tile grid (:func:`cen.sources.chatearthnet.parse_image_name`;
the release carries no coordinates). Images come from the extracted image archives when present
(``s2_rgb_images/``, ``s2_band_5_6_7_images/``, ``s2_band_8_11_12_images/``); without them the
samples have no image, and formats that need one (LLaVA) skip them with that reason. The
release has no label maps and no verification decisions: every caption is exported (the
authors verified them by hand), all-white / all-black placeholder images are skipped with the
reason. A caption repeated for the same image and version gets ``__2``, ``__3`` … appended to
its id, in file order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from cen.export.samples import IMAGE_CHOICES, SPLITS, PATH_COLUMNS, Samples, _skipped, sample_id

RELEASE_PRODUCT = "ChatEarthNet (Zenodo record 11003436)"
"""``source`` of every release sample."""


def mercator_transform(lonlat_bounds, size: int = 256) -> list[float]:
    """Affine ``(a, b, c, d, e, f)`` of a ``size`` x ``size`` patch in EPSG:3857 from its lon/lat bounds."""
    from pyproj import Transformer

    west, south, east, north = lonlat_bounds
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    x0, y1 = to_merc.transform(west, north)
    x1, y0 = to_merc.transform(east, south)
    return [(x1 - x0) / size, 0.0, x0, 0.0, -(y1 - y0) / size, y1]


def release_samples(root: str | Path, *, images: str = "rgb", splits: Sequence[str] | None = None,
                    paradigms: Sequence[str] | None = None) -> Samples:
    """The caption samples of a downloaded release folder (see the module docstring)."""
    from cen.sources import chatearthnet as rel
    from cen.verify.lexicon import normalise_paradigm

    if images not in IMAGE_CHOICES:
        raise ValueError(f"unknown --images {images!r}; expected one of {', '.join(IMAGE_CHOICES)}")
    root = Path(root)
    kinds = IMAGE_CHOICES[images]
    frame = rel.load_captions(root, splits=splits or rel.SPLITS, flag_placeholders=None)
    image_dirs = rel.find_image_dirs(root)
    skipped: list[dict] = []
    frame = frame.reset_index(drop=True)
    paradigm = [normalise_paradigm(v) for v in frame["version"]]
    stems = [name.removesuffix(".png") for name in frame["image"]]
    ids, seen = [], {}
    for stem, p in zip(stems, paradigm):
        base = sample_id(stem, p)
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}__{seen[base]}")
    out = pd.DataFrame({
        "id": ids, "tile_id": stems, "paradigm": paradigm, "caption": frame["caption"].tolist(),
        "split": frame["split"].tolist(), "release_version": frame["version"].tolist(),
        "release_record": frame["record"].astype(int).tolist(), "release_image": frame["image"].tolist(),
        "tile_col": frame["tile_col"].astype(int).tolist(), "tile_row": frame["tile_row"].astype(int).tolist(),
        "patch": frame["patch"].tolist(), "lon": frame["lon"].astype(float).tolist(),
        "lat": frame["lat"].astype(float).tolist(),
    })
    out["geometry"] = [g.wkt for g in frame.geometry]
    out["bbox"] = [list(map(float, g.bounds)) for g in frame.geometry]
    out["crs"] = "EPSG:3857"
    out["transform"] = [mercator_transform(g.bounds) for g in frame.geometry]
    out["width"] = 256
    out["height"] = 256
    out["source"] = RELEASE_PRODUCT
    out["verification_status"] = "release"
    for kind in ("rgb", "b567", "b81112"):
        folder = image_dirs.get(kind)
        out[f"_{kind}"] = [str(folder / n) if folder is not None and (folder / n).exists() else None
                           for n in frame["image"]]
    for kind in PATH_COLUMNS:
        if kind not in ("rgb", "b567", "b81112"):
            out[f"_{kind}"] = None
    primary = kinds[0]
    out["_image"] = out[f"_{primary}"]
    out["image_kind"] = [primary if isinstance(p, str) else None for p in out["_image"]]
    if "placeholder" in frame.columns and primary == "rgb":
        bad = frame["placeholder"].notna().to_numpy()
        for t, k, why in zip(out.loc[bad, "tile_id"], out.loc[bad, "id"], frame.loc[bad, "placeholder"]):
            skipped.append({"set": "captions", "tile_id": t, "key": k, "reason": f"placeholder image ({why})"})
        out = out[~bad]
    if paradigms:
        wanted = {normalise_paradigm(p) for p in paradigms}
        off = ~out["paradigm"].isin(wanted)
        for t, k, p in zip(out.loc[off, "tile_id"], out.loc[off, "id"], out.loc[off, "paradigm"]):
            skipped.append({"set": "captions", "tile_id": t, "key": k, "reason": f"paradigm {p!r} not asked for"})
        out = out[~off]
    order = {s: i for i, s in enumerate(SPLITS)}
    out = (out.assign(_order=out["split"].map(order)).sort_values(["_order", "tile_id", "id"], kind="stable")
           .drop(columns="_order").reset_index(drop=True))
    notes = [] if image_dirs else [f"{root}: no extracted image archive; samples carry captions and footprints only"]
    return Samples(sets={"captions": out}, skipped=_skipped(skipped), source="release", root=root, kinds=kinds,
                   notes=notes)
