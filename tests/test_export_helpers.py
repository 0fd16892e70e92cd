"""Helpers (no tests) shared by the export tests: the smoke run built once per session through
the real CLI (demo tiles -> stats -> template captions -> verification with two reviewer
decisions), a copy whose captioned tiles also carry Sentinel-2 PNGs (paths relative to the
workdir), and the facts the tests compare exports with (accepted texts, source PNGs)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

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


_BUILT: dict[str, Path] = {}


def smoke_workdir_once(tmp_path_factory) -> Path:
    """:func:`build_smoke_workdir` once per test session (shared by every export test module)."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _BUILT:
        _BUILT[key] = build_smoke_workdir(tmp_path_factory.mktemp("export_smoke"))
    return _BUILT[key]


def imaged_workdir_once(tmp_path_factory) -> Path:
    key = str(tmp_path_factory.getbasetemp()) + "#imaged"
    if key not in _BUILT:
        _BUILT[key] = imaged_copy(smoke_workdir_once(tmp_path_factory), tmp_path_factory.mktemp("export_imaged") / "wd")
    return _BUILT[key]


def expected_captions(workdir: Path) -> dict[str, str]:
    """id -> accepted text, straight from captions_verified.parquet."""
    from cen.export import ACCEPTED_STATUSES

    t = pd.read_parquet(workdir / "captions_verified.parquet")
    ok = t["verification_status"].isin(ACCEPTED_STATUSES) & t["accepted_text"].notna()
    return {f"{r.tile_id}__{r.paradigm}": r.accepted_text for r in t[ok].itertuples()}


def source_png(workdir: Path, tile_id: str, kind: str = "rgb") -> bytes:
    """The bytes of a tile's PNG of ``kind`` (``rgb``, ``b567``, ``b81112``, ``label``) in the workdir."""
    tiles = tiling.read_tiles_table(workdir / "tiles.parquet").set_index("tile_id")
    col = "label_png_path" if kind == "label" else f"{kind}_png_path"
    return Path(resolve_path(tiles.at[tile_id, col], workdir)).read_bytes()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))
