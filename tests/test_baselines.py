"""cen.baselines and cen.benchmark_table: each baseline on known data, the VLM path against a local server."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin

from cen import baselines as B
from cen import benchmark_table as T
from cen.generate.template import caption_from_counts

sys.path.insert(0, str(Path(__file__).parent))


def counts_of(shares: dict[int, float], n: int = 10000) -> np.ndarray:
    """(6, 12) counts with the same class shares in the whole tile and every region."""
    row = np.zeros(12, dtype=np.int64)
    for cls, share in shares.items():
        row[cls] = int(share * n)
    return np.stack([row * 4] + [row] * 5)


def write_image(path: Path, level: float, bands: int = 4) -> str:
    rng = np.random.default_rng(int(level))
    data = (level + rng.normal(0, 5, size=(bands, 16, 16))).astype("float32")
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=bands, dtype="float32",
                       crs="EPSG:32632", transform=from_origin(0, 160, 10, 10)) as dst:
        dst.write(data)
    return str(path)


@pytest.fixture
def data(tmp_path) -> B.BenchmarkData:
    refs = {
        "tr_water": ["water covers most of the image with some tree cover in the north"],
        "tr_crop": ["cropland covers most of the image with some grass in the south"],
        "tr_mixed": ["the image shows water and cropland with some tree cover and grass"],
        "te_water": ["water covers most of the image with some tree cover in the east"],
        "te_crop": ["cropland covers the image with grass in the west"],
    }
    counts = {
        "tr_water": counts_of({1: 0.8, 3: 0.2}), "tr_crop": counts_of({6: 0.8, 5: 0.2}),
        "tr_mixed": counts_of({1: 0.3, 6: 0.3, 3: 0.2, 5: 0.2}),
        "te_water": counts_of({1: 0.75, 3: 0.25}), "te_crop": counts_of({6: 0.7, 5: 0.3}),
    }
    levels = {"tr_water": 100, "tr_crop": 900, "tr_mixed": 500, "te_water": 120, "te_crop": 880}
    images = {k: write_image(tmp_path / f"{k}.tif", v) for k, v in levels.items()}
    return B.BenchmarkData(refs, ["tr_water", "tr_crop", "tr_mixed"], ["te_water", "te_crop"], counts, images)


def test_constant_baseline_picks_the_consensus_training_caption(data):
    majority = [f"water covers most of the image with some tree cover in the {d} part" for d in
                ("north", "south", "east", "west")]
    for i, text in enumerate(majority):
        data.references[f"tr_m{i}"] = [text]
        data.train.append(f"tr_m{i}")
    run = B.constant_baseline(data)
    (chosen,) = set(run.candidates.values())
    # one of the five water captions most training captions agree with, not the crop or mixed one
    assert chosen in majority + data.references["tr_water"]
    assert run.system == "constant" and run.n_images == 2 and run.split == "test"
    assert set(run.record()) >= {"system", "model", "prompt_hash", "split", "n_images", "date"}


def test_nearest_neighbour_by_image_and_by_landcover(data):
    by_image = B.nearest_neighbour_baseline(data, features="image")
    assert by_image.candidates == {"te_water": data.references["tr_water"][0], "te_crop": data.references["tr_crop"][0]}
    assert not by_image.oracle
    by_labels = B.nearest_neighbour_baseline(data, features="landcover")
    assert by_labels.candidates == by_image.candidates and by_labels.oracle
    with pytest.raises(ValueError, match="features must be"):
        B.nearest_neighbour_baseline(data, features="sift")
    data.images.pop("te_crop")
    with pytest.raises(B.BaselineError, match=r"1 tiles have no image \(first \['te_crop'\]\)"):
        B.nearest_neighbour_baseline(data, features="image")


def test_image_features_and_histogram(data):
    f = B.image_features(data.images["tr_water"])
    assert f.shape == (20,) and 90 < f[0] < 110  # mean of band 1 around its level
    h = B.landcover_histogram(data.counts["tr_water"])
    assert h.shape == (66,) and np.allclose(h.reshape(6, 11).sum(axis=1), 1.0)
    with pytest.raises(FileNotFoundError, match="cannot read the image GeoTIFF"):
        B.image_features("/nonexistent/tile.tif")


def test_template_baseline_is_the_template_captioner(data):
    run = B.template_baseline(data, seed=3)
    assert run.candidates["te_water"] == caption_from_counts(data.counts["te_water"], seed=3)
    assert run.oracle and "seed 3" in run.model
    data.counts.pop("te_crop")
    with pytest.raises(B.BaselineError, match="stats.parquet"):
        B.template_baseline(data)


def test_vlm_baseline_through_the_generation_layer(data, tmp_path, monkeypatch):
    from openai_server import OpenAIServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
    cache = tmp_path / "gen.sqlite"
    with OpenAIServer() as server:
        run = B.vlm_baseline(data, model="llava-local", base_url=server.base_url, cache_path=cache, progress=False)
        chats = [e for e in server.log if e.get("path", "").startswith("/v1/chat")]
        assert len(chats) == 2
        again = B.vlm_baseline(data, model="llava-local", base_url=server.base_url, cache_path=cache, progress=False)
        assert len([e for e in server.log if e.get("path", "").startswith("/v1/chat")]) == 2  # cached: no new call
    assert set(run.candidates) == {"te_water", "te_crop"} and all(len(c.split()) > 5 for c in run.candidates.values())
    assert again.candidates == run.candidates
    assert run.prompt_hash == B.prompt_hash(B.VLM_PROMPT) and run.model.startswith("llava-local")
    data.images.pop("te_water")
    with pytest.raises(B.BaselineError, match="no image"):
        B.vlm_baseline(data, model="m", base_url=server.base_url, cache_path=cache)


def test_rgb_png_renders_three_bands(data):
    from PIL import Image
    import io

    img = Image.open(io.BytesIO(B.rgb_png(data.images["tr_water"])))
    assert img.size == (16, 16) and img.mode == "RGB"


def _workdir(tmp_path: Path, splits: dict[str, str] | None) -> Path:
    from cen.stats import COUNT_COLUMNS

    wd = tmp_path / "wd"
    wd.mkdir()
    ids = [f"t{i}" for i in range(6)]
    pd.DataFrame({"tile_id": ids * 2, "paradigm": ["gpt35"] * 6 + ["gpt4v"] * 6,
                  "text": [f"caption {i} gpt35" for i in range(6)] + [f"caption {i} gpt4v" for i in range(6)],
                  "status": ["ok"] * 5 + ["failed"] + ["ok"] * 6}).to_parquet(wd / "captions.parquet")
    rng = np.random.default_rng(0)
    st = pd.DataFrame(rng.integers(0, 100, size=(6, len(COUNT_COLUMNS))), columns=list(COUNT_COLUMNS))
    st.insert(0, "tile_id", ids)
    st.to_parquet(wd / "stats.parquet")
    if splits is not None:
        pd.DataFrame({"tile_id": ids, "split": [splits.get(t, "train") for t in ids],
                      "image_path": [None] * 6, "label_path": [f"/x/{t}.tif" for t in ids]}).to_parquet(wd / "tiles.parquet")
    return wd


def test_load_workdir_reads_captions_split_and_counts(tmp_path):
    wd = _workdir(tmp_path, {"t1": "test", "t4": "test", "t5": "test"})
    d = B.load_workdir(wd, paradigm="gpt35")
    assert d.test == ["t1", "t4"] and d.train == ["t0", "t2", "t3"]  # t5's only gpt35 caption failed
    assert d.references["t1"] == ["caption 1 gpt35"] and d.counts["t1"].shape == (6, 12)
    assert d.label_paths["t1"] == "/x/t1.tif" and not d.images
    both = B.load_workdir(wd)
    assert both.references["t0"] == ["caption 0 gpt35", "caption 0 gpt4v"]


def test_load_workdir_without_split_hashes_tile_ids(tmp_path):
    d = B.load_workdir(_workdir(tmp_path, None))
    assert d.test and d.train and not set(d.test) & set(d.train)
    assert d.test == B.load_workdir(tmp_path / "wd").test  # deterministic
    with pytest.raises(FileNotFoundError, match="no caption table"):
        B.load_workdir(tmp_path / "nowhere")


def test_benchmark_table_keeps_reported_rows_apart(data):
    runs = [B.template_baseline(data), B.nearest_neighbour_baseline(data, features="landcover")]
    scored = [T.score_run(r, data.test_references, counts=data.counts, metric_names=["Bleu", "ROUGE_L"],
                          resamples=50) for r in runs]
    table = T.benchmark_table(scored)
    measured, reported = table[table["kind"] == "measured"], table[table["kind"] == "reported"]
    assert list(measured["system"]) == [r.system for r in runs]
    assert len(reported) == 6 and "GeoChat (ChatEarthNet)" in set(reported["system"])
    geo = reported.set_index("system").loc["GeoChat (ChatEarthNet)"]
    assert geo["CIDEr"] == 0.094 and geo["SPICE"] == 0.211 and np.isnan(geo["CIDEr_low"])
    assert reported["label_consistency"].isna().all() and reported["source"].str.contains("Table 2").all()
    assert measured["ROUGE_L_low"].notna().all() and measured["METEOR"].isna().all()
    assert (measured["n_images"] == 2).all()
    # the template captioner reads the labels: its captions agree with them
    assert measured.iloc[0]["label_consistency"] > 0.9
    shown = T.display_table(table)
    assert shown["system"].str.endswith("(reported)").sum() == 6
    assert shown.loc[0, "METEOR"] == "n/c" and "[" in shown.loc[0, "ROUGE_L"]


def test_load_data_names_the_dataset_like_notebook_07(tmp_path):
    import json

    wd = _workdir(tmp_path, {"t1": "test", "t4": "test"})
    assert B.load_data("demo", workdir=wd).test == ["t1", "t4"]
    assert B.load_data(str(wd), workdir=tmp_path / "elsewhere", paradigm="gpt4v").references["t0"] == ["caption 0 gpt4v"]
    for split, ids in (("test", ["a"]), ("train", ["b", "c"])):
        (tmp_path / f"{split}.json").write_text(json.dumps([{"image": i, "caption": f"{i} caption"} for i in ids]))
    release = B.load_data(str(tmp_path / "test.json"), train_json=tmp_path / "train.json")
    assert release.test == ["a"] and release.train == ["b", "c"] and release.split == "test"
    with pytest.raises(ValueError, match="test.json is a ChatEarthNet JSON: also set train_json"):
        B.load_data(str(tmp_path / "test.json"))


def test_runs_and_skipped_tables(data):
    runs, skipped = B.run_baselines(data, ["constant", "template", "vlm"])
    table = B.runs_table(runs)
    assert table["system"].tolist() == [r.system for r in runs] and (table["n_images"] == 2).all()
    assert "candidates" not in table.columns
    assert B.skipped_table(skipped).to_dict(orient="records") == [{"system": "vlm", "not run because": skipped["vlm"]}]
    assert list(B.skipped_table({}).columns) == ["system", "not run because"]


@pytest.fixture
def scored(data):
    runs = [B.constant_baseline(data), B.template_baseline(data), B.nearest_neighbour_baseline(data, features="landcover")]
    return T.score_runs(runs, data, metric_names=["Bleu", "ROUGE_L", "CIDEr"], resamples=30)


def test_score_runs_paired_tests_and_summary(data, scored):
    assert [s.run.system for s in scored] == ["constant", "template (oracle)", "nearest neighbour (land cover, oracle)"]
    assert all(s.consistency is not None and list(s.evaluation.per_image.index) == data.test for s in scored)
    assert T.not_computed(scored) == {}
    scored[1].evaluation.not_computed["SPICE"] = "no CoreNLP"
    assert T.not_computed(scored) == {"SPICE": "no CoreNLP"}
    assert T.paired_tests(scored, resamples=30) == {}  # 2 test images: fewer than 5
    paired = T.paired_tests(scored, resamples=30, min_images=2)
    assert list(paired) == ["template (oracle)", "nearest neighbour (land cover, oracle)"]
    t = paired["template (oracle)"]
    assert t.loc["ROUGE_L", "b"] == scored[0].evaluation.scores["ROUGE_L"]
    assert t.loc["ROUGE_L", "diff"] == pytest.approx(t.loc["ROUGE_L", "a"] - t.loc["ROUGE_L", "b"])
    assert T.paired_tests(scored[1:], resamples=30, min_images=2) == {}  # no constant run

    numbers = T.summary(scored, len(data.test), paired)
    assert numbers["scores"]["constant"]["ROUGE_L"] == round(scored[0].evaluation.scores["ROUGE_L"], 6)
    assert numbers["label_consistency"]["template (oracle)"] > 0.9
    assert numbers["rank_by"] == "CIDEr"
    assert numbers["best"] == max(numbers["scores"], key=lambda k: numbers["scores"][k]["CIDEr"])
    assert numbers["text"].startswith(f"3 systems on 2 test tiles; best CIDEr: {numbers['best']} (")
    assert numbers["text"].endswith("SPICE not computed (CoreNLP jars absent)")
    assert {r["metric"] for r in numbers["intervals"]["constant"]} == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4",
                                                                        "ROUGE_L", "CIDEr"}
    assert numbers["paired"]["template (oracle)"][0].keys() == {"metric", "a", "b", "diff", "low", "high", "p_value"}
    assert T.summary(scored, 1)["rank_by"] == "ROUGE_L"  # CIDEr-D is 0 by construction on one image
    assert T.summary([], 0)["text"] == "no system ran"


def test_plot_per_image_and_scores_table(scored):
    import matplotlib

    matplotlib.use("Agg")
    fig = T.plot_per_image(scored)
    assert [ax.get_title() for ax in fig.axes] == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [s.run.system for s in scored]
    assert T.plot_per_image([]) is None
    table = T.scores_table(T.benchmark_table(scored))
    assert list(table.columns) == ["kind", "system", "n_images", *T.TABLE_METRICS, "label_consistency"]
    assert table["kind"].tolist() == ["measured"] * 3 + ["reported"] * 6
    assert table.loc[0, "ROUGE_L"] == round(scored[0].evaluation.scores["ROUGE_L"], 3)


def test_showcase_and_best_and_worst_figure(data, scored, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    show, shown_metrics = T.showcase(scored)
    assert show is scored[0] and shown_metrics == ["CIDEr", "ROUGE_L"]  # constant: the first non-oracle run
    assert T.showcase(scored[1:])[0] is scored[1]  # only oracles: the first
    assert T.showcase([]) == (None, [])
    label = tmp_path / "te_water_label.tif"
    codes = np.full((8, 8), 80, dtype=np.uint8)  # WorldCover water, tree cover in the top rows
    codes[:2] = 10
    with rasterio.open(label, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs="EPSG:32632",
                       transform=from_origin(0, 80, 10, 10)) as dst:
        dst.write(codes, 1)
    picks = T.best_and_worst(show, data.test_references, "ROUGE_L", k=1)
    with_label = picks["image_id"].iloc[0]
    fig = T.plot_best_and_worst(picks, {with_label: str(label)}, "ROUGE_L", title="constant: ROUGE_L")
    assert fig._suptitle.get_text() == "constant: ROUGE_L" and len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == [f"{r} ROUGE_L {v:.3f}" for r, v in zip(picks["rank"], picks["ROUGE_L"])]
    image = fig.axes[0].get_images()[0].get_array()
    assert image.shape == (8, 8, 3) and len({tuple(c) for c in np.asarray(image).reshape(-1, 3)}) == 2
    assert sorted(t.get_text() for t in fig.axes[0].get_legend().get_texts()) == ["tree", "water"]
    assert not fig.axes[1].get_images()  # no label GeoTIFF for the other pick
