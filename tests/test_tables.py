"""Stage files: atomic writes that follow the umask, portable paths, failure tables."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cen import tables


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        written = [tables.write_bytes(tmp_path / "a.bin", b"x"),
                   tables.write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet")]
    finally:
        os.umask(old)
    assert [p.stat().st_mode & 0o777 for p in written] == [mode, mode]


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tables.write_bytes(tmp_path / "keep.txt", b"good")
    with pytest.raises(RuntimeError):
        with tables.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_relative_paths_survive_moving_the_workdir(tmp_path):
    work = tmp_path / "run"
    (work / "labels").mkdir(parents=True)
    (work / "labels" / "t.tif").write_bytes(b"tif")
    stored = tables.relative_to_workdir(work / "labels" / "t.tif", work)
    assert stored == "labels/t.tif"
    moved = tmp_path / "elsewhere"
    shutil.move(str(work), moved)
    assert tables.resolve_path(stored, moved).read_bytes() == b"tif"
    outside = tmp_path / "outside.tif"
    assert tables.relative_to_workdir(outside, moved) == str(outside.resolve())
    assert tables.resolve_path(str(outside), moved) == outside
    assert tables.resolve_path("https://example.org/a.tif", moved) == "https://example.org/a.tif"
    assert tables.resolve_path("/vsis3/bucket/a.tif", moved) == "/vsis3/bucket/a.tif"
    assert tables.resolve_path(None, moved) is None and tables.resolve_path(float("nan"), moved) is None


def test_failures_table_round_trip_and_cleared_when_none(tmp_path):
    out = tmp_path / "stats.parquet"
    path = tables.write_failures(out, [{"tile_id": "r0_c0", "stage": "stats", "error": "bad code 7 at (3, 4)"}])
    assert path == tmp_path / "stats_failures.parquet"
    back = tables.read_failures(out)
    assert back.to_dict("records") == [{"tile_id": "r0_c0", "stage": "stats", "error": "bad code 7 at (3, 4)"}]
    assert tables.write_failures(out, []) is None and not path.exists()
    assert list(tables.read_failures(out).columns) == list(tables.FAILURE_COLUMNS)
    assert len(tables.read_failures(out)) == 0


def test_path_columns_stored_relative_and_resolved_back(tmp_path):
    work = tmp_path / "work"
    inside, outside = work / "tiles" / "a.tif", tmp_path / "other" / "b.tif"
    frame = pd.DataFrame({"label_path": [str(inside), str(outside), "tiles/c.tif", None,
                                         "https://host/x.tif"], "n": range(5)})
    stored = tables.relative_path_columns(frame, work)
    assert stored["label_path"].tolist() == ["tiles/a.tif", str(outside), "tiles/c.tif", None, "https://host/x.tif"]
    assert frame["label_path"].iloc[0] == str(inside)  # a copy; the frame given is unchanged
    moved = tmp_path / "moved"
    back = tables.resolve_path_columns(stored, moved)
    assert back["label_path"].tolist() == [str(moved / "tiles/a.tif"), str(outside), str(moved / "tiles/c.tif"),
                                           None, "https://host/x.tif"]
    assert back["n"].tolist() == list(range(5))
