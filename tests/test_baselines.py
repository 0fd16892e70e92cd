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
    assert d.reference_source == "captions of the workdir" and not d.references_from_template
    assert d.n_test_references == 2
    both = B.load_workdir(wd)
    assert both.references["t0"] == ["caption 0 gpt35", "caption 0 gpt4v"]


def test_load_workdir_without_split_hashes_tile_ids(tmp_path):
    d = B.load_workdir(_workdir(tmp_path, None))
    assert d.test and d.train and not set(d.test) & set(d.train)
    assert d.test == B.load_workdir(tmp_path / "wd").test  # deterministic
    with pytest.raises(FileNotFoundError, match="no caption table"):
        B.load_workdir(tmp_path / "nowhere")


def test_measured_and_reported_rows_are_separate_tables(data):
    runs = [B.template_baseline(data), B.nearest_neighbour_baseline(data, features="landcover")]
    scored = [T.score_run(r, data.test_references, counts=data.counts, metric_names=["Bleu", "ROUGE_L"],
                          resamples=50) for r in runs]
    measured = T.benchmark_table(scored)
    assert list(measured["system"]) == [r.system for r in runs] and set(measured["kind"]) == {"measured"}
    assert measured["ROUGE_L_low"].notna().all() and measured["METEOR"].isna().all()
    assert (measured["n_images"] == 2).all()
    # the template captioner reads the labels: its captions agree with them
    assert measured.iloc[0]["label_consistency"] > 0.9

    data.reference_source = "hand-written test captions"
    shown = T.measured_table(scored, data)
    assert shown["system"].tolist() == [r.system for r in runs] and shown["oracle"].tolist() == ["yes", "yes"]
    assert shown.loc[0, "METEOR"] == "n/c" and shown.loc[0, "images"] == 2
    low, high = measured.loc[0, "ROUGE_L_low"], measured.loc[0, "ROUGE_L_high"]
    assert shown.loc[0, "ROUGE_L"] == f"{measured.loc[0, 'ROUGE_L']:.3f} [{low:.3f}, {high:.3f}]"
    assert (shown["references"] == "2 by hand-written test captions").all()
    assert T.describe_test_set(T.evaluation_set(data)) == (
        "Test set: test split, 2 images, 2 reference captions by hand-written test captions.")

    reported = T.reported_table()
    assert reported["model"].tolist()[-1] == "GeoChat (ChatEarthNet)" and len(reported) == 6
    geo = reported.set_index("model").loc["GeoChat (ChatEarthNet)"]
    assert geo["CIDEr"] == "0.094" and geo["SPICE"] == "0.211" and geo["Bleu_3"] == "0.170"
    assert (reported["references"] == "3,000 by ChatGPT-4V (the release's captions)").all()
    assert reported["source"].str.contains("Table 2").all()
    assert not set(reported["model"]) & set(shown["system"])
    raw = T.paper_rows()
    assert (raw["kind"] == "reported").all() and raw["label_consistency"].isna().all()


def test_numbers_for_reading():
    assert T.format_p(0.0) == "< 0.001" and T.format_p(0.0004) == "< 0.001" and T.format_p(0.0123) == "0.012"
    assert T.format_p(float("nan")) == ""
    assert T.format_score(2.442738e-09) == "0.000" and T.format_score(0.51234, 0.4, 0.6) == "0.512 [0.400, 0.600]"
    paired = {"template (oracle)": pd.DataFrame({"a": [0.5], "b": [0.25], "diff": [0.25], "low": [0.1],
                                                 "high": [0.4], "p_value": [0.0]}, index=pd.Index(["CIDEr"], name="metric"))}
    table = T.paired_table(paired)
    assert table.to_dict(orient="records") == [{"system": "template (oracle)", "metric": "CIDEr", "score": "0.500",
                                                "constant": "0.250", "difference [95 % interval]": "0.250 [0.100, 0.400]",
                                                "p": "< 0.001"}]


def test_reference_note_only_for_template_references(data, scored):
    assert T.reference_note(data, scored) == ""
    data.references_from_template = True
    note = T.reference_note(data, scored)
    assert note.startswith("The references here were written by cen's template captioner")
    worst = min(scored, key=lambda s: float(s.consistency["score"].mean()))
    assert f"{worst.run.system} reaches BLEU-1 {worst.evaluation.scores['Bleu_1']:.3f}" in note


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


def test_plot_per_image(scored):
    import matplotlib

    matplotlib.use("Agg")
    fig = T.plot_per_image(scored)
    assert [ax.get_title() for ax in fig.axes] == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [s.run.system for s in scored]
    assert T.plot_per_image([]) is None


def test_showcase_and_best_and_worst_figure(data, scored, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    # no non-oracle system but the constant caption: the best oracle by CIDEr, never the constant
    show, shown_metrics = T.showcase(scored)
    best = max(scored[1:], key=lambda s: s.evaluation.scores["CIDEr"])
    assert show is best and shown_metrics == ["CIDEr", "ROUGE_L"]
    assert "oracle that reads the labels" in T.showcase_note(show, scored)
    image_run = B.nearest_neighbour_baseline(data, features="image")
    with_image = [*scored, T.score_run(image_run, data.test_references, metric_names=["ROUGE_L"], resamples=0)]
    assert T.showcase(with_image, "ROUGE_L")[0].run is image_run  # a system that sees only the image wins
    assert T.showcase(scored[:1])[0] is scored[0]  # the constant caption only when it ran alone
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
    assert [ax.get_title() for ax in fig.axes] == [f"{r} ROUGE_L {v:.3f}\n{i}" for r, v, i in
                                                   zip(picks["rank"], picks["ROUGE_L"], picks["image_id"])]
    image = fig.axes[0].get_images()[0].get_array()
    assert image.shape == (8, 8, 3) and len({tuple(c) for c in np.asarray(image).reshape(-1, 3)}) == 2
    assert sorted(t.get_text() for t in fig.axes[0].get_legend().get_texts()) == ["tree", "water"]
    assert not fig.axes[1].get_images()  # no label GeoTIFF for the other pick
