"""Exports of the smoke run, loaded back with each format's own consumer library."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cen import tiling
from cen.export import export, read_manifest, verify_export
from cen.export.llava import CAPTION_INSTRUCTIONS
from cen.export.writer import ExportError, sha256_file
from cen.tables import resolve_path
from test_export_helpers import (EDITED, EDITED_TEXT, REJECTED, decode, expected_captions, imaged_workdir_once,
                                 smoke_workdir_once, source_png)


@pytest.fixture(scope="session")
def smoke_workdir(tmp_path_factory) -> Path:
    return smoke_workdir_once(tmp_path_factory)


@pytest.fixture(scope="session")
def imaged_workdir(tmp_path_factory) -> Path:
    return imaged_workdir_once(tmp_path_factory)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_ino)
            for p in folder.rglob("*") if p.is_file()}


def test_decisions_are_respected(smoke_workdir, tmp_path):
    t = pd.read_parquet(smoke_workdir / "captions_verified.parquet")
    rejected = f"{t['tile_id'].iloc[REJECTED]}__{t['paradigm'].iloc[REJECTED]}"
    edited = f"{t['tile_id'].iloc[EDITED]}__{t['paradigm'].iloc[EDITED]}"
    result = export(smoke_workdir, tmp_path / "acc", "llava", progress=False)
    records = {r["id"]: r for s in ("train", "val", "test") if (tmp_path / "acc" / f"captions_{s}.json").exists()
               for r in json.loads((tmp_path / "acc" / f"captions_{s}.json").read_text())}
    assert rejected not in records and records[edited]["conversations"][1]["value"] == EDITED_TEXT
    assert set(records) == set(expected_captions(smoke_workdir))
    assert result.skipped.set_index("key").at[rejected, "reason"] == "verification status 'rejected' (not accepted)"
    assert result.n_exported + len(result.skipped) == len(t)
    every = export(smoke_workdir, tmp_path / "all", "llava", captions="all", progress=False)
    assert every.n_exported == len(t) and len(every.skipped) == 0


def test_llava_records_images_and_instructions(imaged_workdir, tmp_path):
    out = tmp_path / "llava"
    result = export(imaged_workdir, out, "llava", images="all", progress=False)
    expected = expected_captions(imaged_workdir)
    records = [r for s in result.counts["captions"] for r in json.loads((out / f"captions_{s}.json").read_text())]
    assert len(records) == len(expected) == result.n_exported
    assert len({r["id"] for r in records}) == len(records)
    for r in records:
        human, gpt = r["conversations"]
        assert (human["from"], gpt["from"]) == ("human", "gpt")
        assert human["value"].startswith("<image>\n") and human["value"][8:] in CAPTION_INSTRUCTIONS
        assert gpt["value"] == expected[r["id"]]
        assert not Path(r["image"]).is_absolute() and r["image"] == f"images/rgb/{r['tile_id']}.png"
        data = (out / r["image"]).read_bytes()
        assert data == source_png(imaged_workdir, r["tile_id"]) and decode(data).shape == (256, 256, 3)
        assert set(r["images"]) == {"rgb", "b567", "b81112"}
        assert (out / r["images"]["b81112"]).read_bytes() == source_png(imaged_workdir, r["tile_id"], "b81112")
        assert (out / r["label"]).read_bytes() == source_png(imaged_workdir, r["tile_id"], "label")
    # seeded: another seed draws other instructions for some records, the same seed the same ones
    again = export(imaged_workdir, tmp_path / "llava2", "llava", images="all", seed=1, progress=False)
    other = [r for s in again.counts["captions"] for r in json.loads((tmp_path / "llava2" / f"captions_{s}.json").read_text())]
    assert [r["conversations"][0]["value"] for r in other] != [r["conversations"][0]["value"] for r in records]


def test_label_only_tiles_use_the_label_map_or_are_skipped(smoke_workdir, tmp_path):
    result = export(smoke_workdir, tmp_path / "a", "llava", progress=False)
    records = [r for s in result.counts["captions"] for r in json.loads((tmp_path / "a" / f"captions_{s}.json").read_text())]
    assert records and all(r["metadata"]["image_kind"] == "label" for r in records)
    assert all((tmp_path / "a" / r["image"]).read_bytes() == source_png(smoke_workdir, r["tile_id"], "label")
               for r in records)
    with pytest.raises(ExportError, match="no rgb image"):
        export(smoke_workdir, tmp_path / "b", "llava", label_as_image=False, progress=False)


def test_coco_loads_in_pycocotools_and_cen_metrics(imaged_workdir, tmp_path):
    from pycocotools.coco import COCO

    from cen.metrics import read_references

    out = tmp_path / "coco"
    result = export(imaged_workdir, out, "coco", progress=False)
    expected = expected_captions(imaged_workdir)
    seen = {}
    for split in result.counts["captions"]:
        path = out / "annotations" / f"captions_{split}.json"
        coco = COCO(str(path))
        for ann in coco.loadAnns(coco.getAnnIds()):
            img = coco.loadImgs(ann["image_id"])[0]
            assert ann["caption"] == expected[ann["sample_id"]]
            assert (out / img["file_name"]).read_bytes() == source_png(imaged_workdir, img["tile_id"])
            seen[ann["sample_id"]] = ann["id"]
        refs = read_references(path)
        assert set(refs) == {str(i) for i in coco.getImgIds()}
        assert sum(len(v) for v in refs.values()) == len(coco.getAnnIds())
    assert set(seen) == set(expected) and len(set(seen.values())) == len(seen)
    # the annotations are references for `cen metrics evaluate`: a candidate per image scores
    from cen.cli import main

    refs = out / "annotations" / "captions_train.json"
    doc = json.loads(refs.read_text())
    candidates = tmp_path / "candidates.json"
    candidates.write_text(json.dumps([{"image_id": im["id"], "caption": doc["annotations"][0]["caption"]}
                                      for im in doc["images"]]))
    assert main(["metrics", "evaluate", str(refs), str(candidates), "--metrics", "ROUGE_L", "--bootstrap", "0"]) == 0


def test_hf_loads_offline_with_datasets_and_croissant(imaged_workdir, tmp_path, monkeypatch):
    import datasets
    import mlcroissant
    import yaml

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    out = tmp_path / "hf"
    result = export(imaged_workdir, out, "hf", shard_size=2, progress=False)
    expected = expected_captions(imaged_workdir)
    names = sorted(p.name for p in (out / "data").glob("*.parquet"))
    n_train = result.counts["captions"]["train"]
    assert f"train-00000-of-{-(-n_train // 2):05d}.parquet" in names
    ds = datasets.load_dataset("parquet", data_dir=str(out), cache_dir=str(tmp_path / "cache"))
    assert {s: len(ds[s]) for s in ds} == result.counts["captions"]
    ids = []
    for split in ds:
        assert isinstance(ds[split].features["image"], datasets.Image)
        for row in ds[split]:
            ids.append(row["id"])
            assert row["caption"] == expected[row["id"]]
            image = np.asarray(row["image"])
            assert image.shape == (256, 256, 3)
            assert np.array_equal(image, decode(source_png(imaged_workdir, row["tile_id"])))
            assert np.array_equal(np.asarray(row["label"]), decode(source_png(imaged_workdir, row["tile_id"], "label")))
    assert len(ids) == len(set(ids)) == len(expected)
    front = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert front["license"] == "cc-by-4.0" and "image-to-text" in front["task_categories"]
    default = next(c for c in front["configs"] if c["config_name"] == "default")
    assert {d["split"]: d["path"] for d in default["data_files"]}["train"] == "data/train-*"
    info = next(c for c in front["dataset_info"] if c["config_name"] == "default")
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == result.counts["captions"]
    text = (out / "README.md").read_text()
    assert "ESA WorldCover" in text and "Copernicus Sentinel" in text and "10.5194/essd-17-1245-2025" in text
    croissant = mlcroissant.Dataset(jsonld=str(out / "croissant.json"))
    records = list(croissant.records(record_set="default"))
    assert len(records) == len(expected)
    for rec in records:
        assert rec["default/caption"].decode() == expected[rec["default/id"].decode()]
        assert np.asarray(rec["default/image"]).shape == (256, 256, 3)


def test_wds_shards_iterate_with_webdataset(imaged_workdir, tmp_path):
    import webdataset as wds

    out = tmp_path / "wds"
    result = export(imaged_workdir, out, "wds", shard_size=2, multispectral=True, progress=False)
    expected = expected_captions(imaged_workdir)
    shards = json.loads((out / "shards.json").read_text())["shards"]
    seen = []
    for split, n in result.counts["captions"].items():
        files = sorted(out.glob(f"captions-{split}-*.tar"))
        assert len(files) == -(-n // 2)
        for sample in wds.WebDataset([str(f) for f in files], shardshuffle=False):
            key = sample["__key__"]
            assert "." not in key
            seen.append(key)
            assert sample["txt"].decode() == expected[key]
            meta = json.loads(sample["json"])
            assert sample["png"] == source_png(imaged_workdir, meta["tile_id"])
            assert decode(sample["png"]).shape == (256, 256, 3)
            assert sample["label.png"] == source_png(imaged_workdir, meta["tile_id"], "label")
            assert sample["tif"][:2] in (b"II", b"MM")
        assert shards[f"captions/{split}"].startswith(f"captions-{split}-")
    assert sorted(seen) == sorted(expected)


@pytest.mark.parametrize("fmt", ["llava", "coco", "hf", "wds"])
def test_second_export_rewrites_nothing_and_a_moved_folder_loads(imaged_workdir, tmp_path, fmt):
    out = tmp_path / "first"
    export(imaged_workdir, out, fmt, shard_size=2, progress=False)
    before = snapshot(out)
    again = export(imaged_workdir, out, fmt, shard_size=2, progress=False)
    assert again.written == [] and snapshot(out) == before
    assert verify_export(out) == []
    moved = tmp_path / "elsewhere" / "moved"
    shutil.move(str(out), moved)
    assert verify_export(moved) == []
    text = "".join(p.read_text(errors="ignore") for p in moved.rglob("*.json"))
    assert str(tmp_path) not in text and str(imaged_workdir) not in text
    if fmt == "llava":
        for r in json.loads((moved / "captions_train.json").read_text()):
            assert (moved / r["image"]).exists()


def test_manifest_counts_checksums_and_version(imaged_workdir, tmp_path):
    import cen

    out = tmp_path / "hf"
    result = export(imaged_workdir, out, "hf", progress=False)
    manifest = read_manifest(out)
    assert manifest["cen_version"] == cen.__version__ and manifest["format"] == "hf" and manifest["complete"]
    assert manifest["counts"] == result.counts
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    for rel, entry in manifest["files"].items():
        assert not rel.startswith("/") and sha256_file(out / rel) == entry["sha256"]
    assert sum(manifest["skipped"].values()) == len(result.skipped)


def test_resume_rewrites_only_missing_or_changed_shards_and_removes_stale_ones(imaged_workdir, tmp_path):
    out = tmp_path / "wds"
    export(imaged_workdir, out, "wds", shard_size=1, progress=False)
    shards = sorted(out.glob("*.tar"))
    assert len(shards) >= 3
    shards[1].unlink()
    before = snapshot(out)
    again = export(imaged_workdir, out, "wds", shard_size=1, progress=False)
    assert again.written == [shards[1].name]
    assert {k: v for k, v in snapshot(out).items() if k not in (shards[1].name, "manifest.json")} == \
        {k: v for k, v in before.items() if k != "manifest.json"}
    # a source image rewritten: only the shard that holds it is written again
    sample = json.loads((out / "shards.json").read_text())
    assert sample["counts"]["captions"]
    with tarfile.open(shards[0]) as tar:
        key = tar.getnames()[0].split(".")[0]
        meta = json.loads(tar.extractfile(f"{key}.json").read())
    tiles = tiling.read_tiles_table(imaged_workdir / "tiles.parquet").set_index("tile_id")
    png = Path(resolve_path(tiles.at[meta["tile_id"], "rgb_png_path"], imaged_workdir))
    copy = png.read_bytes()
    try:
        os.utime(png, ns=(png.stat().st_atime_ns, png.stat().st_mtime_ns + 10**9))
        changed = export(imaged_workdir, out, "wds", shard_size=1, progress=False)
        holders = [s.name for s in shards if f"{meta['tile_id']}__".encode() in (out / s.name).read_bytes()]
        assert sorted(changed.written) == sorted(holders) and shards[0].name in holders
    finally:
        png.write_bytes(copy)
    bigger = export(imaged_workdir, out, "wds", shard_size=100, progress=False)
    assert sorted(p.name for p in out.glob("*.tar")) == sorted(
        f"captions-{s}-000000.tar" for s in bigger.counts["captions"])
    assert set(bigger.removed) >= {s.name for s in shards} - {p.name for p in out.glob("*.tar")}


def test_refuses_foreign_folders_and_other_formats(imaged_workdir, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(ExportError, match="not empty and holds no manifest.json"):
        export(imaged_workdir, foreign, "hf", progress=False)
    assert (foreign / "thesis.tex").read_text() == "keep me"
    export(imaged_workdir, tmp_path / "hf", "hf", progress=False)
    with pytest.raises(ExportError, match="holds a 'hf' export"):
        export(imaged_workdir, tmp_path / "hf", "wds", progress=False)


def test_files_follow_the_umask(imaged_workdir, tmp_path):
    old = os.umask(0o027)
    try:
        export(imaged_workdir, tmp_path / "out", "llava", progress=False)
    finally:
        os.umask(old)
    modes = {p.stat().st_mode & 0o777 for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert modes == {0o640}


def test_cli_accounts_and_exits_non_zero_when_nothing_is_done(imaged_workdir, tmp_path, capsys):
    from cen.cli import main

    assert main(["export", str(imaged_workdir), str(tmp_path / "o"), "--format", "wds", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "captions" in out and "skipped 1 (verification status 'rejected' (not accepted): 1)" in out
    assert "7 tiles: 3 eligible, 4 excluded (no_label: 4)" in out
    assert main(["export", str(imaged_workdir), str(tmp_path / "p"), "--format", "hf", "--split", "nosuch"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no caption to export" in err[0]
    assert main(["export", str(tmp_path / "nowhere"), str(tmp_path / "q"), "--format", "hf"]) == 1
    assert "tiles.parquet" in capsys.readouterr().err


def test_missing_source_file_is_a_failed_sample_and_exit_2(imaged_workdir, tmp_path, capsys):
    from cen.cli import main

    broken = tmp_path / "broken"
    shutil.copytree(imaged_workdir, broken)
    tiles = tiling.read_tiles_table(broken / "tiles.parquet")
    first = tiles[tiles["label_path"].notna()].iloc[0]
    Path(resolve_path(first["label_png_path"], broken)).unlink()
    assert main(["export", str(broken), str(tmp_path / "o"), "--format", "hf", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "failed 2" in captured.out or "failed 1" in captured.out
    assert first["tile_id"] in captured.err


def test_a_killed_export_resumes_at_the_first_unfinished_shard(imaged_workdir, tmp_path, monkeypatch):
    import cen.export.wds as wds_format

    out = tmp_path / "wds"
    real_add, calls = wds_format._add, {"n": 0}

    def dies_in_the_third_shard(tar, name, data):
        if name.endswith(".png") and ".label" not in name and ".b" not in name:
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
        real_add(tar, name, data)

    monkeypatch.setattr(wds_format, "_add", dies_in_the_third_shard)
    with pytest.raises(KeyboardInterrupt):
        export(imaged_workdir, out, "wds", shard_size=1, progress=False)
    monkeypatch.setattr(wds_format, "_add", real_add)
    manifest = read_manifest(out)
    assert manifest["complete"] is False and len([f for f in manifest["files"] if f.endswith(".tar")]) == 2
    assert not list(out.glob(".*.tmp*")), "no temporary file is left behind"
    done = {k: v for k, v in snapshot(out).items() if k.endswith(".tar")}
    resumed = export(imaged_workdir, out, "wds", shard_size=1, progress=False)
    assert set(resumed.kept) >= set(done) and not set(resumed.written) & set(done)
    assert read_manifest(out)["complete"] is True and verify_export(out) == []


def test_hostile_inputs_end_in_one_line_errors(smoke_workdir, tmp_path, capsys):
    from cen.cli import main

    assert main(["export", str(smoke_workdir), str(tmp_path / "o"), "--format", "hf", "--shard-size", "0"]) == 1
    assert "shard size must be a whole number of rows >= 1" in capsys.readouterr().err
    # the export folder is the workdir itself: refused, nothing of the workdir touched
    before = snapshot(smoke_workdir)
    assert main(["export", str(smoke_workdir), str(smoke_workdir), "--format", "llava"]) == 1
    assert "not empty and holds no manifest.json" in capsys.readouterr().err
    assert snapshot(smoke_workdir) == before
    # two tile ids that differ only in characters an export id cannot hold
    clash = tmp_path / "clash"
    shutil.copytree(smoke_workdir, clash)
    tiles = tiling.read_tiles_table(clash / "tiles.parquet")
    caps = pd.read_parquet(clash / "captions_verified.parquet")
    a, b = sorted(set(caps["tile_id"]))[:2]
    renamed = {a: "tile.one", b: "tile-one"}
    tiles["tile_id"] = tiles["tile_id"].replace(renamed)
    caps["tile_id"] = caps["tile_id"].replace(renamed)
    tiling.write_tiles_table(clash / "tiles.parquet", tiles)
    caps.to_parquet(clash / "captions_verified.parquet")
    assert main(["export", str(clash), str(tmp_path / "p"), "--format", "wds"]) == 1
    assert "give the same export id" in capsys.readouterr().err


def test_hf_folder_loads_by_its_card_configs(imaged_workdir, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "hf"
    result = export(imaged_workdir, out, "hf", progress=False)
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {s: len(ds[s]) for s in ds} == result.counts["captions"]


def test_unverified_workdir_exports_only_with_captions_all(smoke_workdir, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(smoke_workdir, raw)
    (raw / "captions_verified.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="captions_verified.parquet: verified captions not found"):
        export(raw, tmp_path / "a", "hf", progress=False)
    result = export(raw, tmp_path / "b", "wds", captions="all", progress=False)
    captions = pd.read_parquet(raw / "captions.parquet")
    assert result.n_exported == len(captions) and len(result.skipped) == 0
