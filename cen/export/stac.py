"""A static STAC catalog of the export (pystac) and its stac-geoparquet table.

Layout::

    OUT/catalog.json                      root catalog, one child:
    OUT/collection.json                   the collection (extent, providers, licence, source links)
    OUT/items/{tile}/{tile}.json          one item per tile that has an exported caption (a release
                                          tile captioned in two splits: one item per split, ``{tile}__{split}``)
    OUT/items.parquet                     the same items as stac-geoparquet (one row per item)
    OUT/images/..., OUT/labels/...        the files the assets point to (relative hrefs)

An item carries the tile's EPSG:4326 footprint and bbox, its ``datetime`` (the image's, or the
label product's year for label-only tiles; the release gives none, so its items carry the
interval from Sentinel-2A's launch to the end of 2024), the projection extension's
``proj:code``, ``proj:transform`` and ``proj:shape`` of the tile's own grid, its captions in
``cen:captions`` (id, paradigm, text, verification status), and assets: ``image`` (the PNG
exported as the sample's image), one per extra band group, ``label`` (WorldCover codes
GeoTIFF), ``label_png``, and ``multispectral`` (nine-band GeoTIFF) with ``--multispectral``.
Links name the sources: the Sentinel-2 item of the STAC API it came from and the ESA WorldCover
COGs (``derived_from``), and on the collection the ChatEarthNet paper and WorldCover DOIs.

Items are written one at a time (memory holds one item), each through the export writer, so an
unchanged item file is not rewritten.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from cen.export.base import label_rel, records, write_tile_files
from cen.export.card import CHATEARTHNET_URL
from cen.export.samples import Samples, _jsonable, safe_key
from cen.export.writer import ExportWriter, Fingerprint

COLLECTION_ID = "cen-export"
RELEASE_INTERVAL = ("2015-06-23T00:00:00Z", "2024-12-31T23:59:59Z")
"""start / end datetime of release items (no acquisition date in the release)."""
WORLDCOVER_DOIS = {"v100": "https://doi.org/10.5281/zenodo.5571936", "v200": "https://doi.org/10.5281/zenodo.7254221"}
PNG = "image/png"
GEOTIFF = "image/tiff; application=geotiff"


def _dt(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def _epsg(crs) -> str | None:
    if not isinstance(crs, str) or not crs:
        return None
    from rasterio.crs import CRS

    try:
        epsg = CRS.from_user_input(crs).to_epsg()
    except Exception:  # noqa: BLE001 - a CRS without an EPSG code: proj:code stays null
        return None
    return f"EPSG:{epsg}" if epsg else None


def source_links(row: pd.Series) -> list[tuple[str, str, str]]:
    """``(rel, href, title)`` links of a tile to its sources (Sentinel-2 STAC item, WorldCover COGs)."""
    links = []
    prov = {}
    if isinstance(row.get("provenance"), str):
        try:
            prov = json.loads(row["provenance"])
        except json.JSONDecodeError:
            prov = {}
    from cen.sources import stac as s2
    from cen.sources import worldcover

    provider = s2.PROVIDERS.get(str(prov.get("provider")))
    item_id = row.get("s2_item_id") or prov.get("item_id")
    if provider and isinstance(item_id, str):
        links.append(("derived_from", f"{provider['url']}/collections/{s2.COLLECTION}/items/{item_id}",
                      f"Sentinel-2 L2A item {item_id}"))
    hrefs = [h for h in prov.get("worldcover_hrefs", []) if isinstance(h, str) and h.startswith("http")]
    product = str(row.get("label_product") or "")
    if not hrefs and isinstance(row.get("label_tiles"), str) and "WorldCover" in product:
        year = 2021 if "2021" in product else 2020
        for name in row["label_tiles"].split(","):
            try:
                hrefs.append(worldcover.tile_href(name.strip(), year))
            except ValueError:
                continue
    links += [("derived_from", h, "ESA WorldCover map tile") for h in hrefs]
    if row.get("release_image"):
        links.append(("cite-as", CHATEARTHNET_URL, "ChatEarthNet"))
    return links


def make_item(row: pd.Series, captions: list[dict], files: dict, extra_files: dict):
    """One pystac Item of a tile (hrefs relative to ``items/{tile}/``)."""
    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from shapely import wkt
    from shapely.geometry import mapping

    geom = wkt.loads(row["geometry"])
    when = _dt(row.get("datetime"))
    props = {"cen:tile_id": row["tile_id"], "cen:split": row["split"], "cen:source": row.get("source"), "cen:image_kind": row.get("image_kind"),
             "cen:captions": captions}
    for key in ("s2_item_id", "label_product", "tile_col", "tile_row", "patch", "release_image"):
        if row.get(key) is not None and not (isinstance(row.get(key), float) and row.get(key) != row.get(key)):
            props[f"cen:{key}"] = _jsonable(row[key])
    if when is None:
        props["start_datetime"], props["end_datetime"] = RELEASE_INTERVAL
    item = pystac.Item(id=safe_key(row["tile_id"]), geometry=mapping(geom), bbox=list(geom.bounds),
                       datetime=when, properties=props)
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = _epsg(row.get("crs"))
    if isinstance(row.get("transform"), list) and len(row["transform"]) >= 6:
        proj.transform = [float(v) for v in row["transform"][:6]]
    proj.shape = [int(row.get("height") or 256), int(row.get("width") or 256)]
    up = "../../"
    if files["image"]:
        roles = ["data", "visual"] if row.get("image_kind") == "rgb" else ["data"]
        item.add_asset("image", pystac.Asset(up + files["image"], media_type=PNG, roles=roles,
                                             title=f"sample image ({row.get('image_kind')})"))
    for kind, rel in files["images"].items():
        if rel != files["image"]:
            item.add_asset(kind, pystac.Asset(up + rel, media_type=PNG, roles=["data"], title=f"band group {kind}"))
    if files["label"]:
        item.add_asset("label_png", pystac.Asset(up + files["label"], media_type=PNG, roles=["visual", "labels"],
                                                 title="land cover (ChatEarthNet colours)"))
    if extra_files.get("label_tif"):
        item.add_asset("label", pystac.Asset(up + extra_files["label_tif"], media_type=GEOTIFF, roles=["data", "labels"],
                                             title="land cover (ESA WorldCover codes)"))
    if files["multispectral"]:
        item.add_asset("multispectral", pystac.Asset(up + files["multispectral"], media_type=GEOTIFF, roles=["data"],
                                                     title="Sentinel-2 B02-B12, reflectance x 10000"))
    for rel, href, title in source_links(row):
        item.add_link(pystac.Link(rel, href, media_type="application/json" if "/items/" in href else None, title=title))
    item.add_link(pystac.Link("root", "../../catalog.json", media_type="application/json"))
    item.add_link(pystac.Link("parent", "../../collection.json", media_type="application/json"))
    item.add_link(pystac.Link("collection", "../../collection.json", media_type="application/json"))
    item.collection_id = COLLECTION_ID
    return item


def _collection(items_meta: list[tuple[str, list[float], datetime | None]], samples: Samples):
    import pystac

    from cen.export.card import ATTRIBUTION, sources_of

    bboxes = [b for _, b, _ in items_meta]
    bbox = [min(b[0] for b in bboxes), min(b[1] for b in bboxes), max(b[2] for b in bboxes), max(b[3] for b in bboxes)]
    times = [t for _, _, t in items_meta if t is not None]
    if len(times) < len(items_meta):
        times += [_dt(v) for v in RELEASE_INTERVAL]
    interval = [min(times), max(times)] if times else [None, None]
    providers = [pystac.Provider("cen (ChatEarthNet toolkit)", roles=[pystac.ProviderRole.PROCESSOR])]
    src = sources_of(samples)
    if "worldcover" in src:
        providers.append(pystac.Provider("ESA WorldCover consortium", roles=[pystac.ProviderRole.LICENSOR,
                                                                            pystac.ProviderRole.PRODUCER],
                                         url="https://esa-worldcover.org"))
    if "sentinel2" in src:
        providers.append(pystac.Provider("ESA / Copernicus (Sentinel-2)", roles=[pystac.ProviderRole.PRODUCER],
                                         url="https://sentinels.copernicus.eu"))
    if "chatearthnet" in src:
        providers.append(pystac.Provider("ChatEarthNet authors", roles=[pystac.ProviderRole.LICENSOR],
                                         url=CHATEARTHNET_URL))
    coll = pystac.Collection(
        id=COLLECTION_ID, title="ChatEarthNet-style image-text tiles (cen export)",
        description="Sentinel-2 tiles, ESA WorldCover land cover and their captions. " + " ".join(
            ATTRIBUTION[k] for k in src),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([interval])),
        license="CC-BY-4.0", providers=providers)
    coll.add_link(pystac.Link("license", "https://creativecommons.org/licenses/by/4.0/", media_type="text/html",
                              title="CC BY 4.0"))
    coll.add_link(pystac.Link("cite-as", CHATEARTHNET_URL, title="ChatEarthNet (ESSD 2025)"))
    if "worldcover" in src:
        for version, doi in WORLDCOVER_DOIS.items():
            coll.add_link(pystac.Link("cite-as", doi, title=f"ESA WorldCover 10 m {version}"))
    coll.add_link(pystac.Link("root", "./catalog.json", media_type="application/json"))
    coll.add_link(pystac.Link("parent", "./catalog.json", media_type="application/json"))
    for item_id, _, _ in items_meta:
        coll.add_link(pystac.Link("item", f"./items/{item_id}/{item_id}.json", media_type="application/geo+json"))
    return coll


def write(samples: Samples, writer: ExportWriter, *, progress: bool = True, multispectral: bool = False,
          **_: object) -> dict[str, dict[str, int]]:
    """Write the catalog, collection, one item per tile and ``items.parquet``; returns captions per
    split (the ``captions`` set: STAC items describe tiles, extra sets are not part of it)."""
    import pystac

    frame = samples.sets["captions"]
    counts: dict[str, int] = {}
    items_meta = []
    ndjson = writer.out / ".items.ndjson.tmp"
    fp = Fingerprint("stac-geoparquet-1")
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records(frame):
        groups.setdefault((r["tile_id"], r["split"]), []).append(r)
    n_splits: dict[str, int] = {}
    for tile_id, _ in groups:
        n_splits[tile_id] = n_splits.get(tile_id, 0) + 1
    with open(ndjson, "w", encoding="utf-8") as lines:
        for (tile_id, split), rows in tqdm(groups.items(), total=len(groups), desc="stac items", unit="item",
                                           disable=not progress, leave=False):
            row = rows[0]
            files = write_tile_files(writer, row, samples.kinds, multispectral=multispectral)
            extra = {}
            if isinstance(row.get("_label_tif"), str):
                extra["label_tif"] = label_rel(tile_id, "tif")
                writer.put_file(extra["label_tif"], row["_label_tif"])
            captions = [{"id": r["id"], "paradigm": r.get("paradigm"), "text": r["caption"],
                         "verification_status": r.get("verification_status")} for r in rows]
            item = make_item(row, captions, files, extra)
            if n_splits[tile_id] > 1:  # the release has tiles captioned in two splits: one item per split
                item.id = f"{item.id}__{split}"
            d = item.to_dict(include_self_link=False, transform_hrefs=False)
            text = json.dumps(d, ensure_ascii=False, sort_keys=True)
            writer.put_json(f"items/{item.id}/{item.id}.json", d)
            lines.write(text + "\n")
            fp.add(text)
            items_meta.append((item.id, list(d["bbox"]), item.datetime))
            counts[row["split"]] = counts.get(row["split"], 0) + len(rows)
    catalog = pystac.Catalog(id="cen-export-catalog", description="cen export: one collection of tiles and captions",
                             title="cen export")
    catalog.add_link(pystac.Link("root", "./catalog.json", media_type="application/json"))
    catalog.add_link(pystac.Link("child", "./collection.json", media_type="application/json", title=COLLECTION_ID))
    writer.put_json("catalog.json", catalog.to_dict(include_self_link=False, transform_hrefs=False))
    writer.put_json("collection.json", _collection(items_meta, samples).to_dict(include_self_link=False,
                                                                                 transform_hrefs=False))

    def geoparquet(tmp: Path) -> None:
        from stac_geoparquet.arrow import parse_stac_ndjson_to_parquet

        parse_stac_ndjson_to_parquet(ndjson, tmp)

    try:
        writer.shard("items.parquet", fp.hexdigest, geoparquet)
    finally:
        ndjson.unlink(missing_ok=True)
    return {"captions": {s: counts[s] for s in dict.fromkeys(frame["split"]) if s in counts}}
