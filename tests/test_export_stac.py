"""The STAC export: a static catalog pystac reads, valid against the STAC core schemas, and its
stac-geoparquet table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cen import tiling
from cen.export import export, verify_export
from cen.tables import resolve_path
from test_export_helpers import expected_captions, imaged_workdir_once, source_png


@pytest.fixture(scope="module")
def stac_export(tmp_path_factory):
    workdir = imaged_workdir_once(tmp_path_factory)
    out = tmp_path_factory.mktemp("stac") / "stac"
    result = export(workdir, out, "stac", images="all", multispectral=True, progress=False)
    return workdir, out, result


def test_catalog_reads_back_with_pystac(stac_export):
    import pystac

    workdir, out, result = stac_export
    catalog = pystac.Catalog.from_file(str(out / "catalog.json"))
    collections = list(catalog.get_children())
    assert len(collections) == 1 and isinstance(collections[0], pystac.Collection)
    items = list(catalog.get_items(recursive=True))
    expected = expected_captions(workdir)
    tiles = tiling.read_tiles_table(workdir / "tiles.parquet").set_index("tile_id")
    captions = {c["id"]: c["text"] for item in items for c in item.properties["cen:captions"]}
    assert captions == expected
    assert len(items) == len({i.split("__")[0] for i in expected}) == len({i.id for i in items})
    for item in items:
        tile = tiles.loc[item.id]
        assert item.geometry["type"] == "Polygon" and item.bbox == pytest.approx(list(tile.geometry.bounds))
        assert item.properties["proj:code"] == tile["crs"]
        assert item.properties["proj:transform"] == pytest.approx(list(tile["transform"])[:6])
        assert item.properties["proj:shape"] == [256, 256]
        assert item.datetime is not None
        assert Path(item.assets["image"].get_absolute_href()).read_bytes() == source_png(workdir, item.id)
        assert Path(item.assets["b81112"].get_absolute_href()).read_bytes() == source_png(workdir, item.id, "b81112")
        label = Path(item.assets["label"].get_absolute_href())
        assert label.read_bytes() == Path(resolve_path(tile["label_path"], workdir)).read_bytes()
        assert item.assets["multispectral"].media_type.startswith("image/tiff")
        assert all(not a.href.startswith("/") for a in item.assets.values())
        sources = [link.href for link in item.links if link.rel == "derived_from"]
        assert any("ESA_WorldCover_10m_2020_v100_N00E006_Map.tif" in h for h in sources)
    coll = collections[0]
    assert coll.license == "CC-BY-4.0" and any(link.rel == "cite-as" for link in coll.links)
    assert {p.name for p in coll.providers} >= {"ESA WorldCover consortium", "ESA / Copernicus (Sentinel-2)"}


def test_valid_against_the_stac_core_schemas(stac_export):
    """The core schemas (item, collection, catalog, GeoJSON) that pystac ships, through jsonschema."""
    from jsonschema import Draft7Validator
    from pystac.validation.local_validator import get_local_schema_cache
    from referencing import Registry, Resource

    _, out, _ = stac_export
    cache = get_local_schema_cache()
    registry = Registry().with_resources((uri, Resource.from_contents(schema)) for uri, schema in cache.items())
    docs = {"catalog": [out / "catalog.json"], "collection": [out / "collection.json"],
            "item": sorted((out / "items").rglob("*.json"))}
    for kind, paths in docs.items():
        uri = next(u for u in cache if u.endswith(f"/{kind}-spec/json-schema/{kind}.json"))
        check = Draft7Validator(cache[uri], registry=registry)
        for path in paths:
            doc = json.loads(path.read_text())
            errors = [e.message for e in check.iter_errors(doc)]
            assert errors == [], f"{path}: {errors}"
            broken = {k: v for k, v in doc.items() if k != "links"}
            assert list(check.iter_errors(broken)), "the validator must reject a document without links"


def test_projection_extension_schema(stac_export):
    """The projection extension's own schema is not shipped by any installed package (pystac
    bundles only the core schemas) and cannot be fetched offline: only this assertion skips."""
    import pystac

    _, out, _ = stac_export
    item = pystac.Item.from_file(str(next((out / "items").rglob("*.json"))))
    assert "https://stac-extensions.github.io/projection/v2.0.0/schema.json" in item.stac_extensions
    try:
        item.validate()
    except pystac.errors.STACValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - no network: the extension schema is unreachable
        pytest.skip(f"projection extension schema unreachable offline ({type(exc).__name__})")


def test_stac_geoparquet_table(stac_export):
    import geopandas as gpd
    import pyarrow.parquet as pq
    from stac_geoparquet.arrow import stac_table_to_items

    _, out, _ = stac_export
    frame = gpd.read_parquet(out / "items.parquet")
    items = sorted(p.stem for p in (out / "items").rglob("*.json"))
    assert sorted(frame["id"]) == items and frame.crs.to_epsg() == 4326
    assert {"proj:code", "proj:transform", "datetime", "assets"} <= set(frame.columns)
    back = list(stac_table_to_items(pq.read_table(out / "items.parquet")))
    assert sorted(i["id"] for i in back) == items


def test_moved_catalog_still_reads_and_second_export_rewrites_nothing(stac_export, tmp_path):
    import pystac

    workdir, out, _ = stac_export
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    again = export(workdir, copy, "stac", images="all", multispectral=True, progress=False)
    assert again.written == [] and {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == before
    moved = tmp_path / "moved"
    shutil.move(str(copy), moved)
    assert verify_export(moved) == []
    items = list(pystac.Catalog.from_file(str(moved / "catalog.json")).get_items(recursive=True))
    assert all(Path(i.assets["image"].get_absolute_href()).exists() for i in items)
