"""The dataset comparison table: typed loading, validation, computed rows, rendering, plots."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from cen import catalog

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return catalog.load_datasets()


def test_loads_with_typed_columns(table):
    assert {c: str(t) for c, t in table.dtypes.items()} == catalog.COLUMNS
    assert table["name"].is_unique
    a1 = table[table["in_table_a1"].fillna(False)]
    # Table A1 of the paper: ten rows, ChatEarthNet last with 173,488 pairs
    assert len(a1) == 10
    cen = table.set_index("name").loc["ChatEarthNet"]
    assert cen["image_text_pairs"] == 173_488 and cen["caption_granularity"] == "Fine-grained"
    assert bool(cen["multispectral"]) and cen["licence"] == "CC-BY-4.0"
    assert table.set_index("name").loc["FIT-RS", "image_text_pairs"] == 1_800_851
    # rounded counts ("5 M") are flagged, unknown cells stay missing, never guessed
    assert not table.set_index("name").loc["RS5M", "pairs_exact"]
    assert table["licence"].isna().sum() > 5
    # later datasets are there and every row names its source
    assert {"VRSBench", "RSTeller (legacy)", "GAIA", "Git-10M", "Llama3-SSL4EO-S12 captions",
            "SkyScript (language polished)"} <= set(table["name"])
    assert table["source"].notna().all()


def test_bad_cells_named(tmp_path, table):
    raw = pd.read_csv(catalog.DATASETS_CSV, dtype=str, keep_default_na=False)
    bad = raw.copy()
    bad.loc[2, "image_text_pairs"] = "lots"
    path = tmp_path / "datasets.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(catalog.CatalogError, match=r"datasets.csv: row 4 \(RSICD\), column 'image_text_pairs': 'lots' is not a number"):
        catalog.load_datasets(path)
    bad = raw.copy()
    bad.loc[0, "multispectral"] = "maybe"
    bad.to_csv(path, index=False)
    with pytest.raises(catalog.CatalogError, match=r"row 2 \(UCM-Captions\), column 'multispectral'"):
        catalog.load_datasets(path)
    bad = raw.copy()
    bad.loc[0, "generation_method"] = "magic"
    bad.to_csv(path, index=False)
    with pytest.raises(catalog.CatalogError, match="'magic' is not one of"):
        catalog.load_datasets(path)
    with pytest.raises(catalog.CatalogError, match="missing columns"):
        raw.drop(columns=["year"]).to_csv(path, index=False)
        catalog.load_datasets(path)


def _samples(n: int, lons, lats, words: int) -> pd.DataFrame:
    text = " ".join(["tree"] * (words - 1)) + " water."
    return pd.DataFrame({"tile_id": [f"t{i}" for i in range(n)], "lon": lons, "lat": lats, "split": "train",
                         "text": [text] * (n - 1) + [""], "model_returned": "template-1"})


def test_dataset_row_from_data(table):
    samples = _samples(4, [11.5, 32.58, 139.69, 2.35], [48.1, 0.35, 35.69, 48.85], words=60)  # Paris has no caption
    row = catalog.dataset_row(samples, name="cen demo", year=2026)
    assert row["image_text_pairs"] == 3  # the empty caption is not a pair
    assert row["caption_mean_words"] == 60.0 and row["caption_granularity"] == "Fine-grained"
    assert row["n_countries"] == 3 and row["n_continents"] == 3 and row["geographical_coverage"] == "Global"
    assert row["generation_method"] == "rule-based" and row["caption_generation"] == "WorldCover & template-1"
    assert row["geolocation_per_sample"] is True and row["human_verified"] is None
    combined = catalog.add_rows(table, [row])
    assert len(combined) == len(table) + 1
    assert {c: str(t) for c, t in combined.dtypes.items()} == catalog.COLUMNS
    local = catalog.dataset_row(_samples(3, [11.5, 11.6, 11.7], [48.1, 48.2, 48.3], words=10), name="local")
    assert local["geographical_coverage"] == "Regional" and local["caption_granularity"] == "Coarse-grained"
    with pytest.raises(KeyError, match="no caption column 'caption'"):
        catalog.dataset_row(samples, name="x", text_col="caption")


def test_dataset_row_reads_image_bands(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    img = tmp_path / "img.tif"
    with rasterio.open(img, "w", driver="GTiff", width=4, height=4, count=9, dtype="uint16",
                       crs="EPSG:32632", transform=from_origin(0, 0, 10, 10)) as dst:
        dst.write(np.zeros((9, 4, 4), dtype="uint16"))
    tiles = pd.DataFrame({"tile_id": ["t0"], "image_path": [str(img)], "source": ["demo-sentinel2"]})
    row = catalog.dataset_row(_samples(2, [11.5, 11.6], [48.1, 48.2], 5), name="x", tiles=tiles)
    assert row["multispectral"] is True and row["image_data"] == "RGB & multispectral (9 bands), demo-sentinel2"


def test_renderers(table):
    evil = catalog.add_rows(table, [{"name": "<b>x</b> & 50%_y", "image_text_pairs": 12, "pairs_exact": True,
                                     "source": "test"}])
    md = catalog.render_markdown(evil)
    lines = md.strip().splitlines()
    assert len(lines) == len(evil) + 2 and lines[0].startswith("| Dataset | Year | Image-text pairs")
    assert "| ~5,000,000 |" in md and "| 173,488 |" in md
    html = catalog.render_html(evil, highlight=["ChatEarthNet"])
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt; &amp; 50%_y" in html
    assert "font-weight: bold" in html and "<table" in html
    tex = catalog.render_latex(evil, caption="Data & sizes")
    assert r"\toprule" in tex and r"Data \& sizes" in tex and r"50\%\_y" in tex
    assert tex.count(r"\\") == len(evil) + 1


def test_pair_plots(table):
    fig = catalog.plot_pairs(table, by="caption_granularity", highlight=["ChatEarthNet"])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(ax.patches) == table["image_text_pairs"].notna().sum()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Coarse-grained", "Fine-grained", "unknown"]
    fig = catalog.plot_pairs(table, by="generation_method", kind="year")
    assert fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="unknown plot kind"):
        catalog.plot_pairs(table, kind="pie")


# ----------------------------------------------------------------------------- sample tables


def _workdir(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    tiles = gpd.GeoDataFrame(
        {"tile_id": ["a", "b", "c"], "split": ["train", "test", "train"], "source": "demo-worldcover",
         "label_png_path": ["/x/a_label.png", "/x/b_label.png", None], "rgb_png_path": [None, None, "/x/c_rgb.png"]},
        geometry=[box(6.6, 0.3, 6.7, 0.4), box(11, 48, 12, 49), box(-75.6, 37.7, -75.5, 37.8)], crs="EPSG:4326")
    tiles.to_parquet(tmp_path / "tiles.parquet")
    pd.DataFrame({"tile_id": ["a", "a", "b"], "paradigm": ["gpt35", "gpt4v", "gpt35"],
                  "text": ["Tree cover.", "Trees and water.", None]}).to_parquet(tmp_path / "captions.parquet")
    return tmp_path


def test_load_samples_demo_workdir(tmp_path):
    wd = _workdir(tmp_path)
    s = catalog.load_samples("demo", workdir=wd)
    assert s[["tile_id", "version", "split", "text"]].values.tolist() == [
        ["a", "gpt35", "train", "Tree cover."], ["a", "gpt4v", "train", "Trees and water."]]
    assert s["lon"].tolist() == pytest.approx([6.65, 6.65]) and "geometry" not in s.columns
    assert s["thumbnail"].tolist() == ["/x/a_label.png"] * 2
    full = catalog.load_samples("demo", workdir=wd, keep_uncaptioned=True)
    assert len(full) == 4 and full.loc[full.tile_id == "c", "version"].item() == "uncaptioned"
    assert full.loc[full.tile_id == "c", "thumbnail"].item() == "/x/c_rgb.png"
    only = catalog.load_samples("parquet", path=wd / "tiles.parquet", captions_path=wd / "captions.parquet", paradigm="gpt4v")
    assert only["text"].tolist() == ["Trees and water."]
    with pytest.raises(FileNotFoundError, match="empty/tiles.parquet: table not found"):
        catalog.load_samples("demo", workdir=tmp_path / "empty")
    pd.DataFrame({"tile_id": ["a"], "caption": ["x"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(KeyError, match="bad.parquet: no column 'text'"):
        catalog.load_samples("parquet", path=wd / "tiles.parquet", captions_path=tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="unknown dataset"):
        catalog.load_samples("nope")


def test_load_samples_with_stats_classes(tmp_path):
    from cen import stats

    wd = _workdir(tmp_path)
    labels = np.zeros((2, 8, 8), dtype=np.uint8)
    labels[0, :, :6] = 3  # tree 75 %
    labels[0, :, 6:] = 1  # water 25 %
    labels[1] = 5
    stats.write_stats(stats.stats_table(labels, ["a", "b"]), wd / "stats.parquet")
    s = catalog.load_samples("demo", workdir=wd)
    assert s["classes"].iloc[0] == {"tree": 0.75, "water": 0.25}


def test_load_samples_chatearthnet_release(tmp_path):
    import json

    from cen.sources import chatearthnet

    caps = tmp_path / "json_files"
    caps.mkdir()
    (caps / chatearthnet.caption_file("35", "train")).write_text(json.dumps([
        {"image": "4376_2839_patch00.png", "caption": "Tree cover dominates."},
        {"image": "4376_2839_patch01.png", "caption": "Water."}]))
    (caps / chatearthnet.caption_file("4v", "test")).write_text(json.dumps([
        {"image": "100_200_patch11.png", "caption": "Bare land."}]))
    s = catalog.load_samples("chatearthnet", path=tmp_path)
    assert len(s) == 3 and set(s["version"]) == {"35", "4v"} and set(s["split"]) == {"train", "test"}
    assert s["text"].tolist()[0] == "Tree cover dominates." and s["tile_id"].iloc[0] == "4376_2839_patch00.png"
    assert s["lon"].between(-180, 180).all() and s["lat"].between(-85.1, 85.1).all()
    row = catalog.dataset_row(s, name="release subset")
    assert row["image_text_pairs"] == 3 and row["geolocation_per_sample"] is True


def test_cli_analysis(tmp_path, capsys):
    from cen.cli import main

    out = tmp_path / "datasets.tex"
    assert main(["analysis", "datasets", "--format", "latex", "--out", str(out)]) == 0
    assert r"\toprule" in out.read_text() and "ChatEarthNet" in out.read_text()
    wd = _workdir(tmp_path)
    assert main(["analysis", "captions", "--workdir", str(wd), "--by", "version"]) == 0
    assert "gpt4v" in capsys.readouterr().out
    html_out = tmp_path / "map.html"
    assert main(["analysis", "map", "--workdir", str(wd), "-o", str(html_out)]) == 0
    assert "4 samples" in capsys.readouterr().out and html_out.exists()  # a: two captions, b: null, c: none
    assert main(["analysis", "map", "--workdir", str(tmp_path / "missing")]) == 1
    assert "tiles.parquet: table not found" in capsys.readouterr().err


def test_captioned_samples_and_groups(tmp_path):
    full = catalog.load_samples("demo", workdir=_workdir(tmp_path), keep_uncaptioned=True)
    captioned = catalog.captioned_samples(full, source="demo")
    assert captioned["text"].tolist() == ["Tree cover.", "Trees and water."]
    groups = catalog.samples_per_group(full, by=["version", "split"])
    assert groups["samples"].to_dict() == {("gpt35", "test"): 1, ("gpt35", "train"): 1, ("gpt4v", "train"): 1,
                                           ("uncaptioned", "train"): 1}
    with pytest.raises(ValueError, match=r"demo: no captions to analyse \(run notebook 03\)"):
        catalog.captioned_samples(full.assign(text=None), source="demo", hint="run notebook 03")


def test_run_tiles_and_computed_row(tmp_path):
    assert catalog.run_tiles("demo", workdir=tmp_path) is None  # no tiles table written yet
    assert catalog.run_tiles("chatearthnet", workdir=tmp_path) is None
    frame = pd.DataFrame({"tile_id": ["t0"], "source": ["demo-sentinel2"]})
    frame.to_parquet(tmp_path / "t.parquet")
    assert catalog.run_tiles("parquet", tiles_path=tmp_path / "t.parquet", captions_path=tmp_path / "c.parquet")[
        "tile_id"].tolist() == ["t0"]
    assert catalog.run_tiles("parquet", tiles_path=tmp_path / "t.parquet") is None  # one table holds everything
    # the demo branch reads the workdir's tiles table through the checked reader of notebook 01's table
    (tmp_path / "wd").mkdir()
    wd = _workdir(tmp_path / "wd")
    with pytest.raises(ValueError, match=r"wd/tiles.parquet: missing column 'lon' in the tiles table"):
        catalog.run_tiles("demo", workdir=wd)

    samples = _samples(3, [11.5, 32.58, 139.69], [48.1, 0.35, 35.69], words=50)
    demo = catalog.computed_row("demo", samples)
    assert demo["name"] == "cen demo (this run)" and demo["reference"] == "this run" and "embedded demo" in demo["notes"]
    assert demo["image_text_pairs"] == 2 and demo["licence"] is None and demo["multispectral"] is None
    release = catalog.computed_row("chatearthnet", samples, human_verified=False)
    assert release["name"] == "ChatEarthNet (computed from the release)" and release["reference"] == "Zenodo 11003436"
    assert release["multispectral"] is True and release["licence"] == "CC-BY-4.0" and release["human_verified"] is False
    other = catalog.computed_row("parquet", samples, name="mine", licence="CC0-1.0")
    assert other["name"] == "mine" and other["licence"] == "CC0-1.0" and other["notes"] == ""


def test_table_a1_known_counts_and_written_files(tmp_path, table):
    a1 = catalog.table_a1(table)
    assert len(a1) == 10 and "ChatEarthNet" in set(a1["name"])
    md = catalog.render_markdown(a1, catalog.TABLE_A1_COLUMNS)
    assert md.splitlines()[0] == ("| Dataset | Image-text pairs | Caption granularity | Caption generation | Image data "
                                  "| Geographical coverage |")
    known = catalog.known_counts(table, ["licence", "name"])
    assert known["name"] == len(table) and 0 < known["licence"] < len(table)
    paths = catalog.write_comparison(table, tmp_path / "out", highlight=["ChatEarthNet"], caption="Data & sizes")
    assert sorted(p.name for p in paths) == ["datasets.csv", "datasets.html", "datasets.md", "datasets.tex"]
    assert (tmp_path / "out" / "datasets.md").read_text() == catalog.render_markdown(table)
    assert r"Data \& sizes" in (tmp_path / "out" / "datasets.tex").read_text()
    assert "font-weight: bold" in (tmp_path / "out" / "datasets.html").read_text()
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


def test_rendered_table_reads_left_to_right_and_states_how_chatearthnet_is_placed():
    table = catalog.load_datasets()
    shown = catalog.display_table(table).set_index("Dataset")
    assert shown.loc["ChatEarthNet", "Geolocation per sample"] == "tile grid, decoded by cen"
    assert shown.loc["SkyScript", "Geolocation per sample"] == "lon/lat box per image"
    assert shown.loc["RSICD", "Geolocation per sample"] == "unknown"
    assert not shown.isin(["None", "nan", "<NA>", "NaN"]).any().any()  # one missing-value marker
    html_text = catalog.render_html(table)
    # text cells left-aligned, number cells right-aligned (pandas writes one CSS rule per cell)
    assert "text-align: left" in html_text and "text-align: right" in html_text
    row = catalog.render_row(table, "ChatEarthNet")
    assert "tile grid, decoded by cen" in row and "Countries" in row and "None" not in row
    with pytest.raises(KeyError, match="no dataset named 'nope'"):
        catalog.render_row(table, "nope")


def test_year_plot_labels_do_not_overlap_and_the_legend_is_outside():
    table = catalog.load_datasets()
    ours = {c: None for c in catalog.COLUMNS}
    ours.update(name="cen demo (this run)", year=2026, image_text_pairs=48, pairs_exact=True,
                generation_method="rule-based", in_table_a1=False)
    table = catalog.add_rows(table, [ours])
    fig = catalog.plot_pairs(table, by="generation_method", kind="year", highlight=["cen demo (this run)"])
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    labels = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    assert set(labels) == set(table["name"].dropna()) - {"S2LCD"}  # S2LCD has no year
    boxes = list(labels.items())
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            assert not box_a.overlaps(box_b), f"labels {a!r} and {b!r} overlap"
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1  # beside the axes, hiding no point
    assert labels["cen demo (this run)"].y0 >= ax.get_window_extent(renderer).y0
    assert [t for t in ax.texts if t.get_text() == "cen demo (this run)"][0].get_fontweight() == "bold"


def test_load_samples_uses_eligible_tiles_and_resolves_relative_paths(tmp_path):
    import geopandas as gpd
    from PIL import Image
    from shapely.geometry import box

    (tmp_path / "tiles").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "tiles" / "a_label.png")
    tiles = gpd.GeoDataFrame(
        {"tile_id": ["a", "b"], "split": ["train", "test"], "source": ["demo-worldcover", "demo-sentinel2"],
         "label_path": ["tiles/a_label.tif", None], "label_png_path": ["tiles/a_label.png", None],
         "eligible": [True, False], "exclude_reason": [None, "no_label"]},
        geometry=[box(6.6, 0.3, 6.7, 0.4), box(-75.6, 37.7, -75.5, 37.8)], crs="EPSG:4326")
    tiles.to_parquet(tmp_path / "tiles.parquet")
    pd.DataFrame({"tile_id": ["a", "b"], "paradigm": ["gpt35", "gpt35"], "text": ["Trees.", "Water."]}).to_parquet(
        tmp_path / "captions.parquet")
    s = catalog.load_samples("demo", workdir=tmp_path, keep_uncaptioned=True)
    assert s["tile_id"].tolist() == ["a"] and s.attrs["excluded"] == {"no_label": 1}
    assert s["thumbnail"].tolist() == [str(tmp_path / "tiles" / "a_label.png")]  # relative to the table's folder
    every = catalog.load_samples("demo", workdir=tmp_path, eligible_only=False)
    assert every["tile_id"].tolist() == ["a", "b"] and every.attrs["excluded"] == {}
