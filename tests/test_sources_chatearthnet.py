"""The ChatEarthNet release: download from a local HTTP server, verify, extract, load, decode."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import zipfile

import numpy as np
import pandas as pd
import pytest

from cen import tiling
from cen.sources import chatearthnet as cen_release
from cen.sources.chatearthnet import ChecksumError, DownloadError, ReleaseError, UnsafeArchiveError

# Real image names reported by third parties (Montevideo, Lisbon/Almada, Oslofjord).
NAMES = ["2815_4942_patch00.png", "3886_3141_patch00.png", "4334_2404_patch00.png", "4334_2404_patch11.png"]


def _records(version: str, split: str, n: int) -> list[dict]:
    return [{"image": NAMES[k % len(NAMES)], "caption": f"A {version} {split} caption number {k}."} for k in range(n)]


def make_release_zip(path, *, sizes=None, extra_entries=()) -> str:
    """A small json_files.zip in the release's layout; returns its md5."""
    sizes = sizes or {("35", "train"): 6, ("35", "val"): 2, ("35", "test"): 3, ("4v", "train"): 2, ("4v", "val"): 1, ("4v", "test"): 1}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("json_files/", "")
        for (v, s), n in sizes.items():
            zf.writestr(f"json_files/{cen_release.caption_file(v, s)}", json.dumps(_records(v, s, n)))
        for name, data in extra_entries:
            zf.writestr(name, data)
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def served_release(http_server):
    md5 = make_release_zip(http_server.root / "json_files.zip")
    return http_server, md5


def test_download_extract_and_load(served_release, tmp_path):
    server, md5 = served_release
    out = cen_release.download_release(tmp_path / "rel", base_url=server.url, md5s={"json_files.zip": md5}, progress=False)
    assert out["json_files.zip"].exists()
    assert cen_release.check_completeness(tmp_path / "rel").ok
    frame = cen_release.load_captions(tmp_path / "rel")
    assert len(frame) == 15 and frame.crs.to_epsg() == 4326
    assert frame.groupby(["version", "split"]).size()[("35", "train")] == 6
    row = frame[frame.image == "2815_4942_patch00.png"].iloc[0]
    assert (row.tile_col, row.tile_row, row.patch) == (2815, 4942, "patch00")
    # second call: file present with the right md5 -> no new GET
    n = len(server.requests)
    cen_release.download_release(tmp_path / "rel", base_url=server.url, md5s={"json_files.zip": md5}, progress=False)
    assert len(server.requests) == n
    # split-size check against the published constants flags every split of this small copy
    bad = cen_release.check_split_sizes(frame)
    assert bad[("35", "train")] == (6, 98_092) and len(bad) == 6
    with pytest.raises(ReleaseError, match="98092"):
        cen_release.load_release(tmp_path / "rel")


def test_split_counts_and_overview(served_release, tmp_path):
    server, md5 = served_release
    cen_release.download_release(tmp_path / "rel", base_url=server.url, md5s={"json_files.zip": md5}, progress=False)
    frame = cen_release.load_captions(tmp_path / "rel")
    counts = cen_release.split_counts(frame)
    assert list(counts.columns) == ["records"] and counts.index.names == ["version", "split"]
    assert counts.loc[("35", "train"), "records"] == 6 and counts.loc[("4v", "test"), "records"] == 1
    assert counts["records"].sum() == len(frame) == 15
    view = cen_release.captions_overview(frame, n=3)
    assert list(view.columns) == list(cen_release.OVERVIEW_COLUMNS) and len(view) == 3
    assert view.iloc[0][["image", "tile_col", "tile_row", "patch"]].tolist() == ["2815_4942_patch00.png", 2815, 4942,
                                                                                "patch00"]


def test_fetch_release_source(served_release, tmp_path):
    from cen import sources

    server, md5 = served_release
    fetched = sources.fetch("chatearthnet", tmp_path / "work", release_dir=tmp_path / "rel",
                            release_kw={"base_url": server.url, "md5s": {"json_files.zip": md5}, "progress": False})
    assert fetched.tiles is None and fetched.skipped.empty
    assert len(fetched.captions) == 15 and fetched.completeness.ok
    assert not (tmp_path / "work" / "tiles.parquet").exists()


def test_published_md5_is_what_a_default_download_checks(served_release, tmp_path):
    # no md5s override: the served copy is not the published file, so the published md5 must refuse it
    server, served_md5 = served_release
    published = cen_release.RELEASE_FILES["json_files.zip"].md5
    assert re.fullmatch(r"[0-9a-f]{32}", published) and served_md5 != published
    with pytest.raises(ChecksumError, match=f"does not match the published {published}") as exc:
        cen_release.download_release(tmp_path / "rel", base_url=server.url, progress=False)
    assert served_md5 in str(exc.value)
    assert (tmp_path / "rel" / "quarantine" / "json_files.zip").exists()
    assert not (tmp_path / "rel" / "json_files.zip").exists() and not (tmp_path / "rel" / "json_files").exists()
    md5s = [f.md5 for f in cen_release.RELEASE_FILES.values()]
    assert len(set(md5s)) == len(md5s) == 4 and all(re.fullmatch(r"[0-9a-f]{32}", m) for m in md5s)


def test_published_constants():
    assert sum(n for (v, _), n in cen_release.SPLIT_SIZES.items() if v == "35") == 163_488
    assert sum(n for (v, _), n in cen_release.SPLIT_SIZES.items() if v == "4v") == 10_000
    with pytest.raises(ValueError, match="unknown release file"):
        cen_release.download_release("/nonexistent", files=["all.zip"])


def test_resume_after_truncation_uses_range(served_release, tmp_path):
    server, md5 = served_release
    size = (server.root / "json_files.zip").stat().st_size
    server.truncate_after = size // 3
    dest = tmp_path / "json_files.zip"
    with pytest.raises(DownloadError, match="partial data kept"):
        cen_release.download_file(f"{server.url}/json_files.zip", dest, md5=md5, retries=1, progress=False)
    part = tmp_path / "json_files.zip.part"
    assert part.exists() and 0 < part.stat().st_size < size and not dest.exists()
    server.truncate_after = None
    cen_release.download_file(f"{server.url}/json_files.zip", dest, md5=md5, progress=False)
    assert hashlib.md5(dest.read_bytes()).hexdigest() == md5 and not part.exists()
    last = server.requests[-1]
    assert last.status == 206 and last.range == f"bytes={size // 3 * 2}-"  # two truncated rounds, then resume


def test_truncated_transfers_resume_within_one_call(served_release, tmp_path):
    server, md5 = served_release
    size = (server.root / "json_files.zip").stat().st_size
    server.truncate_after = size // 2 + 1  # each response delivers at most half: two Range rounds
    dest = cen_release.download_file(f"{server.url}/json_files.zip", tmp_path / "j.zip", md5=md5, retries=3, progress=False)
    assert md5 == cen_release.md5sum(dest)
    assert [r.status for r in server.requests][:2] == [200, 206]


def test_md5_mismatch_quarantines(served_release, tmp_path):
    server, _ = served_release
    with pytest.raises(ChecksumError, match="quarantine"):
        cen_release.download_file(f"{server.url}/json_files.zip", tmp_path / "json_files.zip", md5="0" * 32, progress=False)
    assert (tmp_path / "quarantine" / "json_files.zip").exists()
    assert not (tmp_path / "json_files.zip").exists()


def test_http_errors_and_unreachable(served_release, tmp_path):
    server, md5 = served_release
    with pytest.raises(DownloadError, match="404"):
        cen_release.download_file(f"{server.url}/missing.zip", tmp_path / "m.zip", progress=False)
    server.fail_paths["/json_files.zip"] = 503
    with pytest.raises(DownloadError, match="503"):
        cen_release.download_file(f"{server.url}/json_files.zip", tmp_path / "j.zip", progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot connect"):
        cen_release.download_file(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", retries=0, timeout=2, progress=False)


@pytest.mark.parametrize("entry", ["../evil.txt", "/abs/evil.txt", "json_files/../../evil.txt"])
def test_unsafe_archive_entries_are_refused(tmp_path, entry):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("json_files/ok.json", "[]")
        zf.writestr(entry, "x")
    with pytest.raises(UnsafeArchiveError, match="unsafe entry"):
        cen_release.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "json_files.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ReleaseError, match="not a valid zip"):
        cen_release.safe_extract(bad, tmp_path)


def test_corrupt_member_is_a_release_error_and_leaves_no_temporary(tmp_path):
    archive = tmp_path / "json_files.zip"
    make_release_zip(archive, sizes={("35", "train"): 40, ("35", "val"): 40})
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(f"json_files/{cen_release.caption_file('35', 'val')}")
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 20:start + 40] = bytes(20)  # damage the compressed bytes of one member
    archive.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(ReleaseError, match=r"json_files.zip: member 'json_files/ChatEarthNet_caps_35_val.json' "
                                           r"is corrupt") as exc:
        cen_release.safe_extract(archive, out)
    assert not isinstance(exc.value, UnsafeArchiveError)
    left = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert left == [cen_release.caption_file("35", "train")]  # the good member before it, no temporary


def test_completeness_reports_missing_and_extra(tmp_path):
    make_release_zip(tmp_path / "j.zip", sizes={("35", "train"): 2, ("35", "val"): 1})
    cen_release.safe_extract(tmp_path / "j.zip", tmp_path / "rel")
    (tmp_path / "rel" / "json_files" / "notes.json").write_text("[]")
    rep = cen_release.check_completeness(tmp_path / "rel")
    assert not rep.ok
    assert "json_files/ChatEarthNet_caps_4v_test.json" in rep.missing and len(rep.missing) == 4
    assert rep.extra == ["json_files/notes.json"]
    # image folders: one referenced image missing, one extra
    rgb = tmp_path / "rel" / "s2_rgb_images" / "s2_images"
    for name in NAMES[:1] + ["9_9_patch00.png"]:
        tiling.write_png(rgb / name, np.zeros((4, 4, 3), np.uint8))
    rep = cen_release.check_completeness(tmp_path / "rel")
    assert "s2_rgb_images/s2_images/9_9_patch00.png" in rep.extra
    assert "s2_rgb_images/s2_images/3886_3141_patch00.png" in rep.missing
    assert "s2_band_5_6_7_images/ (folder)" in rep.missing


def test_z13_footprints_match_reported_places():
    # 2815_4942 -> Montevideo, 3886_3141 -> Lisbon/Almada, 4334_2404 -> Oslofjord
    assert cen_release.tile_lonlat_bounds(2815, 4942) == pytest.approx((-56.294, -34.849, -56.250, -34.813), abs=2e-3)
    west, south, east, north = cen_release.tile_lonlat_bounds(3886, 3141)
    assert (round(west, 2), round(east, 2), round(south, 2), round(north, 2)) == (-9.23, -9.18, 38.62, 38.65)
    p00 = cen_release.parse_image_name("4334_2404_patch00.png")
    p11 = cen_release.parse_image_name("4334_2404_patch11.png")
    p01 = cen_release.parse_image_name("4334_2404_patch01.png")
    tile = cen_release.tile_lonlat_bounds(4334, 2404)
    # patch00 is the north-west quarter, patch11 the south-east, patch01 the north-east
    assert p00["west"] == pytest.approx(tile[0]) and p00["north"] == pytest.approx(tile[3])
    assert p11["east"] == pytest.approx(tile[2]) and p11["south"] == pytest.approx(tile[1])
    assert p01["east"] == pytest.approx(tile[2]) and p01["north"] == pytest.approx(tile[3])
    assert 10.46 < p00["lon"] < 10.50 and 59.42 < p00["lat"] < 59.45
    with pytest.raises(ValueError, match="patch"):
        cen_release.parse_image_name("4334_2404_patch22.png")
    with pytest.raises(ValueError, match="outside the zoom-13 grid"):
        cen_release.tile_lonlat_bounds(8192, 0)
    with pytest.raises(ValueError, match=r"\(8192, 5\) outside the zoom-13 grid 0..8191"):
        cen_release.parse_image_name("8192_5_patch11.png")  # zoom-13 numbers, not the patch's zoom-14 ones


def test_out_of_range_zoom13_name_names_file_record_and_numbers(tmp_path):
    d = tmp_path / "json_files"
    d.mkdir()
    recs = [{"image": "4334_2404_patch00.png", "caption": "ok"}, {"image": "4334_9000_patch10.png", "caption": "x"}]
    (d / "ChatEarthNet_caps_4v_test.json").write_text(json.dumps(recs))
    with pytest.raises(ReleaseError) as exc:
        cen_release.load_captions(tmp_path)
    assert str(exc.value) == (f"{d / 'ChatEarthNet_caps_4v_test.json'}: record 1: image '4334_9000_patch10.png': "
                              "zoom-13 tile column/row (4334, 9000) is outside the zoom-13 grid 0..8191")


@pytest.mark.parametrize(
    "records, message",
    [
        ({"image": "1_2_patch00.png", "caption": "x"}, "expected a JSON list"),
        ([{"image": "1_2_patch00.png", "caption": "ok"}, {"image": "1_2_patch01.png", "caption": "x", "id": 3}], r"record 1 has unknown keys \['id'\]"),
        ([{"image": "1_2_patch00.png"}], r"lacks \['caption'\]"),
        ([{"image": "1_2_patch00.png", "caption": ["a", "b"]}], "caption must be a non-empty string"),
        ([{"image": "tile.png", "caption": "x"}], "record 0: image 'tile.png'"),
        (["just text"], "record 0 is str"),
    ],
)
def test_malformed_records_name_file_and_record(tmp_path, records, message):
    d = tmp_path / "json_files"
    d.mkdir()
    (d / "ChatEarthNet_caps_35_val.json").write_text(json.dumps(records))
    with pytest.raises(ReleaseError, match=message) as exc:
        cen_release.load_captions(tmp_path)
    assert "ChatEarthNet_caps_35_val.json" in str(exc.value)


def test_placeholder_flags(tmp_path):
    make_release_zip(tmp_path / "j.zip", sizes={("35", "train"): 4})
    cen_release.safe_extract(tmp_path / "j.zip", tmp_path / "rel")
    rgb = tmp_path / "rel" / "s2_rgb_images" / "s2_images"
    rng = np.random.default_rng(1)
    tiling.write_png(rgb / NAMES[0], np.full((256, 256, 3), 255, np.uint8))
    tiling.write_png(rgb / NAMES[1], np.zeros((256, 256, 3), np.uint8))
    tiling.write_png(rgb / NAMES[2], rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    tiling.write_png(rgb / NAMES[3], np.full((256, 256, 3), 7, np.uint8))
    frame = cen_release.load_captions(tmp_path / "rel")
    flags = dict(zip(frame.image, frame.placeholder))
    assert flags[NAMES[0]] == "white" and flags[NAMES[1]] == "black"
    assert pd.isna(flags[NAMES[2]]) and pd.isna(flags[NAMES[3]])


def test_existing_file_with_wrong_md5_is_kept_in_quarantine(served_release, tmp_path):
    server, md5 = served_release
    dest = tmp_path / "json_files.zip"
    dest.write_bytes(b"an older, different download")
    cen_release.download_file(f"{server.url}/json_files.zip", dest, md5=md5, progress=False)
    assert cen_release.md5sum(dest) == md5
    assert (tmp_path / "quarantine" / "json_files.zip").read_bytes() == b"an older, different download"
