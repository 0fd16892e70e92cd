"""Workdirs for the export tests: the smoke run built once per session through the real CLI
(demo tiles -> stats -> template captions -> verification with two reviewer decisions), and a
copy whose captioned tiles also carry Sentinel-2 PNGs (stored as paths relative to the workdir)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from cen import tiling
from cen.tables import relative_to_workdir, resolve_path

REJECTED = 0
"""Row (in captions.parquet order) whose caption the fixture's reviewer rejects."""
EDITED = 1
"""Row whose caption the fixture's reviewer edits."""
EDITED_TEXT = "An edited caption: grass and trees, a little water."


def build_smoke_workdir(root: Path) -> Path:
    from cen.cli import main

    workdir = root / "smoke"
    assert main(["tiles", "demo", str(workdir), "--smoke"]) == 0
    assert main(["stats", str(workdir / "tiles.parquet")]) == 0
    assert main(["generate", "--workdir", str(workdir), "--backend", "template", "--paradigm", "gpt35",
                 "--paradigm", "gpt4v"]) == 0
    captions = pd.read_parquet(workdir / "captions.parquet")
    key = lambda i: f"{captions['tile_id'].iloc[i]}|{captions['paradigm'].iloc[i]}"  # noqa: E731
    decisions = [{"key": key(REJECTED), "action": "reject", "note": "test"},
                 {"key": key(EDITED), "action": "edit", "text": EDITED_TEXT, "note": "test"}]
    (root / "decisions.json").write_text(json.dumps(decisions))
    assert main(["verify", "run", "--workdir", str(workdir), "--decisions", str(root / "decisions.json"),
                 "--reviewer", "tester"]) == 0
    return workdir


PATH_COLUMNS = ("label_path", "label_png_path", "image_path", "rgb_png_path", "b567_png_path", "b81112_png_path")


def imaged_copy(workdir: Path, dest: Path) -> Path:
    """A copy of ``workdir`` with every path stored relative to the copy, where each captioned
    label tile also has the files of one demo Sentinel-2 tile, so image exports are checked on
    real band-group PNGs."""
    shutil.copytree(workdir, dest)
    tiles = tiling.read_tiles_table(dest / "tiles.parquet")
    for col in PATH_COLUMNS:
        values = []
        for v in tiles[col]:
            p = resolve_path(v if isinstance(v, str) else None, workdir)
            values.append(None if p is None else relative_to_workdir(dest / Path(p).resolve().relative_to(
                workdir.resolve()), dest))
        tiles[col] = values
    imaged = tiles[tiles["rgb_png_path"].notna()].reset_index(drop=True)
    for k, i in enumerate(tiles.index[tiles["label_path"].notna()]):
        for col in ("rgb_png_path", "b567_png_path", "b81112_png_path", "image_path"):
            tiles.loc[i, col] = imaged.loc[k % len(imaged), col]
    tiling.write_tiles_table(dest / "tiles.parquet", tiles)
    return dest
