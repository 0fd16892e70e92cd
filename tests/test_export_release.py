"""``cen export --release``: the ChatEarthNet release (a local fixture in its layout) in every format."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from cen.export import CaptionDataset, export_release
from cen.sources import chatearthnet as rel

# Real image names reported by third parties (as in test_sources_chatearthnet).
NAMES = ["2815_4942_patch00.png", "3886_3141_patch00.png", "4334_2404_patch00.png", "4334_2404_patch11.png"]
WHITE = "4334_2404_patch01.png"
"""An all-white placeholder, as the release contains."""


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory):
    """json_files.zip in the release's layout (extracted by the real extractor) plus an extracted
    s2_rgb_images folder with noise PNGs and one white placeholder."""
    root = tmp_path_factory.mktemp("release")
    rng = np.random.default_rng(0)
    records = {
        ("35", "train"): [{"image": n, "caption": f"A 3.5 caption of {n}."} for n in NAMES[:3]] +
                         [{"image": WHITE, "caption": "A caption of a white placeholder."}],
        ("35", "val"): [{"image": NAMES[3], "caption": "A 3.5 val caption."}],
        ("35", "test"): [{"image": NAMES[0], "caption": "A 3.5 test caption."}],
        ("4v", "train"): [{"image": NAMES[1], "caption": "A 4V caption."}],
        ("4v", "val"): [], ("4v", "test"): [{"image": NAMES[0], "caption": "A 4V test caption."}],
    }
    with zipfile.ZipFile(root / "json_files.zip", "w") as zf:
        for (v, s), recs in records.items():
            zf.writestr(f"json_files/{rel.caption_file(v, s)}", json.dumps(recs))
    rel.safe_extract(root / "json_files.zip", root)
    images = root / "s2_rgb_images" / "rgb"
    images.mkdir(parents=True)
    for n in NAMES:
        (images / n).write_bytes(_png(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)))
    (images / WHITE).write_bytes(_png(np.full((256, 256, 3), 255, np.uint8)))
    return root


def test_release_to_hf_with_footprints(release_dir, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    result = export_release(release_dir, tmp_path / "hf", "hf", progress=False)
    assert result.counts == {"captions": {"train": 4, "val": 1, "test": 2}}
    assert result.skipped["reason"].tolist() == ["placeholder image (white)"]
    ds = datasets.load_dataset("parquet", data_dir=str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    row = next(r for r in ds["train"] if r["tile_id"] == "2815_4942_patch00")
    west, south, east, north = rel.tile_lonlat_bounds(2 * 2815, 2 * 4942, 14)
    assert row["bbox"] == pytest.approx([west, south, east, north])
    assert row["caption"] == "A 3.5 caption of 2815_4942_patch00.png." and row["paradigm"] == "gpt35"
    assert row["crs"] == "EPSG:3857" and row["transform"][0] == pytest.approx(-row["transform"][4])
    source = np.asarray(Image.open(release_dir / "s2_rgb_images" / "rgb" / "2815_4942_patch00.png"))
    assert np.array_equal(np.asarray(row["image"]), source)
    assert "ChatEarthNet" in (tmp_path / "hf" / "README.md").read_text()


@pytest.mark.parametrize("fmt", ["llava", "coco", "wds", "stac"])
def test_release_in_every_format_reads_back(release_dir, tmp_path, fmt):
    result = export_release(release_dir, tmp_path / fmt, fmt, progress=False)
    assert result.n_exported == 7 and len(result.failed) == 0
    ds = CaptionDataset(tmp_path / fmt, "train")
    assert len(ds) == 4
    sample = next(ds[i] for i in range(len(ds)) if ds[i]["tile_id"] == "3886_3141_patch00")
    assert sample["image"].shape == (3, 256, 256) and sample["label"] is None
    assert sorted(sample["captions"]) == ["A 3.5 caption of 3886_3141_patch00.png.", "A 4V caption."]


def test_release_without_images_exports_captions_and_footprints(tmp_path):
    root = tmp_path / "rel"
    (root / "json_files").mkdir(parents=True)
    (root / "json_files" / rel.caption_file("35", "test")).write_text(json.dumps(
        [{"image": NAMES[0], "caption": "only text"}, {"image": NAMES[0], "caption": "again the same image"}]))
    result = export_release(root, tmp_path / "coco", "coco", progress=False)
    doc = json.loads((tmp_path / "coco" / "annotations" / "captions_test.json").read_text())
    assert len(doc["images"]) == 1 and len(doc["annotations"]) == 2
    assert {a["sample_id"] for a in doc["annotations"]} == {"2815_4942_patch00__gpt35", "2815_4942_patch00__gpt35__2"}
    assert any("no extracted image archive" in n for n in result.notes)
    with pytest.raises(ValueError, match="no image \\(llava needs one\\): 2"):
        export_release(root, tmp_path / "llava", "llava", progress=False)


def test_cli_release(release_dir, tmp_path, capsys):
    from cen.cli import main

    assert main(["export", "--release", str(release_dir), str(tmp_path / "o"), "--format", "wds", "--quiet",
                 "--paradigm", "gpt4v"]) == 0
    out = capsys.readouterr().out
    assert "captions 2 (train 1, test 1)" in out and "paradigm 'gpt35' not asked for: 5" in out
    assert main(["export", "--release", str(release_dir), "a", "b", "--format", "wds"]) == 1
