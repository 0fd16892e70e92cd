"""The published ChatEarthNet release (Zenodo record 11003436): download, verify, extract, load.

* :func:`download_release` fetches ``json_files.zip`` (captions only, 21.4 MB) by default and the
  three image archives (~38 GB) only when asked; downloads resume with HTTP Range requests, are
  md5-verified against the published sums (a mismatching file is moved to ``quarantine/`` and an
  error raised), and archives are extracted safely (absolute paths, ``..`` and links refused).
* :func:`load_captions` reads ``ChatEarthNet_caps_{35,4v}_{train,val,test}.json`` (lists of
  ``{"image", "caption"}`` records) into one GeoDataFrame: version, split, image, caption, the
  zoom-13 tile column/row and patch parsed from ``{col}_{row}_patch{ij}.png``, and the patch's
  lon/lat footprint decoded from the Web-Mercator tile grid (the release carries no coordinates).
  With image folders present, records whose image is an all-white / all-black placeholder are
  flagged.
* :func:`check_completeness` reports missing and extra files; :func:`check_split_sizes` compares
  row counts with the published split sizes.

Patch footprints: a zoom-13 tile ``(col, row)`` is a 512 x 512 image; ``patch{i}{j}`` is its row
half ``i`` and column half ``j``, i.e. the zoom-14 tile ``(2 col + j, 2 row + i)``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import requests
from tqdm.auto import tqdm

from cen.tables import file_digest

ZENODO_RECORD = "11003436"
ZENODO_FILES_URL = f"https://zenodo.org/records/{ZENODO_RECORD}/files"
"""Files are at ``{ZENODO_FILES_URL}/{name}?download=1``."""


@dataclass(frozen=True)
class ReleaseFile:
    """One archive of the Zenodo record."""

    name: str
    md5: str
    size: int
    """Approximate size in bytes as listed on Zenodo (the md5 is the check, not this)."""
    kind: str
    """``captions`` or the band group (``rgb``, ``b567``, ``b81112``)."""


RELEASE_FILES: dict[str, ReleaseFile] = {
    f.name: f
    for f in (
        ReleaseFile("json_files.zip", "ac365a328d645641ca28315bee9e1d25", 21_400_000, "captions"),
        ReleaseFile("s2_rgb_images.zip", "5425015e2537271044341403e8d90965", 13_000_000_000, "rgb"),
        # band-group names of the two other archives are inferred from Zenodo's listing order
        ReleaseFile("s2_band_5_6_7_images.zip", "4e5371789574df1391054adc9d79e105", 12_000_000_000, "b567"),
        ReleaseFile("s2_band_8_11_12_images.zip", "71446c4fb383a4b487002ba2dd3d60ad", 13_400_000_000, "b81112"),
    )
}
"""The four files of the record with their published md5 sums."""

CAPTIONS_ARCHIVE = "json_files.zip"
IMAGE_ARCHIVES = ("s2_rgb_images.zip", "s2_band_5_6_7_images.zip", "s2_band_8_11_12_images.zip")

VERSIONS = ("35", "4v")
SPLITS = ("train", "val", "test")
SPLIT_SIZES: dict[tuple[str, str], int] = {
    ("35", "train"): 98_092, ("35", "val"): 16_348, ("35", "test"): 49_048,
    ("4v", "train"): 6_000, ("4v", "val"): 1_000, ("4v", "test"): 3_000,
}
"""Published number of records per (version, split): 163,488 GPT-3.5 and 10,000 GPT-4V captions."""

PLACEHOLDER_SHA256 = {
    "white": "13c0915d226521fb56bba264c92a227dbdebcf9a4add3a4957fd9c810582dbe8",
    "black": "3b93f26267630963185ee67d8020972faee108a7bca80db725817e4680c9955c",
}
"""SHA-256 of the release's all-white and all-black placeholder PNGs (reported by third parties)."""
PLACEHOLDER_MAX_BYTES = 16_384
"""Uniform 256 x 256 PNGs compress to well under this; real Sentinel-2 patches are ~200 kB."""

RECORD_KEYS = frozenset({"image", "caption"})
ZOOM = 13
IMAGE_NAME = re.compile(r"^(?P<col>\d+)_(?P<row>\d+)_patch(?P<i>[01])(?P<j>[01])\.png$")


class ReleaseError(RuntimeError):
    """A release file is unreachable, incomplete, corrupt or malformed; the message names it."""


class DownloadError(ReleaseError):
    pass


class ChecksumError(ReleaseError):
    pass


class UnsafeArchiveError(ReleaseError):
    pass


def caption_file(version: str, split: str) -> str:
    """``ChatEarthNet_caps_{version}_{split}.json``."""
    if version not in VERSIONS or split not in SPLITS:
        raise ValueError(f"unknown caption file version={version!r} split={split!r}; versions {VERSIONS}, splits {SPLITS}")
    return f"ChatEarthNet_caps_{version}_{split}.json"


# --- download --------------------------------------------------------------------------------

def md5sum(path: str | Path) -> str:
    """Hex md5 of a file."""
    return file_digest(path, "md5")


def _quarantine(path: Path, name: str | None = None) -> Path:
    """Move a file to ``quarantine/`` beside it (numbered if the name is taken); returns the new path."""
    folder = path.parent / "quarantine"
    folder.mkdir(exist_ok=True)
    target = folder / (name or path.name)
    k = 1
    while target.exists():
        target = folder / f"{name or path.name}.{k}"
        k += 1
    os.replace(path, target)
    return target


def download_file(
    url: str, dest: str | Path, *, md5: str | None = None, retries: int = 3, timeout: float = 60.0,
    chunk: int = 1 << 20, progress: bool = True, session: requests.Session | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming from ``dest.part`` with HTTP Range requests.

    A truncated transfer is resumed up to ``retries`` times; the partial file stays on disk so a
    later call continues where this one stopped. With ``md5``, a finished file whose checksum
    differs is moved to ``quarantine/`` beside ``dest`` and :class:`ChecksumError` is raised.
    An existing ``dest`` with the right md5 is not downloaded again.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if md5 is None or md5sum(dest) == md5:
            return dest
        _quarantine(dest)  # keep the old file for inspection; never overwrite it silently
    part = dest.with_name(dest.name + ".part")
    http = session or requests.Session()
    total: int | None = None
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with http.get(url, headers=headers, stream=True, timeout=timeout) as resp:
                if resp.status_code == 416 and total is not None and have >= total:
                    break
                if resp.status_code == 416:  # our partial file is longer than the object: start over
                    part.unlink()
                    continue
                if resp.status_code >= 400:
                    raise DownloadError(f"{url}: HTTP {resp.status_code} {resp.reason}")
                if resp.status_code == 200 and have:
                    have = 0  # server ignored the Range header: restart from the beginning
                length = resp.headers.get("Content-Length")
                total = have + int(length) if length is not None else None
                mode = "ab" if have else "wb"
                with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                  desc=dest.name, disable=not progress, leave=False) as bar:
                    # read what arrives and compare sizes ourselves: a cut connection keeps its bytes
                    resp.raw.enforce_content_length = False
                    for block in resp.raw.stream(chunk, decode_content=True):
                        f.write(block)
                        bar.update(len(block))
        except requests.ConnectionError as exc:
            if attempt == retries:
                raise DownloadError(f"{url}: cannot connect or connection lost ({exc}); "
                                    f"partial data kept in {part}, run again to resume") from exc
            continue
        except requests.Timeout as exc:
            if attempt == retries:
                raise DownloadError(f"{url}: timed out ({exc}); partial data kept in {part}") from exc
            continue
        except requests.exceptions.ChunkedEncodingError:
            continue  # truncated body: resume from what we have
        if total is None or part.stat().st_size >= total:
            break
    else:
        got = part.stat().st_size if part.exists() else 0
        raise DownloadError(f"{url}: truncated after {retries + 1} attempts ({got} of {total} bytes); "
                            f"partial data kept in {part}, run again to resume")
    got = part.stat().st_size
    if total is not None and got != total:
        raise DownloadError(f"{url}: got {got} of {total} bytes; partial data kept in {part}, run again to resume")
    if md5 is not None:
        actual = md5sum(part)
        if actual != md5:
            quarantine = _quarantine(part, dest.name)
            raise ChecksumError(f"{url}: md5 {actual} does not match the published {md5}; "
                                f"file moved to {quarantine}")
    os.replace(part, dest)
    return dest


def safe_extract(archive: str | Path, dest: str | Path) -> list[Path]:
    """Extract a zip into ``dest`` after checking every entry; returns the extracted file paths.

    Refuses (raising :class:`UnsafeArchiveError` naming the entry, before writing anything)
    absolute paths, ``..`` components, drive letters and symbolic links. Files already present
    with the same size are kept (re-extraction resumes). A member that does not decompress
    (bad CRC, truncated data) raises :class:`ReleaseError` naming the archive and the member;
    its temporary file is removed and the members extracted before it are kept.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise ReleaseError(f"{archive}: not a valid zip archive ({exc})") from exc
    with zf:
        infos = zf.infolist()
        for info in infos:
            name = info.filename
            parts = Path(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
                raise UnsafeArchiveError(f"{archive}: refusing unsafe entry {name!r} (absolute path or '..')")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UnsafeArchiveError(f"{archive}: refusing symbolic link entry {name!r}")
        out = []
        root = dest.resolve()
        for info in tqdm(infos, desc=f"extract {archive.name}", leave=False, disable=len(infos) < 100):
            target = (dest / info.filename).resolve()
            if root not in target.parents and target != root:
                raise UnsafeArchiveError(f"{archive}: entry {info.filename!r} would land outside {dest}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if not (target.exists() and target.stat().st_size == info.file_size):
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.tmp")
                try:
                    with zf.open(info) as src, open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    os.replace(tmp, target)
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                    raise ReleaseError(f"{archive}: member {info.filename!r} is corrupt ({' '.join(str(exc).split())}); "
                                       "download the archive again") from exc
                finally:
                    tmp.unlink(missing_ok=True)
            out.append(target)
    return out


def download_release(
    dest_dir: str | Path, *, images: bool = False, files: Sequence[str] | None = None,
    base_url: str = ZENODO_FILES_URL, extract: bool = True, md5s: dict[str, str] | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Download (and extract) release files into ``dest_dir``; returns ``{file name: archive path}``.

    Default: ``json_files.zip`` only; ``images=True`` adds the three image archives (~38 GB).
    ``md5s`` overrides the published checksums (tests serving their own archives).
    """
    names = list(files) if files is not None else [CAPTIONS_ARCHIVE, *(IMAGE_ARCHIVES if images else ())]
    unknown = [n for n in names if n not in RELEASE_FILES]
    if unknown:
        raise ValueError(f"unknown release file(s) {unknown}; the record holds {list(RELEASE_FILES)}")
    dest_dir = Path(dest_dir)
    out = {}
    for name in names:
        md5 = (md5s or {}).get(name, RELEASE_FILES[name].md5)
        path = download_file(f"{base_url.rstrip('/')}/{name}?download=1", dest_dir / name, md5=md5, progress=progress)
        if extract:
            safe_extract(path, dest_dir)
        out[name] = path
    return out


# --- completeness ----------------------------------------------------------------------------

@dataclass
class Completeness:
    """What a release folder lacks or has in excess."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def __str__(self) -> str:
        if self.ok and not self.extra:
            return "complete"
        return f"{len(self.missing)} missing ({', '.join(self.missing[:5])}), {len(self.extra)} extra ({', '.join(self.extra[:5])})"


def find_caption_dir(root: str | Path) -> Path:
    """The folder holding the caption JSONs: ``root`` itself or ``root/json_files``."""
    root = Path(root)
    for cand in (root / "json_files", root):
        if any((cand / caption_file(v, s)).exists() for v in VERSIONS for s in SPLITS):
            return cand
    raise ReleaseError(f"{root}: no ChatEarthNet_caps_*.json files here or in json_files/ "
                       f"(download them with `cen release download {root}`)")


def find_image_dirs(root: str | Path) -> dict[str, Path]:
    """Extracted image folders by band group (the folder that directly holds the PNGs)."""
    root = Path(root)
    found = {}
    for archive in IMAGE_ARCHIVES:
        top = root / archive.removesuffix(".zip")
        if not top.is_dir():
            continue
        candidates = [top, *sorted(p for p in top.rglob("*") if p.is_dir())]
        for cand in candidates:
            if next(cand.glob("*_patch??.png"), None) is not None:
                found[RELEASE_FILES[archive].kind] = cand
                break
    return found


def check_completeness(root: str | Path, *, images: bool | None = None) -> Completeness:
    """Missing/extra caption JSONs and (if image folders exist or ``images=True``) missing/extra PNGs.

    Images are checked against the names the caption files reference.
    """
    root = Path(root)
    rep = Completeness()
    try:
        cap_dir = find_caption_dir(root)
    except ReleaseError:
        cap_dir = root / "json_files"
    expected = {caption_file(v, s) for v in VERSIONS for s in SPLITS}
    present = {p.name for p in cap_dir.glob("*.json")} if cap_dir.is_dir() else set()
    rep.missing += sorted(f"json_files/{n}" for n in expected - present)
    rep.extra += sorted(f"json_files/{n}" for n in present - expected)
    image_dirs = find_image_dirs(root)
    if images or (images is None and image_dirs):
        referenced: set[str] = set()
        for name in sorted(expected & present):
            with open(cap_dir / name, encoding="utf-8") as f:
                referenced.update(r.get("image") for r in json.load(f) if isinstance(r, dict))
        for archive in IMAGE_ARCHIVES:
            kind = RELEASE_FILES[archive].kind
            folder = image_dirs.get(kind)
            if folder is None:
                rep.missing.append(f"{archive.removesuffix('.zip')}/ (folder)")
                continue
            have = {p.name for p in folder.glob("*.png")}
            rep.missing += sorted(f"{folder.relative_to(root)}/{n}" for n in referenced - have)
            rep.extra += sorted(f"{folder.relative_to(root)}/{n}" for n in have - referenced)
    return rep


# --- loading ---------------------------------------------------------------------------------

def tile_lonlat_bounds(col: int, row: int, zoom: int = ZOOM) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` in degrees of Web-Mercator XYZ tile ``(col, row)`` at ``zoom``."""
    n = 2**zoom
    if not (0 <= col < n and 0 <= row < n):
        raise ValueError(f"tile column/row ({col}, {row}) outside the zoom-{zoom} grid 0..{n - 1}")

    def lat(y: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))

    return (col / n * 360 - 180, lat(row + 1), (col + 1) / n * 360 - 180, lat(row))


def parse_image_name(name: str) -> dict[str, object]:
    """``{col}_{row}_patch{ij}.png`` -> tile col/row, patch name and the patch's lon/lat footprint."""
    m = IMAGE_NAME.match(name)
    if m is None:
        raise ValueError(f"image name {name!r} is not '{{col}}_{{row}}_patch{{ij}}.png'")
    col, row, i, j = int(m["col"]), int(m["row"]), int(m["i"]), int(m["j"])
    tile_lonlat_bounds(col, row, ZOOM)  # a zoom-13 name outside the grid fails in zoom-13 numbers
    x, y = 2 * col + j, 2 * row + i  # the patch is this zoom-14 tile
    west, south, east, north = tile_lonlat_bounds(x, y, ZOOM + 1)
    centre_lat = tile_lonlat_bounds(2 * x, 2 * y, ZOOM + 2)[1]  # Mercator centre = corner of its children
    return {
        "tile_col": col, "tile_row": row, "patch": f"patch{i}{j}", "patch_row": i, "patch_col": j,
        "west": west, "south": south, "east": east, "north": north, "lon": (west + east) / 2, "lat": centre_lat,
    }


def _read_records(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ReleaseError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise ReleaseError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for k, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise ReleaseError(f"{path}: record {k} is {type(rec).__name__}, expected an object with 'image' and 'caption'")
        keys = set(rec)
        if keys != RECORD_KEYS:
            extra, missing = sorted(keys - RECORD_KEYS), sorted(RECORD_KEYS - keys)
            raise ReleaseError(f"{path}: record {k} has unknown keys {extra} / lacks {missing}; expected exactly "
                               f"{sorted(RECORD_KEYS)}")
        if not isinstance(rec["caption"], str) or not rec["caption"].strip():
            raise ReleaseError(f"{path}: record {k} ({rec.get('image')!r}): caption must be a non-empty string")
        m = IMAGE_NAME.match(rec["image"]) if isinstance(rec["image"], str) else None
        if m is None:
            raise ReleaseError(f"{path}: record {k}: image {rec['image']!r} is not '{{col}}_{{row}}_patch{{ij}}.png'")
        col, row, n = int(m["col"]), int(m["row"]), 2**ZOOM
        if not (0 <= col < n and 0 <= row < n):
            raise ReleaseError(f"{path}: record {k}: image {rec['image']!r}: zoom-{ZOOM} tile column/row "
                               f"({col}, {row}) is outside the zoom-{ZOOM} grid 0..{n - 1}")
    return data


def placeholder_kind(path: str | Path) -> str | None:
    """``'white'`` / ``'black'`` if a PNG is a uniform placeholder, else ``None`` (size pre-filter, then pixels)."""
    from cen import tiling

    path = Path(path)
    if not path.exists() or path.stat().st_size > PLACEHOLDER_MAX_BYTES:
        return None
    img = tiling.read_png(path)
    if tiling.is_all_white(img):
        return "white"
    if tiling.is_all_black(img):
        return "black"
    return None


def load_captions(
    root: str | Path, *, versions: Iterable[str] = VERSIONS, splits: Iterable[str] = SPLITS,
    flag_placeholders: bool | None = None, require_all: bool = False,
):
    """All caption records under ``root`` as a GeoDataFrame (EPSG:4326 patch footprints).

    Columns: ``version``, ``split``, ``record``, ``image``, ``caption``, ``tile_col``, ``tile_row``,
    ``patch``, ``patch_row``, ``patch_col``, ``lon``, ``lat``, ``geometry`` and, when the RGB
    image folder is present (or ``flag_placeholders=True``), ``placeholder`` (``white`` /
    ``black`` / null). Missing caption files are skipped unless ``require_all``.
    """
    import geopandas as gpd
    from shapely.geometry import box

    cap_dir = find_caption_dir(root)
    frames = []
    for version in versions:
        for split in splits:
            path = cap_dir / caption_file(version, split)
            if not path.exists():
                if require_all:
                    raise ReleaseError(f"{path}: caption file missing")
                continue
            recs = _read_records(path)
            df = pd.DataFrame(recs, columns=["image", "caption"])
            df.insert(0, "record", np.arange(len(df)))
            df.insert(0, "split", split)
            df.insert(0, "version", version)
            frames.append(df)
    if not frames:
        raise ReleaseError(f"{cap_dir}: none of the requested caption files exist")
    out = pd.concat(frames, ignore_index=True)
    names = out["image"].unique()
    parsed = pd.DataFrame([parse_image_name(n) for n in names], index=names)
    out = out.join(parsed, on="image")
    geometry = [box(w, s, e, n) for w, s, e, n in zip(out.west, out.south, out.east, out.north)]
    out = out.drop(columns=["west", "south", "east", "north"])
    image_dirs = find_image_dirs(root)
    if flag_placeholders or (flag_placeholders is None and "rgb" in image_dirs):
        rgb = image_dirs.get("rgb")
        if rgb is None:
            raise ReleaseError(f"{root}: placeholder flags need the extracted s2_rgb_images folder")
        kinds = {n: placeholder_kind(rgb / n) for n in tqdm(names, desc="placeholder check", leave=False)}
        out["placeholder"] = out["image"].map(kinds)
    return gpd.GeoDataFrame(out, geometry=geometry, crs="EPSG:4326")


def check_split_sizes(frame: pd.DataFrame) -> dict[tuple[str, str], tuple[int, int]]:
    """``{(version, split): (found, published)}`` for every split whose row count differs."""
    counts = frame.groupby(["version", "split"]).size()
    return {key: (int(counts.get(key, 0)), n) for key, n in SPLIT_SIZES.items() if int(counts.get(key, 0)) != n}


def load_release(root: str | Path, *, verify_sizes: bool = True):
    """:func:`load_captions` on a complete real release, checking the published split sizes."""
    frame = load_captions(root, require_all=True)
    if verify_sizes:
        bad = check_split_sizes(frame)
        if bad:
            detail = "; ".join(f"caps_{v}_{s}: {f} records, published {p}" for (v, s), (f, p) in bad.items())
            raise ReleaseError(f"{root}: split sizes differ from the published release: {detail}")
    return frame


OVERVIEW_COLUMNS = ("version", "split", "image", "tile_col", "tile_row", "patch", "lon", "lat")
"""Columns of :func:`captions_overview`: which caption set, which image, and where it lies."""


def split_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Caption records per ``(version, split)`` of loaded captions (column ``records``)."""
    return frame.groupby(["version", "split"]).size().rename("records").to_frame()


def captions_overview(frame: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The first ``n`` caption records, :data:`OVERVIEW_COLUMNS` only."""
    return pd.DataFrame(frame[list(OVERVIEW_COLUMNS)].head(n))
