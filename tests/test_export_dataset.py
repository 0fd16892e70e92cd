"""CaptionDataset over every export format and a workdir; extra sets (vqa, caption variants)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from cen.export import CaptionDataset, DatasetNotFoundError, export
from test_export_helpers import decode, expected_captions, imaged_workdir_once, source_png

FORMATS = ["llava", "coco", "hf", "wds", "stac"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    workdir = imaged_workdir_once(tmp_path_factory)
    root = tmp_path_factory.mktemp("dataset_exports")
    for fmt in FORMATS:
        export(workdir, root / fmt, fmt, images="all", progress=False)
    return workdir, root


@pytest.mark.parametrize("fmt", ["workdir", *FORMATS])
@pytest.mark.parametrize("bands", ["rgb", "all"])
def test_samples_equal_the_source_tiles(exports, fmt, bands):
    from cen import landcover

    workdir, root = exports
    ds = CaptionDataset(workdir if fmt == "workdir" else root / fmt, "train", bands=bands)
    expected = expected_captions(workdir)
    ids = []
    for i in range(len(ds)):
        s = ds[i]
        ids.append(s["id"])
        assert s["caption"] == expected[s["id"]] and s["caption"] in s["captions"]
        groups = ["rgb"] if bands == "rgb" else ["rgb", "b567", "b81112"]
        want = np.concatenate([decode(source_png(workdir, s["tile_id"], g)).transpose(2, 0, 1) for g in groups])
        assert s["image"].dtype == np.uint8 and np.array_equal(s["image"], want)
        label = landcover.colour_to_indices(decode(source_png(workdir, s["tile_id"], "label")))
        assert s["label"].shape == (256, 256) and np.array_equal(s["label"], label)
        assert s["metadata"]["tile_id"] == s["tile_id"]
    assert len(ids) == len(set(ids)) == sum(1 for k in expected if k in set(ids)) > 0


def test_plot_returns_a_figure_and_docstring_is_the_card(exports):
    from matplotlib.figure import Figure

    workdir, root = exports
    ds = CaptionDataset(root / "hf", "train")
    fig = ds.plot(ds[0])
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert "ESA WorldCover" in CaptionDataset.__doc__ and "doi:10.5194/essd-17-1245-2025" in CaptionDataset.__doc__


def test_clear_errors(exports, tmp_path):
    workdir, root = exports
    with pytest.raises(DatasetNotFoundError, match="no cen export .* and no workdir"):
        CaptionDataset(tmp_path, "train")
    with pytest.raises(DatasetNotFoundError, match="no 'captions' samples in split 'val'"):
        CaptionDataset(root / "hf", "val")
    only_rgb = tmp_path / "rgb"
    export(workdir, only_rgb, "wds", progress=False)
    with pytest.raises(DatasetNotFoundError, match="no b567 image in this export"):
        CaptionDataset(only_rgb, "train", bands="all")[0]
    copy = tmp_path / "llava"
    shutil.copytree(root / "llava", copy)
    shutil.rmtree(copy / "images")
    with pytest.raises(DatasetNotFoundError, match="file listed by the export is missing"):
        CaptionDataset(copy, "train")[0]


def test_random_access_and_pickling(exports):
    import pickle

    workdir, root = exports
    ds = CaptionDataset(root / "hf", "train", bands="all")
    order = list(range(len(ds)))[::-1]
    backwards = [ds[i]["id"] for i in order]
    clone = pickle.loads(pickle.dumps(ds))
    assert [clone[i]["id"] for i in order] == backwards
    assert np.array_equal(clone[0]["image"], ds[0]["image"])


def test_no_torch_import():
    import subprocess
    import sys

    code = "import sys, cen.export; cen.export.CaptionDataset; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.fixture(scope="module")
def extras_workdir(tmp_path_factory):
    """The imaged workdir plus a vqa.parquet and a captions_no_size.parquet in the layouts their
    makers write (questions keyed by tile and qid; variants keyed like captions.parquet)."""
    workdir = tmp_path_factory.mktemp("extras") / "wd"
    shutil.copytree(imaged_workdir_once(tmp_path_factory), workdir)
    captions = pd.read_parquet(workdir / "captions.parquet")
    tiles = sorted(set(captions["tile_id"]))
    split = pd.read_parquet(workdir / "tiles.parquet").set_index("tile_id")["split"]
    train_tile = next(t for t in tiles if split[t] == "train")
    vqa = pd.DataFrame([
        {"tile_id": t, "qid": f"q{k}", "task": "presence", "format": "yes_no", "question": f"Is there water? ({k})",
         "answer": "yes" if k else "no", "choices": None, "answer_value": bool(k), "class_a": "water",
         "class_b": None, "region": "whole", "template_id": "presence-1", "split": "train"}
        for t in tiles for k in range(2)] + [
        {"tile_id": train_tile, "qid": "q9", "task": "area", "format": "multiple_choice",
         "question": "How much of the image is tree?", "answer": "B", "choices": ["none", "small", "large"],
         "answer_value": 0.42, "class_a": "tree", "class_b": None, "region": "whole", "template_id": "area-1",
         "split": "train"}])
    vqa["answer_value"] = [json.dumps(v) for v in vqa["answer_value"]]  # bool, number, text or box: JSON text
    vqa.to_parquet(workdir / "vqa.parquet")
    variant = captions.assign(text="A caption without sizes.", attributes="no_size")
    variant.to_parquet(workdir / "captions_no_size.parquet")
    return workdir


@pytest.mark.parametrize("fmt", ["llava", "hf", "wds"])
def test_vqa_and_caption_variants_are_extra_sets(extras_workdir, tmp_path, fmt, monkeypatch):
    result = export(extras_workdir, tmp_path / fmt, fmt, progress=False)
    assert set(result.counts) == {"captions", "captions_no_size", "vqa"}
    vqa = pd.read_parquet(extras_workdir / "vqa.parquet")
    tiles = pd.read_parquet(extras_workdir / "tiles.parquet").set_index("tile_id")["split"]
    want = vqa["tile_id"].map(tiles).value_counts().to_dict()
    assert result.counts["vqa"] == want
    ds = CaptionDataset(tmp_path / fmt, "train", set="vqa")
    sample = next(ds[i] for i in range(len(ds)) if ds[i]["id"].endswith("__q9"))
    assert sample["answer"] == "B" and "How much of the image is tree?" in sample["question"]
    if fmt == "llava":
        assert "A. none\nB. small\nC. large" in sample["question"]
    variant = CaptionDataset(tmp_path / fmt, "train", set="captions_no_size")
    assert {variant[i]["caption"] for i in range(len(variant))} == {"A caption without sizes."}
    if fmt == "hf":
        import datasets

        monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
        front = (tmp_path / fmt / "README.md").read_text()
        assert "config_name: vqa" in front and "visual-question-answering" in front
        ds = datasets.load_dataset("parquet", data_files={"train": str(tmp_path / fmt / "vqa" / "train-*.parquet")},
                                   cache_dir=str(tmp_path / "cache"))
        assert len(ds["train"]) == want["train"]
        plain = datasets.load_dataset("parquet", data_dir=str(tmp_path / fmt), cache_dir=str(tmp_path / "cache2"))
        assert {s: len(plain[s]) for s in plain} == result.counts["captions"]


def test_absent_extras_are_simply_not_exported(exports):
    workdir, root = exports
    from cen.export import read_manifest

    assert set(read_manifest(root / "hf")["counts"]) == {"captions"}


def test_questions_made_by_cen_vqa_export(tmp_path_factory, tmp_path):
    from cen.cli import main
    from test_export_helpers import smoke_workdir_once

    workdir = tmp_path / "wd"
    shutil.copytree(smoke_workdir_once(tmp_path_factory), workdir)
    assert main(["vqa", "build", str(workdir), "--per-tile", "4", "--seed", "0"]) == 0
    vqa = pd.read_parquet(workdir / "vqa.parquet")
    result = export(workdir, tmp_path / "llava", "llava", progress=False)
    assert sum(result.counts["vqa"].values()) == len(vqa)
    records = [r for s in result.counts["vqa"] for r in json.loads((tmp_path / "llava" / f"vqa_{s}.json").read_text())]
    by_id = {r["id"]: r for r in records}
    assert len(by_id) == len(vqa)
    for q in vqa.itertuples():
        rec = by_id[f"{q.tile_id}__{q.qid.removeprefix(q.tile_id + '/').replace('/', '-')}"]
        assert rec["conversations"][0]["value"] == f"<image>\n{q.question}"
        assert rec["conversations"][1]["value"] == q.answer
        assert rec["metadata"]["answer_value"] == q.answer_value
